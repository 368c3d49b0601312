"""`always_valid_mean` against its definition: time-uniform coverage under daily looks, the boundary's
shape, the rows it writes (schema v4, nimbus-valid) and its configuration."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from mozilla_nimbus_schemas.jetstream import Statistics
from scipy import stats

from jetstream_assets import statistics
from jetstream_assets.analysis.exports import statistics_records
from jetstream_assets.statistics.sequential import boundary_multiplier, mixture_rho

ALPHA = 0.05


def frame(control: np.ndarray, treatment: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"branch": ["control"] * len(control) + ["treatment"] * len(treatment),
                         "x": np.r_[control, treatment]})


def ever_excludes_zero(rng: np.random.Generator, experiments: int, looks: int, per_look: int,
                       multiplier) -> float:
    """Share of A/A experiments (skewed data) whose difference interval excludes 0 at some look."""
    a = rng.exponential(1.0, (experiments, looks * per_look))
    b = rng.exponential(1.0, (experiments, looks * per_look))
    n = per_look * np.arange(1, looks + 1)
    idx = n - 1
    mean_a, mean_b = np.cumsum(a, 1)[:, idx] / n, np.cumsum(b, 1)[:, idx] / n
    var_a = (np.cumsum(a * a, 1)[:, idx] - n * mean_a**2) / (n - 1)
    var_b = (np.cumsum(b * b, 1)[:, idx] - n * mean_b**2) / (n - 1)
    se = np.sqrt(var_a / n + var_b / n)
    return float(np.mean(np.any(np.abs(mean_b - mean_a) > multiplier(2 * n) * se, axis=1)))


def test_confidence_sequence_holds_under_daily_looks_where_the_fixed_interval_does_not() -> None:
    rng = np.random.default_rng(7)
    experiments, looks, per_look = 1000, 28, 40
    rho = mixture_rho(ALPHA, 2 * looks * per_look)
    sequential = ever_excludes_zero(rng, experiments, looks, per_look, lambda n: boundary_multiplier(n, ALPHA, rho))
    fixed = ever_excludes_zero(rng, experiments, looks, per_look, lambda n: stats.norm.ppf(1 - ALPHA / 2))
    error = 3 * math.sqrt(ALPHA * (1 - ALPHA) / experiments)
    assert sequential <= ALPHA + error
    assert fixed > ALPHA + error  # peeking every day at a fixed-horizon interval inflates the error rate


def test_the_boundary_is_wider_than_fixed_horizon_and_tightest_at_the_tuned_size() -> None:
    z = stats.norm.ppf(1 - ALPHA / 2)
    rho = mixture_rho(ALPHA, 10_000)
    sizes = np.array([1_000, 3_000, 10_000, 30_000, 100_000])
    multipliers = boundary_multiplier(sizes, ALPHA, rho)
    assert np.all(multipliers > z)
    # the multiplier at a given size is smallest for the rho tuned to that size
    for size in (1_000, 100_000):
        assert boundary_multiplier(size, ALPHA, mixture_rho(ALPHA, size)) < boundary_multiplier(size, ALPHA, rho)


def test_rows_are_the_means_difference_and_uplift_with_their_sequences() -> None:
    rng = np.random.default_rng(3)
    control, treatment = rng.exponential(1.0, 4000), rng.exponential(1.2, 4000)
    rows = statistics.compute("always_valid_mean", frame(control, treatment), "x", drop_highest=0.0,
                              optimal_sample_size=8000)
    assert set(rows["statistic"]) == {"always_valid_mean"} and set(rows["ci_width"]) == {0.95}
    difference = rows[(rows.comparison == "difference") & (rows.branch == "treatment")].iloc[0]
    assert difference.point == pytest.approx(treatment.mean() - control.mean())
    se = math.sqrt(treatment.var(ddof=1) / 4000 + control.var(ddof=1) / 4000)
    half = float(boundary_multiplier(8000, ALPHA, mixture_rho(ALPHA, 8000))) * se
    assert (difference.lower, difference.upper) == pytest.approx((difference.point - half, difference.point + half))
    uplift = rows[(rows.comparison == "relative_uplift") & (rows.branch == "treatment")].iloc[0]
    assert uplift.point == pytest.approx(treatment.mean() / control.mean() - 1)
    assert uplift.lower > 0  # a 20% effect on 8,000 clients is found
    records = statistics_records(rows.assign(window_index=1))
    Statistics.model_validate(records)
    assert len(records) == 2 + 4  # two branches, two ordered pairs × (difference, relative_uplift)


def test_an_all_zero_reference_has_no_relative_uplift_but_the_others_are_compared() -> None:
    rows = statistics.compute("always_valid_mean", frame(np.zeros(50), np.ones(50)), "x")
    failures = statistics.computation_errors(rows)
    assert [f.reference_branch for f in failures] == ["control"]
    assert set(rows.loc[rows.comparison.notna(), "comparison_to_branch"]) == {"treatment"}


@pytest.mark.parametrize("value", [0, -5, 2.5, True])
def test_optimal_sample_size_must_be_a_positive_integer(value) -> None:
    with pytest.raises(statistics.StatisticConfigError, match="optimal_sample_size"):
        statistics.compute("always_valid_mean", frame(np.ones(5), np.ones(5)), "x", optimal_sample_size=value)
