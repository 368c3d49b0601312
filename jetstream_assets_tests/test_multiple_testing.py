"""Bonferroni-adjusted intervals per outcome, against their definition: family-wise coverage in simulation,
monotone in the family size, containing the unadjusted interval; and the outcome config key."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mozilla_nimbus_schemas.jetstream import Statistics
from scipy import stats

from jetstream_assets import statistics
from jetstream_assets.analysis.exports import statistics_records
from jetstream_assets.metric_hub.errors import ConfigError
from jetstream_assets.metric_hub.outcomes import parse_outcome
from jetstream_assets.metric_hub.toml_file import read_toml
from jetstream_assets.statistics.multiple_testing import bonferroni_rows, bonferroni_width, family_size, stretch_factor
from jetstream_assets.statistics.sequential import boundary_multiplier, mixture_rho

ALPHA = 0.05


def normal_rows(points: np.ndarray, se: float, metrics: list[str]) -> pd.DataFrame:
    """Treatment-vs-control rows with 95% normal intervals (as linear_model_mean writes them)."""
    z = stats.norm.ppf(1 - ALPHA / 2)
    return pd.DataFrame({
        "metric": metrics, "statistic": "mean_lm", "parameter": None, "branch": "treatment",
        "comparison": "difference", "comparison_to_branch": "control", "ci_width": 0.95, "point": points,
        "lower": points - z * se, "upper": points + z * se, "segment": "all", "analysis_basis": "enrollments",
    })


def test_adjusted_intervals_cover_the_whole_family_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(11)
    metrics = [f"m{i}" for i in range(10)]
    experiments, se = 2000, 1.0
    # one simulated experiment per segment value; every true difference is 0
    frame = normal_rows(rng.normal(0.0, se, experiments * len(metrics)), se, metrics * experiments)
    frame["segment"] = np.repeat([f"e{j}" for j in range(experiments)], len(metrics))
    rows = bonferroni_rows(frame, [metrics], branches=2)

    def family_misses(intervals: pd.DataFrame) -> float:
        return float(((intervals.lower > 0) | (intervals.upper < 0)).groupby(intervals.segment).any().mean())

    error = 3 * math.sqrt(ALPHA * (1 - ALPHA) / experiments)
    assert family_misses(rows[rows.ci_width > 0.95]) <= ALPHA + error
    assert family_misses(frame) > 0.3  # 1 - 0.95^10 = 0.40 without the adjustment


def test_adjustment_is_monotone_in_the_family_size_and_contains_the_unadjusted_interval() -> None:
    frame = normal_rows(np.array([0.3]), 0.1, ["m0"])
    widths, previous = [], (frame.lower[0], frame.upper[0])
    for metrics in (2, 5, 20, 60):
        family = ["m0", *(f"other{i}" for i in range(metrics - 1))]
        adjusted = bonferroni_rows(frame, [family], branches=3).iloc[-1]
        assert adjusted.ci_width == pytest.approx(bonferroni_width(0.95, family_size(metrics, 3)))
        assert adjusted.lower < previous[0] and adjusted.upper > previous[1]
        previous = (adjusted.lower, adjusted.upper)
        widths.append(adjusted.upper - adjusted.lower)
    assert widths == sorted(widths)
    assert family_size(1, 2) == 1 and bonferroni_rows(frame, [["m0"]], branches=2) is frame  # nothing to adjust


def test_adjusted_rows_of_real_statistics_are_schema_v4_and_skip_rows_without_intervals() -> None:
    rng = np.random.default_rng(5)
    data = pd.DataFrame({"branch": ["control"] * 500 + ["treatment"] * 500,
                         "a": rng.exponential(1.0, 1000), "b": rng.integers(0, 2, 1000)})
    frame = pd.DataFrame.from_records(
        [r for rows in (statistics.compute("bootstrap_mean", data, "a", seed=1, num_samples=2000),
                        statistics.compute("binomial", data, "b", seed=1), statistics.compute("count", data, "a"))
         for r in rows.to_dict("records")])
    rows = bonferroni_rows(frame, [["a", "b"]], branches=2)
    added = rows.iloc[len(frame):]
    assert set(added.ci_width) == {0.975}  # 2 metrics × 1 comparison
    assert set(added.statistic) == {"mean", "binomial"} and added.comparison.notna().all()
    assert len(added) == 2 * 2 * 2  # 2 metrics × 2 ordered pairs × (difference, relative_uplift)
    Statistics.model_validate(statistics_records(rows.assign(window_index=1)))


def test_the_outcome_key_switches_it_on_and_a_wrong_value_names_file_and_field(tmp_path: Path) -> None:
    def outcome(extra: str):
        path = tmp_path / "o.toml"
        path.write_text(f'friendly_name = "O"\ndescription = "D"\n{extra}\n[metrics.m]\nselect_expression = "1"\n'
                        'data_source = "clients_daily"\nstatistics = { bootstrap_mean = {} }\n')
        return parse_outcome(read_toml(path), "o").outcome

    assert outcome('multiple_testing = "bonferroni"').multiple_testing == "bonferroni"
    assert outcome("").multiple_testing is None
    with pytest.raises(ConfigError, match="o.toml.*multiple_testing.*bonferroni"):
        outcome('multiple_testing = "holm"')


@pytest.mark.parametrize("comparisons", [2, 10, 60])
def test_stretching_an_always_valid_interval_is_conservative(comparisons: int) -> None:
    """The exact Bonferroni confidence sequence (the boundary at α/m) is never wider than the stretched one."""
    rho = mixture_rho(ALPHA, 10_000)
    sizes = np.array([100, 1_000, 10_000, 100_000, 1_000_000])
    exact = boundary_multiplier(sizes, ALPHA / comparisons, rho)
    stretched = boundary_multiplier(sizes, ALPHA, rho) * stretch_factor(0.95, bonferroni_width(0.95, comparisons))
    assert np.all(exact <= stretched)
