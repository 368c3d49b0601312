"""`always_valid_mean`: confidence sequences for a branch's mean and for the difference and relative uplift
of two branches' means, valid however often the results are looked at (every day, as Jetstream publishes).

A fixed-horizon 95% interval read every day of a 28-day experiment excludes 0 at some look far more often
than 5% of the time under no effect. A confidence sequence covers the true value at *every* sample size
at once with probability 1 - α. We use the asymptotic confidence sequence of Waudby-Smith, Arnold, Wu,
Howard & Ramdas ("Time-uniform central limit theory and asymptotic confidence sequences", Annals of
Statistics 2024, Theorem 2.2, the normal-mixture boundary) that Eppo and GrowthBook also use:

    halfwidth(t) = se(t) · sqrt( 2 (t ρ² + 1) / (t ρ²) · log( sqrt(t ρ² + 1) / α ) )

with t observations and se(t) the estimate's standard error (the paper's σ̂_t/√t). ρ only decides where
the boundary is tightest: ρ² = (-2 log α + log(1 - 2 log α)) / t_opt makes it narrowest at t = t_opt
(the paper's closed-form approximation), and the sequence is valid for any ρ.

For a comparison, t is the number of clients in the two branches and se the Welch standard error of the
difference; the relative uplift uses the delta-method standard error of x̄_focus / x̄_reference - 1.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from jetstream_assets.statistics.bootstrap import clip_high
from jetstream_assets.statistics.comparisons import ALL_ZERO_REFERENCE
from jetstream_assets.statistics.data import branches_of, values_by_branch
from jetstream_assets.statistics.rows import DIFFERENCE, RELATIVE_UPLIFT, ReferenceFailure, Row, StatisticOutput

STORED_NAME = "always_valid_mean"


def mixture_rho(alpha: float, optimal_sample_size: float) -> float:
    """The mixing scale that makes the boundary narrowest at `optimal_sample_size` observations."""
    log_alpha = -2 * math.log(alpha)
    return math.sqrt((log_alpha + math.log(1 + log_alpha)) / optimal_sample_size)


def boundary_multiplier(n, alpha: float, rho: float):
    """How many standard errors wide the confidence sequence is after `n` observations (numpy-friendly)."""
    n_rho2 = np.asarray(n, dtype=float) * rho * rho
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(2 * (n_rho2 + 1) / n_rho2 * np.log(np.sqrt(n_rho2 + 1) / alpha))


def _moments(values: np.ndarray) -> tuple[float, float, int]:
    """Mean, variance of the mean (sample variance / n) and n of one branch."""
    n = len(values)
    variance = float(np.var(values, ddof=1)) if n > 1 else math.nan
    return float(np.mean(values)), variance / n, n


def always_valid_mean(
    data: pd.DataFrame, metric: str, seed: int | None, *, confidence_interval: float, drop_highest: float,
    optimal_sample_size: int,
) -> StatisticOutput:
    """Per-branch means and all-pairs difference / relative uplift, each with its confidence sequence.

    Deterministic: `seed` is unused (accepted like every statistic's). Values are capped at the
    (1 - drop_highest) quantile per branch first, as `bootstrap_mean` does.
    """
    alpha = 1 - confidence_interval
    rho = mixture_rho(alpha, optimal_sample_size)
    moments = {
        branch: _moments(clip_high(values, 1 - drop_highest))
        for branch, values in values_by_branch(data, metric, branches_of(data)).items()
    }
    out = StatisticOutput()
    for branch, (mean, var_mean, n) in moments.items():
        half = boundary_multiplier(n, alpha, rho) * math.sqrt(var_mean)
        out.rows.append(Row(STORED_NAME, branch, mean, mean - half, mean + half, ci_width=confidence_interval))
    for reference, (ref_mean, ref_var, ref_n) in moments.items():
        if ref_mean == 0:
            out.failures.append(ReferenceFailure(reference, ALL_ZERO_REFERENCE))
            continue
        for focus, (mean, var_mean, n) in moments.items():
            if focus == reference:
                continue
            multiplier = boundary_multiplier(n + ref_n, alpha, rho)
            difference = mean - ref_mean
            relative = mean / ref_mean - 1
            se_relative = math.sqrt(var_mean / ref_mean**2 + mean**2 * ref_var / ref_mean**4)
            for comparison, point, se in (
                (DIFFERENCE, difference, math.sqrt(var_mean + ref_var)),
                (RELATIVE_UPLIFT, relative, se_relative),
            ):
                half = multiplier * se
                out.rows.append(Row(STORED_NAME, focus, point, point - half, point + half, comparison=comparison,
                                    comparison_to_branch=reference, ci_width=confidence_interval))
    return out
