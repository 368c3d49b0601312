"""Bootstrap statistics of means: `bootstrap_mean`, `population_ratio`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jetstream_assets.statistics.bootstrap import bayesian_bootstrap_means, bootstrap_ratios, clip_high
from jetstream_assets.statistics.comparisons import comparison_rows, individual_rows
from jetstream_assets.statistics.data import branches_of, values_by_branch
from jetstream_assets.statistics.rows import StatisticOutput, interval_quantiles
from jetstream_assets.statistics.seeding import branch_rng


def _bayesian_mean_samples(
    data: pd.DataFrame, metric: str, seed: int | None, num_samples: int, drop_highest: float,
    confidence_interval: float,
) -> dict[str, np.ndarray]:
    """Each branch's bootstrap means, drawn once and shared by every reference branch."""
    interval_quantile = interval_quantiles(confidence_interval)[0]
    return {
        branch: bayesian_bootstrap_means(clip_high(values, 1 - drop_highest), num_samples,
                                         branch_rng(seed, branch), interval_quantile)
        for branch, values in values_by_branch(data, metric, branches_of(data)).items()
    }


def bootstrap_mean(
    data: pd.DataFrame, metric: str, seed: int | None, *, num_samples: int, drop_highest: float,
    confidence_interval: float,
) -> StatisticOutput:
    """Jetstream `bootstrap_mean` → stored as `mean` (mozanalysis `bayesian_bootstrap.compare_branches`)."""
    samples = _bayesian_mean_samples(data, metric, seed, num_samples, drop_highest, confidence_interval)
    out = StatisticOutput(individual_rows(samples, "mean", confidence_interval))
    out.extend(comparison_rows(samples, "mean", confidence_interval))
    return out


def population_ratio(
    data: pd.DataFrame, metric: str, seed: int | None, *, numerator: str, denominator: str,
    num_samples: int, drop_highest: float, confidence_interval: float,
) -> StatisticOutput:
    """Jetstream `population_ratio`: frequentist bootstrap of mean(numerator)/mean(denominator) per branch."""
    interval_quantile = interval_quantiles(confidence_interval)[0]
    samples = {}
    for branch, values in values_by_branch(data, [numerator, denominator], branches_of(data)).items():
        clipped = clip_high(values, 1 - drop_highest)
        samples[branch] = bootstrap_ratios(clipped[:, 0], clipped[:, 1], num_samples, branch_rng(seed, branch),
                                           interval_quantile)
    out = StatisticOutput(individual_rows(samples, "population_ratio", confidence_interval))
    out.extend(comparison_rows(samples, "population_ratio", confidence_interval))
    return out
