"""`linear_model_mean` → `mean_lm` and `per_client_dau_impact` (built on it, as in Jetstream): OLS estimates of branch means and uplifts, optionally adjusted for a
pre-enrollment covariate (ANCOVA/CUPED), as mozanalysis `compare_branches_lm(alphas=[0.05])`.

The model is Y ~ 1 + branch dummies (reference = the reference branch) [+ covariate], solved with numpy:
* individual rows: branch mean with a Student-t interval (statsmodels `DescrStatsW.tconfint_mean`);
* `difference`: the branch coefficient with its t interval (df = n - p);
* `relative_uplift`: exp(ln(μ_b/μ_ref)) - 1 where μ is the model prediction averaged over the covariate's
  10,000 quantiles (marginaleffects `avg_comparisons(comparison="lnratioavg")`), interval by the delta
  method on the log scale with the normal quantile (marginaleffects sees no residual dof), exponentiated.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
from scipy import stats

from jetstream_assets.statistics.comparisons import ALL_ZERO_REFERENCE
from jetstream_assets.statistics.data import as_float, branches_of
from jetstream_assets.statistics.errors import StatisticConfigError
from jetstream_assets.statistics.rows import DIFFERENCE, RELATIVE_UPLIFT, ReferenceFailure, Row, StatisticOutput

CONFIDENCE_INTERVAL = 0.95  # Jetstream passes alphas=[0.05] and stores ci_width 0.95
PREENROLLMENT_PERIODS = ("preenrollment_week", "preenrollment_days28")
COVARIATE_GRID = np.arange(0, 1, 0.0001)


def covariate_column(
    metric: str, covariate_adjustment: dict | None, period: str | None, columns: pd.Index,
) -> str | None:
    """`<metric>_pre` when adjustment is configured, possible for this period and present in the data."""
    if not covariate_adjustment:
        return None
    covariate_period = covariate_adjustment.get("period")
    if covariate_period not in PREENROLLMENT_PERIODS:
        raise StatisticConfigError(
            "linear_model_mean", f"covariate adjustment needs a pre-enrollment period {PREENROLLMENT_PERIODS}",
            "covariate_adjustment",
        )
    if period in PREENROLLMENT_PERIODS or period == covariate_period:
        return None
    column = f"{covariate_adjustment.get('metric', metric)}_pre"
    return column if column in columns else None  # Jetstream falls back to unadjusted inferences


def _clip_pooled(values: np.ndarray, integer: bool, threshold_quantile: float) -> np.ndarray:
    """mozanalysis `prepare_df_for_modeling`: cap at the quantile over all branches (ceil for integers)."""
    threshold = float(np.nanquantile(values, threshold_quantile))
    if integer:
        threshold = math.ceil(threshold)
    return np.minimum(values, threshold, where=~np.isnan(values), out=values.copy())


def _model_frame(data: pd.DataFrame, metric: str, covariate: str | None, drop_highest: float):
    target = _clip_pooled(as_float(data[metric]), pd.api.types.is_integer_dtype(data[metric].dtype), 1 - drop_highest)
    keep = ~np.isnan(target)
    cov = None
    if covariate is not None:
        cov = _clip_pooled(as_float(data[covariate]), pd.api.types.is_integer_dtype(data[covariate].dtype),
                           1 - drop_highest)
        keep &= ~np.isnan(cov)
        cov = cov[keep]
    return target[keep], data["branch"].astype(str).to_numpy()[keep], cov


def _individual_rows(y: np.ndarray, labels: np.ndarray, branches: list[str]) -> list[Row]:
    rows = []
    for branch in branches:
        values = y[labels == branch]
        n = len(values)
        mean = values.mean() if n else math.nan
        half = (stats.t.ppf(1 - (1 - CONFIDENCE_INTERVAL) / 2, n - 1) * values.std(ddof=1) / math.sqrt(n)
                if n > 1 else math.nan)
        rows.append(Row("mean_lm", branch, mean, mean - half, mean + half, ci_width=CONFIDENCE_INTERVAL))
    return rows


def _fit(y: np.ndarray, labels: np.ndarray, reference: str, treatments: list[str], cov: np.ndarray | None):
    """OLS coefficients, their covariance and residual degrees of freedom; None if the design is singular."""
    columns = [np.ones(len(y))] + [(labels == b).astype(float) for b in treatments]
    if cov is not None:
        columns.append(cov)
    design = np.column_stack(columns)
    coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    if rank < design.shape[1]:
        return None
    dof = len(y) - design.shape[1]
    residual = y - design @ coef
    sigma2 = float(residual @ residual) / dof if dof > 0 else math.nan
    return coef, sigma2 * np.linalg.inv(design.T @ design), dof


def _comparison_rows(y, labels, cov, reference: str, branches: list[str]) -> list[Row]:
    treatments = [b for b in branches if b != reference]
    fitted = _fit(y, labels, reference, treatments, cov)
    if fitted is None and cov is not None:  # mozanalysis retries without the covariate
        cov = None
        fitted = _fit(y, labels, reference, treatments, None)
    rows = []
    if fitted is None:
        for b in treatments:
            rows += [Row("mean_lm", b, math.nan, comparison=c, comparison_to_branch=reference,
                         ci_width=CONFIDENCE_INTERVAL) for c in (RELATIVE_UPLIFT, DIFFERENCE)]
        return rows
    coef, covariance, dof = fitted
    t = stats.t.ppf(1 - (1 - CONFIDENCE_INTERVAL) / 2, dof)
    z = stats.norm.ppf(1 - (1 - CONFIDENCE_INTERVAL) / 2)
    covariate_mean = float(np.quantile(cov, COVARIATE_GRID).mean()) if cov is not None else 0.0
    base = np.zeros(len(coef))
    base[0] = 1.0
    if cov is not None:
        base[-1] = covariate_mean
    for i, branch in enumerate(treatments, start=1):
        se = math.sqrt(covariance[i, i])
        rows.append(Row("mean_lm", branch, coef[i], coef[i] - t * se, coef[i] + t * se, comparison=DIFFERENCE,
                        comparison_to_branch=reference, ci_width=CONFIDENCE_INTERVAL))
        focus = base.copy()
        focus[i] = 1.0
        mu_focus, mu_ref = float(focus @ coef), float(base @ coef)
        # a branch mean of 0 makes the log ratio infinite: NULL estimates, not an OverflowError
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            log_ratio = np.log(mu_focus / mu_ref)
            gradient = focus / mu_focus - base / mu_ref
            log_se = math.sqrt(max(float(gradient @ covariance @ gradient), 0.0))
            rows.append(Row("mean_lm", branch, np.exp(log_ratio) - 1, np.exp(log_ratio - z * log_se) - 1,
                            np.exp(log_ratio + z * log_se) - 1, comparison=RELATIVE_UPLIFT,
                            comparison_to_branch=reference, ci_width=CONFIDENCE_INTERVAL))
    return rows


def _by_reference(
    data: pd.DataFrame, metric: str, drop_highest: float, covariate_adjustment: dict | None, period: str | None,
    *, individual: bool,
) -> StatisticOutput:
    """Jetstream's `LinearModelMean.transform` with each branch as the reference in turn.

    A reference branch that is all zeros after the pooled trimming writes no rows (Jetstream PR #3273:
    the relative uplift is undefined); individual rows come with the first reference that computed, so
    when every reference is all zeros the statistic writes nothing at all."""
    covariate = covariate_column(metric, covariate_adjustment, period, data.columns)
    y, labels, cov = _model_frame(data, metric, covariate, drop_highest)
    branches = [b for b in branches_of(data) if (labels == b).any()]
    spread = pd.Series(as_float(data[metric])).std()
    varies = not (np.isnan(spread) or np.isclose(spread, 0))
    out = StatisticOutput()
    for reference in branches:
        if not np.any(y[labels == reference]):
            out.failures.append(ReferenceFailure(reference, ALL_ZERO_REFERENCE))
            continue
        if varies:
            out.rows += _comparison_rows(y, labels, cov, reference, branches)
        else:  # mozanalysis: a metric without variation gives empty (NULL) estimates, not an error
            out.rows += [Row("mean_lm", b, math.nan, comparison=c, comparison_to_branch=reference,
                             ci_width=CONFIDENCE_INTERVAL)
                         for b in branches if b != reference for c in (RELATIVE_UPLIFT, DIFFERENCE)]
    if individual and len(out.failures) < len(branches):
        out.rows = (_individual_rows(y, labels, branches) if varies else
                    [Row("mean_lm", b, math.nan, ci_width=CONFIDENCE_INTERVAL) for b in branches]) + out.rows
    return out


def linear_model_mean(
    data: pd.DataFrame, metric: str, seed: int | None, *, drop_highest: float,
    covariate_adjustment: dict | None, period: str | None,
) -> StatisticOutput:
    return _by_reference(data, metric, drop_highest, covariate_adjustment, period, individual=True)


def per_client_dau_impact(
    data: pd.DataFrame, metric: str, seed: int | None, *, drop_highest: float,
    covariate_adjustment: dict | None, period: str | None,
) -> StatisticOutput:
    """Jetstream's `PerClientDAUImpact` (a `LinearModelMean` since 2025-08): the linear model's
    differences scaled by the number of clients analysed (the gain if the branch were shipped to that
    population), its relative uplifts as they are; no individual rows. Deterministic: `seed` is unused."""
    model = _by_reference(data, metric, drop_highest, covariate_adjustment, period, individual=False)
    clients = len(data)
    rows = [
        replace(r, statistic="per_client_dau_impact", point=_scaled(r.point, clients), lower=_scaled(r.lower, clients),
                upper=_scaled(r.upper, clients))
        if r.comparison == DIFFERENCE else replace(r, statistic="per_client_dau_impact")
        for r in model.rows
    ]
    return StatisticOutput(rows, model.failures)


def _scaled(value: float | None, factor: int) -> float | None:
    return None if value is None else value * factor
