"""Linear models, ratios, DAU impact and distribution curves of the statistics layer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from jetstream_assets.statistics import StatisticConfigError, compute, computation_errors


def cuped_data(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pre = rng.gamma(1, 3, 2 * n)
    return pd.DataFrame({
        "branch": np.repeat(["control", "treatment"], n),
        "m": 0.8 * pre + rng.gamma(1, 1, 2 * n) + np.repeat([0.0, 0.3], n),
        "m_pre": pre,
    })


def pick(rows: pd.DataFrame, branch: str, comparison: str | None = None):
    mask = (rows.branch == branch) & (rows.comparison.isna() if comparison is None else rows.comparison == comparison)
    return rows[mask].iloc[0]


def test_linear_model_without_covariate_is_the_difference_of_means_with_ols_interval():
    df = cuped_data()
    rows = compute("linear_model_mean", df, "m", drop_highest=0.0)
    assert set(rows.statistic) == {"mean_lm"} and set(rows.ci_width) == {0.95}
    control, treatment = (df.m[df.branch == b] for b in ("control", "treatment"))
    diff = pick(rows[rows.comparison_to_branch == "control"], "treatment", "difference")
    assert diff.point == pytest.approx(treatment.mean() - control.mean(), rel=1e-9)
    pooled = np.sqrt((control.var() + treatment.var()) / 2 * (2 / len(control)))  # equal group sizes
    assert diff.upper - diff.point == pytest.approx(stats.t.ppf(0.975, len(df) - 2) * pooled, rel=1e-9)
    relative = pick(rows[rows.comparison_to_branch == "control"], "treatment", "relative_uplift")
    assert relative.point == pytest.approx(treatment.mean() / control.mean() - 1, rel=1e-9)
    individual = pick(rows, "control")
    assert individual.point == pytest.approx(control.mean(), rel=1e-12)
    assert individual.upper - individual.point == pytest.approx(
        stats.t.ppf(0.975, len(control) - 1) * control.std() / np.sqrt(len(control)), rel=1e-9)


def test_linear_model_covariate_adjustment_narrows_the_interval_and_falls_back_when_absent():
    df = cuped_data()
    adjust = {"covariate_adjustment": {"period": "preenrollment_week"}, "period": "week"}
    adjusted = pick(compute("linear_model_mean", df, "m", **adjust).query("comparison_to_branch == 'control'"),
                    "treatment", "difference")
    plain = pick(compute("linear_model_mean", df, "m").query("comparison_to_branch == 'control'"),
                 "treatment", "difference")
    assert adjusted.upper - adjusted.lower < 0.5 * (plain.upper - plain.lower)
    assert adjusted.lower < 0.3 < adjusted.upper
    fallback = compute("linear_model_mean", df.drop(columns="m_pre"), "m", **adjust)
    assert pick(fallback.query("comparison_to_branch == 'control'"), "treatment", "difference").point == plain.point
    in_preenrollment = compute("linear_model_mean", df, "m", covariate_adjustment={"period": "preenrollment_week"},
                               period="preenrollment_days28")
    assert pick(in_preenrollment.query("comparison_to_branch == 'control'"), "treatment",
                "difference").point == plain.point
    with pytest.raises(StatisticConfigError, match="covariate_adjustment"):
        compute("linear_model_mean", df, "m", covariate_adjustment={"period": "week"}, period="week")


def test_linear_model_all_zero_reference_is_reported_and_constant_metric_gives_nulls():
    df = pd.DataFrame({"branch": ["control"] * 20 + ["treatment"] * 20, "m": [0.0] * 20 + list(range(20))})
    rows = compute("linear_model_mean", df, "m")
    assert [e.reference_branch for e in computation_errors(rows)] == ["control"]
    assert set(rows.comparison_to_branch.dropna()) == {"treatment"}
    constant = compute("linear_model_mean", df.assign(m=1.0), "m")
    assert len(constant) == 2 + 2 * 2 and constant.point.isna().all()


def test_population_ratio_estimates_the_ratio_of_means():
    rng = np.random.default_rng(4)
    n = 4000
    df = pd.DataFrame({"branch": np.repeat(["control", "treatment"], n), "clicks": rng.poisson(2, 2 * n) * 1.0,
                       "searches": rng.poisson(5, 2 * n) + 1.0, "ratio": 0.0})
    rows = compute("population_ratio", df, "ratio", seed=1, numerator="clicks", denominator="searches",
                   drop_highest=0.0)
    control = df[df.branch == "control"]
    individual = pick(rows, "control")
    assert set(rows.statistic) == {"population_ratio"} and set(rows.metric) == {"ratio"}
    assert individual.point == pytest.approx(control.clicks.mean() / control.searches.mean(), rel=0.01)
    assert individual.lower < individual.point < individual.upper
    assert len(rows) == 2 + 2 * 2


def test_per_client_dau_impact_scales_differences_by_clients_and_has_no_individual_rows():
    df = pd.DataFrame({"branch": ["control"] * 100 + ["treatment"] * 100,
                       "days": np.r_[np.full(100, 3.0), np.full(100, 4.0)] + np.tile([0.0, 1.0], 100)})
    rows = compute("per_client_dau_impact", df, "days", seed=1)
    assert rows.comparison.notna().all() and set(rows.statistic) == {"per_client_dau_impact"}
    diff = rows[(rows.branch == "treatment") & (rows.comparison == "difference")].iloc[0]
    assert diff.point == pytest.approx(1.0 * len(df), rel=1e-9)  # the linear model's difference x clients
    relative = rows[(rows.branch == "treatment") & (rows.comparison == "relative_uplift")].iloc[0]
    assert relative.point == pytest.approx(4.5 / 3.5 - 1, abs=0.01)


def test_linear_model_mean_writes_no_rows_against_an_all_zero_reference_after_trimming():
    """Jetstream PR #3273: a reference branch that is all zeros once the pooled 99.5% cap is applied
    gets no rows; when every branch is, the statistic writes nothing (only failures to log)."""
    df = pd.DataFrame({"branch": ["control"] * 400 + ["treatment"] * 400,
                       "m": np.r_[np.zeros(400), np.tile([1.0, 2.0], 200)]})
    rows = compute("linear_model_mean", df, "m")
    assert set(rows.comparison_to_branch.dropna()) == {"treatment"}
    assert set(rows[rows.comparison.isna()].branch) == {"control", "treatment"}
    assert [f.reference_branch for f in computation_errors(rows)] == ["control"]
    rare = np.zeros(800)
    rare[[0, 500]] = [50.0, 3.0]  # 0.25% non-zero: the pooled 99.5% quantile is 0, so both are capped to 0
    nothing = compute("linear_model_mean", pd.DataFrame({"branch": df.branch, "m": rare}), "m")
    assert nothing.empty and len(computation_errors(nothing)) == 2


def test_empirical_cdf_and_kde_curves_on_a_grid():
    rng = np.random.default_rng(8)
    df = pd.DataFrame({"branch": "control", "m": rng.exponential(2, 500)})
    cdf = compute("empirical_cdf", df, "m", grid_size=64)
    assert len(cdf) == 64 and cdf.point.is_monotonic_increasing and cdf.point.iloc[-1] == 1.0
    assert cdf.parameter.iloc[0] == round(df.m.min(), 6)
    kde = compute("kernel_density_estimate", df, "m")
    assert len(kde) == 256 and set(kde.statistic) == {"kernel_density_estimate"}
    x = np.array(kde.parameter, dtype=float)
    bandwidth = len(df) ** (-1 / 5)  # scikit-learn's "scott", not scaled by the spread
    reference = stats.gaussian_kde(df.m, bw_method=bandwidth / df.m.std(ddof=1))(x)
    np.testing.assert_allclose(kde.point, reference, rtol=1e-5)  # x is stored rounded to 6 decimals
    with_zero = compute("empirical_cdf", pd.DataFrame({"branch": "b", "m": [0.0, 1.0, 10.0]}), "m", log_space=True,
                        grid_size=3)
    assert list(with_zero.parameter) == [0.0, 1.0, pytest.approx(np.sqrt(10), rel=1e-6), 10.0]
    assert list(with_zero.point) == pytest.approx([1 / 3, 2 / 3, 2 / 3, 1.0])
    with pytest.raises(StatisticConfigError, match="parameter 'kernel'"):
        compute("kernel_density_estimate", df, "m", kernel="tophat")
