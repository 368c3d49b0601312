"""Bootstrap samples of a branch's mean (Bayesian, as mozanalysis `bayesian_bootstrap`) and of a ratio of
means (frequentist, as mozanalysis `frequentist_stats.bootstrap`), drawn in vectorised form.

mozanalysis loops over 10,000 resamples in Python, each touching every distinct value. Here:

* Bayesian bootstrap: the values are tallied (`np.unique`), so a resample is `values · Dirichlet(counts)`;
  equivalently Σ g_j v_j / Σ g_j with g_j ~ Gamma(count_j). Few distinct values: exact chunked gamma
  draws. Many distinct values: the weighted mean M has exact cumulants (Dirichlet moments, with
  n = Σ counts, d_j = v_j - mean, S_k = Σ count_j d_j^k and rising factorials n^(k)):
  E M = mean, Var M = S2/n^(2), κ3 = 2·S3/n^(3), κ4 = (6·S4 + 3·S2²)/n^(4) - 3·Var².
  We draw M from the Pearson type III distribution matching the first three, and accept it only when the
  κ4 mismatch shifts the reported quantiles by less than a quarter of their Monte Carlo error
  (see `approximation`). Otherwise: exact draws, however many.
* Frequentist bootstrap of mean(x)/mean(y): the resampled means are a multinomial average whose pair
  (x̄*, ȳ*) has mean (x̄, ȳ) and covariance Cov(x, y)/n exactly; for large n we draw the pair from the
  bivariate normal and accept it when the skewness of the linearised ratio is within Monte Carlo error.
  Otherwise: exact index resampling.
"""

from __future__ import annotations

import numpy as np

from jetstream_assets.statistics.approximation import (
    kurtosis_shift,
    sample_pearson_type3,
    skewness_shift,
    within_monte_carlo_error,
)

# Exact draws are used whenever they cost at most this many random numbers per branch (~0.1 s).
EXACT_DRAW_BUDGET = 5_000_000
# Elements per chunk of exact draws, to bound memory (8 bytes each).
CHUNK_ELEMENTS = 2_000_000


def clip_high(values: np.ndarray, threshold_quantile: float | None) -> np.ndarray:
    """mozanalysis `filter_outliers`: cap each column at its (per-branch) quantile; nothing is dropped."""
    if not threshold_quantile or len(values) == 0:
        return values
    return np.clip(values, np.min(values, axis=0), np.quantile(values, threshold_quantile, axis=0))


def dirichlet_mean_cumulants(values: np.ndarray, counts: np.ndarray) -> tuple[float, float, float, float]:
    """Mean, variance, third and fourth cumulants of values·Dirichlet(counts) (see the module docstring)."""
    n = float(counts.sum())
    mean = float(counts @ values) / n
    d = values - mean
    d2 = d * d
    s2, s3, s4 = float(counts @ d2), float(counts @ (d2 * d)), float(counts @ (d2 * d2))
    rising2 = n * (n + 1)
    rising3 = rising2 * (n + 2)
    rising4 = rising3 * (n + 3)
    variance = s2 / rising2
    return mean, variance, 2 * s3 / rising3, (6 * s4 + 3 * s2 * s2) / rising4 - 3 * variance * variance


def exact_dirichlet_means(
    values: np.ndarray, counts: np.ndarray, num_samples: int, rng: np.random.Generator,
) -> np.ndarray:
    shapes = counts.astype(float)
    all_single = bool((counts == 1).all())  # Gamma(1) is Exp(1), which numpy draws about twice as fast
    out = np.empty(num_samples)
    chunk = max(1, CHUNK_ELEMENTS // len(values))
    for start in range(0, num_samples, chunk):
        size = min(chunk, num_samples - start)
        shape = (size, len(values))
        weights = rng.standard_exponential(shape) if all_single else rng.standard_gamma(shapes, size=shape)
        out[start:start + size] = (weights @ values) / weights.sum(axis=1)
    return out


def bayesian_bootstrap_means(
    data: np.ndarray, num_samples: int, rng: np.random.Generator, interval_quantile: float,
) -> np.ndarray:
    """`num_samples` Bayesian-bootstrap means of `data` (already clipped), exact within Monte Carlo error.

    `interval_quantile` is the lower reported quantile, (1-ci)/2, which the accuracy check is about.
    """
    values, counts = np.unique(data, return_counts=True)
    if len(values) * num_samples > EXACT_DRAW_BUDGET:
        mean, variance, k3, k4 = dirichlet_mean_cumulants(values, counts)
        if variance > 0:
            kurtosis_mismatch = k4 / variance**2 - 1.5 * (k3 / variance**1.5) ** 2
            if within_monte_carlo_error(kurtosis_shift(kurtosis_mismatch, interval_quantile), interval_quantile,
                                        num_samples):
                return sample_pearson_type3(mean, variance, k3, num_samples, rng)
    return exact_dirichlet_means(values, counts, num_samples, rng)


def exact_bootstrap_ratios(
    numerator: np.ndarray, denominator: np.ndarray, num_samples: int, rng: np.random.Generator,
) -> np.ndarray:
    n = len(numerator)
    out = np.empty(num_samples)
    chunk = max(1, CHUNK_ELEMENTS // n)
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, num_samples, chunk):
            size = min(chunk, num_samples - start)
            index = rng.integers(0, n, size=(size, n))
            out[start:start + size] = numerator[index].mean(axis=1) / denominator[index].mean(axis=1)
    return out


def bootstrap_ratios(
    numerator: np.ndarray, denominator: np.ndarray, num_samples: int, rng: np.random.Generator,
    interval_quantile: float,
) -> np.ndarray:
    """`num_samples` frequentist-bootstrap values of mean(numerator)/mean(denominator), exact within MC error."""
    n = len(numerator)
    if n * num_samples > EXACT_DRAW_BUDGET:
        x_bar, y_bar = numerator.mean(), denominator.mean()
        if y_bar != 0:
            linearised = numerator - (x_bar / y_bar) * denominator  # mean zero by construction
            m2 = float(np.mean(linearised**2))
            if m2 > 0:
                skewness = float(np.mean(linearised**3)) / (m2**1.5 * np.sqrt(n))
                if within_monte_carlo_error(skewness_shift(skewness, interval_quantile), interval_quantile,
                                            num_samples):
                    covariance = np.cov(numerator, denominator, ddof=0) / n
                    means = rng.multivariate_normal([x_bar, y_bar], covariance, size=num_samples)
                    return means[:, 0] / means[:, 1]
    return exact_bootstrap_ratios(numerator, denominator, num_samples, rng)
