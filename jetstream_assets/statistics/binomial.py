"""`binomial`: conversion rates with a Beta(1, 1) prior (mozanalysis `bayesian_stats.binary`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from jetstream_assets.statistics.comparisons import comparison_rows
from jetstream_assets.statistics.data import branches_of, values_by_branch
from jetstream_assets.statistics.errors import StatisticComputationError
from jetstream_assets.statistics.rows import Row, StatisticOutput, interval_quantiles
from jetstream_assets.statistics.seeding import branch_rng

NUM_SAMPLES = 10_000  # mozanalysis' default; Jetstream does not expose it


def binomial(data: pd.DataFrame, metric: str, seed: int | None, *, confidence_interval: float) -> StatisticOutput:
    """Individual rows are analytic (posterior mean and `beta.ppf`); comparisons use 10,000 posterior draws."""
    values = values_by_branch(data, metric, branches_of(data))
    for branch_values in values.values():
        if not np.isin(branch_values, (0.0, 1.0)).all():
            raise StatisticComputationError(metric, "binomial", f"all values in column '{metric}' must be 0 or 1")
    low_q, high_q = interval_quantiles(confidence_interval)
    out = StatisticOutput()
    samples = {}
    for branch, branch_values in values.items():
        conversions = float(branch_values.sum())
        posterior = stats.beta(conversions + 1, len(branch_values) - conversions + 1)
        lower, upper = posterior.ppf([low_q, high_q])
        out.rows.append(Row("binomial", branch, posterior.mean(), lower, upper, ci_width=confidence_interval))
        samples[branch] = branch_rng(seed, branch).beta(posterior.args[0], posterior.args[1], NUM_SAMPLES)
    out.extend(comparison_rows(samples, "binomial", confidence_interval))
    return out
