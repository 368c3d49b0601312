"""`empirical_cdf` and `kernel_density_estimate`: per-branch curves on a grid (parameter = x)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from jetstream_assets.statistics.data import branches_of, values_by_branch
from jetstream_assets.statistics.errors import StatisticConfigError
from jetstream_assets.statistics.rows import Row, StatisticOutput

CHUNK_ELEMENTS = 2_000_000


def make_grid(values: np.ndarray, size: int, log_space: bool) -> tuple[np.ndarray, bool]:
    """Jetstream's `_make_grid`: linear from min to max, or geometric when asked and the values allow it
    (non-negative, not all zero; a zero minimum starts the grid at the smallest positive value)."""
    start, stop = float(values.min()), float(values.max())
    geometric = log_space and start >= 0 and stop > 0
    if geometric and start == 0:
        start = float(values[values > 0].min())
    return (np.geomspace if geometric else np.linspace)(start, stop, size), geometric


def _curve_rows(
    statistic: str, data: pd.DataFrame, metric: str, grid_size: int, log_space: bool,
    evaluate: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> StatisticOutput:
    out = StatisticOutput()
    for branch, values in values_by_branch(data, metric, branches_of(data)).items():
        grid, geometric = make_grid(values, grid_size, log_space)
        if geometric and values.min() == 0:  # the geometric grid cannot hold 0: Jetstream adds it as a row
            out.rows.append(Row(statistic, branch, float(evaluate(values, np.zeros(1))[0]), parameter=0.0))
        out.rows.extend(Row(statistic, branch, float(y), parameter=float(x))
                        for x, y in zip(grid, evaluate(values, grid), strict=True))
    return out


def ecdf(values: np.ndarray, points: np.ndarray) -> np.ndarray:
    """statsmodels `ECDF`: the fraction of values <= x."""
    return np.searchsorted(np.sort(values), points, side="right") / len(values)


def empirical_cdf(
    data: pd.DataFrame, metric: str, seed: int | None, *, grid_size: int, log_space: bool,
) -> StatisticOutput:
    return _curve_rows("empirical_cdf", data, metric, grid_size, log_space, ecdf)


def kde_bandwidth(bandwidth: str | float, n: int) -> float:
    """scikit-learn `KernelDensity`'s rules, which Jetstream uses: they do not scale by the data's spread."""
    if bandwidth == "scott":
        return n ** (-1 / 5)
    if bandwidth == "silverman":
        return (n * 3 / 4) ** (-1 / 5)
    return float(bandwidth)


def gaussian_kde(values: np.ndarray, points: np.ndarray, bandwidth: float) -> np.ndarray:
    """Gaussian kernel density at `points`, accumulated in chunks of the data to bound memory."""
    density = np.zeros(len(points))
    chunk = max(1, CHUNK_ELEMENTS // max(1, len(points)))
    for start in range(0, len(values), chunk):
        z = (points[:, None] - values[None, start:start + chunk]) / bandwidth
        density += np.exp(-0.5 * z * z).sum(axis=1)
    return density / (len(values) * bandwidth * math.sqrt(2 * math.pi))


def kernel_density_estimate(
    data: pd.DataFrame, metric: str, seed: int | None, *, bandwidth: str | float, adjust: float, kernel: str,
    grid_size: int, log_space: bool,
) -> StatisticOutput:
    if not math.isclose(adjust, 1.0):
        raise StatisticConfigError("kernel_density_estimate", "only adjust=1.0 is supported", "adjust")
    if kernel != "gaussian":
        raise StatisticConfigError("kernel_density_estimate", f"unsupported kernel {kernel!r}", "kernel")
    if bandwidth not in ("scott", "silverman") and not isinstance(bandwidth, int | float):
        raise StatisticConfigError("kernel_density_estimate", f"unsupported bandwidth {bandwidth!r}", "bandwidth")
    return _curve_rows(
        "kernel_density_estimate", data, metric, grid_size, log_space,
        lambda values, points: gaussian_kde(values, points, kde_bandwidth(bandwidth, len(values))),
    )
