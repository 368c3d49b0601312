"""The statistics layer: Jetstream's names, defaults, row shapes, error reporting and reproducibility."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from jetstream_assets import statistics
from jetstream_assets.core.schema import STATISTICS_SCHEMA, column_names
from jetstream_assets.statistics import StatisticComputationError, StatisticConfigError, compute, computation_errors


def two_branches(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "branch": np.repeat(["control", "treatment"], n),
        "m": np.r_[rng.gamma(2.0, 1.0, n), rng.gamma(2.0, 1.1, n)],
    })


def row(rows: pd.DataFrame, branch: str, comparison: str | None = None, reference: str | None = None):
    selected = rows[(rows.branch == branch)
                    & (rows.comparison.isna() if comparison is None else rows.comparison == comparison)
                    & (rows.comparison_to_branch.isna() if reference is None else rows.comparison_to_branch == reference)]
    assert len(selected) == 1, selected
    return selected.iloc[0]


def test_registry_lists_jetstream_statistic_names():
    assert statistics.available_statistics() == sorted([
        "always_valid_mean", "binomial", "bootstrap_mean", "count", "deciles", "empirical_cdf", "kernel_density_estimate",
        "linear_model_mean", "per_client_dau_impact", "population_ratio", "sum",
    ])


def test_bootstrap_mean_rows_cover_every_ordered_pair_with_schema_columns():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"branch": np.repeat(["control", "a", "b"], 500), "m": rng.normal(10, 2, 1500)})
    rows = compute("bootstrap_mean", df, "m", seed=7, segment="new_users", analysis_basis="exposures")
    assert list(rows.columns) == column_names(STATISTICS_SCHEMA)
    assert set(rows.statistic) == {"mean"} and set(rows.segment) == {"new_users"}
    assert set(rows.analysis_basis) == {"exposures"} and set(rows.ci_width) == {0.95}
    assert len(rows) == 3 + 3 * 2 * 2  # individual rows + (difference, relative_uplift) per ordered pair
    pairs = {(r.branch, r.comparison_to_branch) for r in rows.itertuples() if r.comparison == "difference"}
    assert pairs == {(f, r) for f in ("control", "a", "b") for r in ("control", "a", "b") if f != r}
    # individual point = expectation of the Bayesian-bootstrap means = the (clipped) sample mean
    control = row(rows, "control")
    assert control.point == pytest.approx(df.m[df.branch == "control"].mean(), abs=0.02)
    assert control.lower < control.point < control.upper
    # the comparison against each reference reuses that reference's samples: antisymmetric differences
    assert row(rows, "a", "difference", "b").point == pytest.approx(-row(rows, "b", "difference", "a").point)


def test_bootstrap_mean_is_reproducible_for_a_seed_and_varies_across_seeds():
    df = two_branches()
    first, again = compute("bootstrap_mean", df, "m", seed=3), compute("bootstrap_mean", df, "m", seed=3)
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(compute("bootstrap_mean", df, "m", seed=4))


def test_drop_highest_clips_each_branch_at_its_quantile_like_mozanalysis():
    df = pd.DataFrame({"branch": ["control"] * 1000, "m": np.r_[np.ones(999), 1e9]})
    rows = compute("bootstrap_mean", df, "m", seed=1, drop_highest=0.01)
    clipped = np.clip(df.m, 1, np.quantile(df.m, 0.99))
    assert row(rows, "control").point == pytest.approx(clipped.mean(), rel=1e-6)


def test_bootstrap_mean_credible_interval_matches_the_exact_dirichlet_posterior():
    """Few distinct values: exact draws; the interval matches the analytic Beta posterior of a 0/1 metric."""
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"branch": "control", "m": (rng.random(3000) < 0.3).astype(float)})
    r = row(compute("bootstrap_mean", df, "m", seed=2, drop_highest=0.0), "control")
    k = df.m.sum()
    posterior = stats.beta(k, len(df) - k)  # Dirichlet(counts) weight of the 1s
    assert r.lower == pytest.approx(posterior.ppf(0.025), abs=0.002)
    assert r.upper == pytest.approx(posterior.ppf(0.975), abs=0.002)


def test_moment_matched_bootstrap_equals_exact_draws_within_monte_carlo_error():
    """Many distinct values: the Pearson III shortcut and brute-force Dirichlet draws agree."""
    from jetstream_assets.statistics.bootstrap import (
        bayesian_bootstrap_means,
        dirichlet_mean_cumulants,
        exact_dirichlet_means,
    )

    data = np.random.default_rng(9).lognormal(0, 1.0, 2000)
    values, counts = np.unique(data, return_counts=True)
    mean, variance, k3, _ = dirichlet_mean_cumulants(values, counts)
    exact = exact_dirichlet_means(values, counts, 20_000, np.random.default_rng(1))
    # the exact cumulants the shortcut is built on
    assert exact.mean() == pytest.approx(mean, abs=4 * math.sqrt(variance / 20_000))
    assert exact.var() == pytest.approx(variance, rel=0.04)
    assert stats.skew(exact) == pytest.approx(k3 / variance**1.5, abs=0.06)
    shortcut = bayesian_bootstrap_means(data, 20_000, np.random.default_rng(2), 0.025)
    sd = math.sqrt(variance)
    for q in (0.025, 0.5, 0.975):  # MC standard error of these quantiles here is ~0.015 sd each
        assert abs(np.quantile(shortcut, q) - np.quantile(exact, q)) < 0.07 * sd


def test_bootstrap_mean_two_by_100k_by_10k_finds_the_planted_uplift():
    # its speed (2 x 100k clients, 10k samples) is measured by benchmarks/bench_statistics.py
    rng = np.random.default_rng(2024)
    df = pd.DataFrame({"branch": np.repeat(["control", "treatment"], 100_000),
                       "m": np.r_[rng.gamma(0.5, 4.0, 100_000), rng.gamma(0.5, 4.1, 100_000)]})
    rows = compute("bootstrap_mean", df, "m", seed=1)
    assert row(rows, "treatment", "relative_uplift", "control").point == pytest.approx(0.025, abs=0.02)


def test_all_zero_reference_branch_is_reported_and_other_references_still_computed():
    df = pd.DataFrame({"branch": ["control"] * 50 + ["treatment"] * 50, "m": [0.0] * 50 + [1.0, 2.0] * 25})
    rows = compute("bootstrap_mean", df, "m", seed=1)
    errors = computation_errors(rows)
    assert [(e.reference_branch, e.metric, e.statistic) for e in errors] == [("control", "m", "bootstrap_mean")]
    assert isinstance(errors[0], StatisticComputationError) and "all zeros" in str(errors[0])
    assert set(rows.comparison_to_branch.dropna()) == {"treatment"}
    assert not math.isnan(row(rows, "control", "relative_uplift", "treatment").upper)
    assert row(rows, "control", "relative_uplift", "treatment").point == pytest.approx(-1.0)


def test_empty_branch_counts_zero_and_does_not_crash_the_other_statistics():
    df = pd.DataFrame({"branch": pd.Categorical(["control"] * 20, categories=["control", "treatment"]),
                       "m": np.arange(20.0)})
    counts = compute("count", df, "m")
    assert dict(zip(counts.branch, counts.point)) == {"control": 20.0, "treatment": 0.0}
    assert counts.ci_width.isna().all() and counts.lower.isna().all()
    rows = compute("bootstrap_mean", df, "m", seed=1)
    assert list(rows.branch) == ["control"] and computation_errors(rows) == []
    assert compute("bootstrap_mean", df.iloc[0:0], "m", seed=1).empty


def test_sum_and_count_are_per_branch_rows():
    df = pd.DataFrame({"branch": ["a", "a", "b"], "m": [1.5, 2.0, 4.0]})
    sums = compute("sum", df, "m")
    assert dict(zip(sums.branch, sums.point)) == {"a": 3.5, "b": 4.0}
    assert set(sums.statistic) == {"sum"} and sums.comparison.isna().all()


def test_binomial_individual_rows_are_the_analytic_beta_posterior():
    df = pd.DataFrame({"branch": ["control"] * 100 + ["treatment"] * 100,
                       "m": [True] * 30 + [False] * 70 + [True] * 40 + [False] * 60})
    rows = compute("binomial", df, "m", seed=1)
    control = row(rows, "control")
    assert control.point == pytest.approx(31 / 102, abs=1e-12)
    assert control.lower == pytest.approx(stats.beta(31, 71).ppf(0.025), abs=1e-12)
    uplift = row(rows, "treatment", "difference", "control")
    assert uplift.point == pytest.approx(41 / 102 - 31 / 102, abs=0.01)
    with pytest.raises(StatisticComputationError, match="0 or 1"):
        compute("binomial", df.assign(m=2.0), "m")


def test_deciles_use_q_as_parameter_and_estimate_the_quantiles():
    df = two_branches(5000)
    rows = compute("deciles", df, "m", seed=1)
    individual = rows[rows.comparison.isna() & (rows.branch == "control")]
    assert list(individual.parameter) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    median = individual[individual.parameter == 0.5].iloc[0]
    assert median.point == pytest.approx(np.median(df.m[df.branch == "control"]), rel=0.02)
    assert len(rows) == 9 * (2 + 2 * 2)


def test_unknown_statistic_and_parameter_raise_config_errors_naming_them():
    df = two_branches(10)
    with pytest.raises(StatisticConfigError, match="statistic 'bootstrap_median'"):
        compute("bootstrap_median", df, "m")
    with pytest.raises(StatisticConfigError, match="statistic 'bootstrap_mean', parameter 'num_sample'") as info:
        compute("bootstrap_mean", df, "m", num_sample=10)
    assert isinstance(info.value, ValueError) and info.value.parameter == "num_sample"
    with pytest.raises(StatisticConfigError, match="parameter 'numerator'"):
        compute("population_ratio", df, "m", denominator="m")
    with pytest.raises(StatisticConfigError, match="pre-treatment 'squash'"):
        compute("bootstrap_mean", df, "m", pre_treatments=["squash"])


def test_pre_treatments_apply_in_order_with_arguments_and_window_days():
    df = pd.DataFrame({"branch": "control", "m": [8.0, 16.0, 0.0, None, 4.0]})
    logged = compute("sum", df, "m", pre_treatments=["remove_nulls", {"name": "log", "base": 2},
                                                        "remove_indefinites"])
    assert logged.point.iloc[0] == pytest.approx(3 + 4 + 2)
    normalized = compute("sum", df, "m", window_days=7, pre_treatments=["normalize_over_analysis_period"])
    assert normalized.point.iloc[0] == pytest.approx(28 / 7)
    censored = compute("count", df, "m", pre_treatments=[
        {"name": "censor_values_above_threshold", "threshold": 16}, {"name": "censor_values_below_threshold",
                                                                    "threshold": 0}])
    assert censored.point.iloc[0] == 2  # 8 and 4 (NULL rows never reach pre-treatments of bootstrap stats)
    filled = compute("sum", df, "m", pre_treatments=["zero_fill"])
    assert filled.point.iloc[0] == 28
    with pytest.raises(StatisticComputationError, match="NULL"):
        compute("bootstrap_mean", df.assign(m=[-1.0, 1, 2, 3, 4]), "m", pre_treatments=["log"])


def test_infinite_values_are_refused_with_the_fix_named():
    df = pd.DataFrame({"branch": ["control"] * 3 + ["treatment"] * 3, "m": [0.0, 1, 2, 1, 2, 3]})
    with pytest.raises(statistics.StatisticComputationError, match="infinite value.*remove_indefinites"):
        compute("bootstrap_mean", df, "m", seed=1, pre_treatments=["log"])  # log(0) = -inf
    rows = compute("bootstrap_mean", df, "m", seed=1, pre_treatments=["log", "remove_indefinites"])
    assert math.isfinite(row(rows, "control").point)


def test_stable_seed_is_the_same_in_another_process():
    here = statistics.stable_seed("exp-slug", "active_hours", "bootstrap_mean", "week", 1)
    code = ("from jetstream_assets.statistics import stable_seed;"
            "print(stable_seed('exp-slug', 'active_hours', 'bootstrap_mean', 'week', 1))")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123"})
    assert int(there.stdout) == here and 0 <= here < 2**63
    assert statistics.stable_seed("a", 1) != statistics.stable_seed("a", "1")
