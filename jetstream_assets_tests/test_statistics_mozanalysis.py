"""Our numbers against mozanalysis itself (runs where mozanalysis is installed, e.g. a comparison venv).

Deterministic quantities must agree to 1e-9; Monte Carlo ones within a few Monte Carlo standard errors.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from jetstream_assets.statistics import compute

mozanalysis = pytest.importorskip("mozanalysis")
from mozanalysis.bayesian_stats import bayesian_bootstrap, binary  # noqa: E402
from mozanalysis.frequentist_stats import bootstrap as frequentist  # noqa: E402
from mozanalysis.frequentist_stats.linear_models import compare_branches_lm  # noqa: E402


def data(n: int = 3000, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pre = rng.gamma(1, 3, 2 * n)
    return pd.DataFrame({
        "branch": np.repeat(["control", "treatment"], n),
        "m": 0.8 * pre + rng.gamma(0.5, 4.0, 2 * n) + np.repeat([0.0, 0.3], n),
        "m_pre": pre,
        "converted": (rng.random(2 * n) < np.repeat([0.3, 0.33], n)).astype(int),
    })


def ours(rows: pd.DataFrame, branch: str, comparison: str | None = None) -> pd.Series:
    mask = rows.branch == branch
    if comparison is None:
        mask &= rows.comparison.isna()
    else:
        mask &= (rows.comparison == comparison) & (rows.comparison_to_branch == "control")
    return rows[mask].iloc[0]


def assert_close_in_mc_error(row: pd.Series, moz: pd.Series, point_key, low_key, high_key, num_samples: int):
    """Point and interval ends agree within 4 Monte Carlo standard errors of the 2.5% quantile."""
    sd = (moz[high_key] - moz[low_key]) / 3.92
    tolerance = 4 * np.sqrt(2) * 0.027 * np.sqrt(10_000 / num_samples) * sd
    assert row.point == pytest.approx(moz[point_key], abs=tolerance)
    assert row.lower == pytest.approx(moz[low_key], abs=tolerance)
    assert row.upper == pytest.approx(moz[high_key], abs=tolerance)


def test_binomial_individual_rows_equal_mozanalysis():
    df = data()
    rows = compute("binomial", df, "converted", seed=1)
    moz = binary.compare_branches(df, "converted", ref_branch_label="control")
    for branch in ("control", "treatment"):
        row, expected = ours(rows, branch), moz["individual"][branch]
        assert (row.point, row.lower, row.upper) == pytest.approx(
            (expected["mean"], expected["0.025"], expected["0.975"]), abs=1e-9)
    assert_close_in_mc_error(ours(rows, "treatment", "relative_uplift"), moz["comparative"]["treatment"],
                             ("rel_uplift", "exp"), ("rel_uplift", "0.025"), ("rel_uplift", "0.975"), 10_000)


@pytest.mark.parametrize("covariate", [None, "m_pre"])
def test_linear_model_rows_equal_mozanalysis(covariate):
    df = data()
    adjustment = {"covariate_adjustment": {"period": "preenrollment_week"}, "period": "week"} if covariate else {}
    rows = compute("linear_model_mean", df, "m", **adjustment)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        moz = compare_branches_lm(df, "m", "control", covariate_col_label=covariate, threshold_quantile=0.995,
                                  alphas=[0.05], interactive=False)
    for branch in ("control", "treatment"):
        row, expected = ours(rows, branch), moz["individual"][branch]
        assert (row.point, row.lower, row.upper) == pytest.approx(
            (expected["mean"], expected["0.025"], expected["0.975"]), abs=1e-9)
    comparative = moz["comparative"]["treatment"]
    row = ours(rows, "treatment", "difference")
    assert (row.point, row.lower, row.upper) == pytest.approx(
        (comparative[("abs_uplift", "exp")], comparative[("abs_uplift", "0.025")],
         comparative[("abs_uplift", "0.975")]), abs=1e-9)
    row = ours(rows, "treatment", "relative_uplift")
    assert row.point == pytest.approx(comparative[("rel_uplift", "exp")], abs=1e-9)
    # marginaleffects differentiates numerically: its interval ends carry ~1e-7 of finite-difference error
    assert (row.lower, row.upper) == pytest.approx(
        (comparative[("rel_uplift", "0.025")], comparative[("rel_uplift", "0.975")]), abs=1e-5)


@pytest.mark.parametrize("covariate", [None, "m_pre"])
def test_per_client_dau_impact_is_the_linear_model_scaled_by_clients(covariate):
    """Jetstream's PerClientDAUImpact (a LinearModelMean, drop_highest 0): difference x clients, relative
    uplift as is, deterministic, covariate adjustment honoured."""
    df = data()
    adjustment = {"covariate_adjustment": {"period": "preenrollment_week"}, "period": "week"} if covariate else {}
    rows = compute("per_client_dau_impact", df, "m", **adjustment)
    assert rows.equals(compute("per_client_dau_impact", df, "m", seed=99, **adjustment))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        moz = compare_branches_lm(df, "m", "control", covariate_col_label=covariate, threshold_quantile=1.0,
                                  alphas=[0.05], interactive=False)["comparative"]["treatment"]
    assert rows.comparison.notna().all() and set(rows.statistic) == {"per_client_dau_impact"}
    row = ours(rows, "treatment", "difference")
    assert (row.point, row.lower, row.upper) == pytest.approx(
        tuple(len(df) * moz[("abs_uplift", q)] for q in ("exp", "0.025", "0.975")), rel=1e-9)
    assert ours(rows, "treatment", "relative_uplift").point == pytest.approx(moz[("rel_uplift", "exp")], abs=1e-9)


def test_bootstrap_mean_agrees_with_mozanalysis_within_monte_carlo_error():
    df = data()
    num_samples = 2000  # 3000 distinct values x 2000 samples: our moment-matched path, mozanalysis ~1 s
    rows = compute("bootstrap_mean", df, "m", seed=5, num_samples=num_samples)
    moz = bayesian_bootstrap.compare_branches(df, "m", num_samples=num_samples, threshold_quantile=0.995,
                                              individual_summary_quantiles=(0.025, 0.975))
    for branch in ("control", "treatment"):
        assert_close_in_mc_error(ours(rows, branch), moz["individual"][branch], "mean", "0.025", "0.975",
                                 num_samples)
    for comparison, key in (("difference", "abs_uplift"), ("relative_uplift", "rel_uplift")):
        assert_close_in_mc_error(ours(rows, "treatment", comparison), moz["comparative"]["treatment"],
                                 (key, "exp"), (key, "0.025"), (key, "0.975"), num_samples)


def test_population_ratio_agrees_with_mozanalysis_within_monte_carlo_error():
    df = data(1500)
    num_samples = 2000
    rows = compute("population_ratio", df, "m", seed=5, numerator="m", denominator="m_pre", num_samples=num_samples)
    moz = frequentist.compare_branches(df, ["m", "m_pre"], num_samples=num_samples, threshold_quantile=0.995,
                                       stat_fn=lambda d: np.mean(d[:, 0]) / np.mean(d[:, 1]))
    for branch in ("control", "treatment"):
        assert_close_in_mc_error(ours(rows, branch), moz["individual"][branch], "mean", "0.025", "0.975",
                                 num_samples)


def test_deciles_agree_with_mozanalysis_within_monte_carlo_error():
    df = data()
    rows = compute("deciles", df, "m", seed=5)
    moz = frequentist.compare_branches_quantiles(df, "m", individual_summary_quantiles=(0.025, 0.975))
    individual = moz["individual"]["control"]
    for label, expected in individual.iterrows():
        row = rows[(rows.branch == "control") & rows.comparison.isna() & (rows.parameter == float(label))].iloc[0]
        width = expected["0.975"] - expected["0.025"]
        assert row.point == pytest.approx(expected["mean"], abs=0.05 * width + 1e-12)
        assert row.lower == pytest.approx(expected["0.025"], abs=0.1 * width + 1e-12)
