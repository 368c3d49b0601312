"""When a sampling distribution may be drawn from its exact low-order moments instead of by brute force.

The bootstraps below have, for large samples, a statistic whose distribution is known exactly up to its
third or fourth cumulant. Drawing from a distribution that matches the leading cumulants is exact *within
Monte Carlo error* when the Cornish-Fisher shift of the reported quantiles caused by the first unmatched
cumulant is small next to the Monte Carlo standard error of those quantiles. We accept the shortcut only
when that shift is at most `MC_ERROR_FRACTION` of the standard error, i.e. smaller than the difference
between two runs of the brute-force bootstrap with different seeds.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

MC_ERROR_FRACTION = 0.25


def quantile_standard_error(q: float, num_samples: int) -> float:
    """Standard error of the q-th sample quantile of `num_samples` draws, in standard deviations (normal case)."""
    return math.sqrt(q * (1 - q) / num_samples) / stats.norm.pdf(stats.norm.ppf(q))


def skewness_shift(skewness: float, q: float) -> float:
    """First Cornish-Fisher term: how far (in sd) ignoring `skewness` moves the q-th quantile."""
    z = stats.norm.ppf(q)
    return abs(skewness) * abs(z * z - 1) / 6


def kurtosis_shift(excess_kurtosis: float, q: float) -> float:
    """Second Cornish-Fisher term: how far (in sd) an `excess_kurtosis` mismatch moves the q-th quantile."""
    z = stats.norm.ppf(q)
    return abs(excess_kurtosis) * abs(z**3 - 3 * z) / 24


def within_monte_carlo_error(shift: float, q: float, num_samples: int) -> bool:
    return shift <= MC_ERROR_FRACTION * quantile_standard_error(q, num_samples)


def sample_pearson_type3(
    mean: float, variance: float, third_cumulant: float, size: int, rng: np.random.Generator,
) -> np.ndarray:
    """Draws from the shifted gamma (Pearson type III) with the given mean, variance and third cumulant.

    The classical three-moment approximation for a weighted sum of independent gamma variates; it reduces
    to the normal distribution as the skewness vanishes.
    """
    if variance <= 0:
        return np.full(size, mean)
    sd = math.sqrt(variance)
    skewness = third_cumulant / sd**3
    if abs(skewness) < 1e-6:  # shape > 4e12: indistinguishable from the normal, and gamma draws lose precision
        return mean + sd * rng.standard_normal(size)
    shape = 4 / skewness**2
    gamma = rng.standard_gamma(shape, size)
    return mean + math.copysign(sd, skewness) * (gamma - shape) / math.sqrt(shape)
