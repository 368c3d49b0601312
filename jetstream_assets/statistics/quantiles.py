"""`deciles`: resampling-free quantile bootstrap (mozanalysis `compare_branches_quantiles`, arXiv 2202.10992).

The bootstrap distribution of the q-th sample quantile is that of the order statistic at index
Binomial(n-1, q) of the sorted data, so no resample is ever materialised.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from jetstream_assets.statistics.comparisons import comparison_rows, individual_rows
from jetstream_assets.statistics.data import branches_of, values_by_branch
from jetstream_assets.statistics.rows import StatisticOutput
from jetstream_assets.statistics.seeding import branch_rng

DECILES = tuple(round(0.1 * i, 1) for i in range(1, 10))


def quantile_samples(values: np.ndarray, quantiles: tuple[float, ...], num_samples: int,
                     rng: np.random.Generator) -> np.ndarray:
    """num_samples × len(quantiles) bootstrap draws of the sample quantiles."""
    ordered = np.sort(values)
    return np.column_stack([ordered[rng.binomial(len(ordered) - 1, q, num_samples)] for q in quantiles])


def deciles(
    data: pd.DataFrame, metric: str, seed: int | None, *, confidence_interval: float, num_samples: int,
) -> StatisticOutput:
    """Rows per branch and decile (parameter = q); comparisons per decile for every pair of branches."""
    samples = {
        branch: quantile_samples(values, DECILES, num_samples, branch_rng(seed, branch))
        for branch, values in values_by_branch(data, metric, branches_of(data)).items()
    }
    out = StatisticOutput(individual_rows(samples, "deciles", confidence_interval, DECILES))
    out.extend(comparison_rows(samples, "deciles", confidence_interval, DECILES))
    return out
