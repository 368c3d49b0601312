"""Result rows in Jetstream's statistics schema (v4) and the summaries that fill them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from jetstream_assets.core.schema import STATISTICS_SCHEMA, column_names

STATISTICS_COLUMNS = column_names(STATISTICS_SCHEMA)
DIFFERENCE = "difference"
RELATIVE_UPLIFT = "relative_uplift"


@dataclass(frozen=True)
class Row:
    """One statistics row before the metric/segment/basis columns are attached."""

    statistic: str
    branch: str
    point: float | None
    lower: float | None = None
    upper: float | None = None
    parameter: float | None = None
    comparison: str | None = None
    comparison_to_branch: str | None = None
    ci_width: float | None = None


@dataclass(frozen=True)
class ReferenceFailure:
    """A reference branch the statistic could not compare against, and why."""

    reference_branch: str
    reason: str


@dataclass
class StatisticOutput:
    """What one statistic produced: its rows, and the reference branches it could not compare against."""

    rows: list[Row] = field(default_factory=list)
    failures: list[ReferenceFailure] = field(default_factory=list)

    def extend(self, other: StatisticOutput) -> None:
        self.rows.extend(other.rows)
        self.failures.extend(other.failures)


def interval_quantiles(confidence_interval: float) -> tuple[float, float]:
    """Jetstream's critical points: (1-ci)/2 and 1-(1-ci)/2."""
    critical = (1 - confidence_interval) / 2
    return critical, 1 - critical


def summarize_samples(samples: np.ndarray, confidence_interval: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and percentile interval along axis 0 (mozanalysis: `np.mean`, `np.quantile` with linear interpolation)."""
    low_q, high_q = interval_quantiles(confidence_interval)
    with np.errstate(invalid="ignore", over="ignore"):
        mean = np.mean(samples, axis=0)
        low, high = np.quantile(samples, [low_q, high_q], axis=0)
    return np.atleast_1d(mean), np.atleast_1d(low), np.atleast_1d(high)


def finite_or_nan(value: float | None) -> float:
    """Jetstream writes NaN and ±inf as NULL; a float NaN is this layer's NULL."""
    if value is None:
        return math.nan
    value = float(value)
    return value if math.isfinite(value) else math.nan


def normalize_parameter(value: float | str | None) -> float | None:
    """Jetstream stores parameters rounded to 6 decimals (its `normalize_decimal`)."""
    if value is None:
        return None
    return round(float(value), 6)


def to_frame(rows: list[Row], metric: str, segment: str, analysis_basis: str) -> pd.DataFrame:
    """Rows as a DataFrame with exactly the columns of `STATISTICS_SCHEMA`, in its order."""
    records = [
        {
            "metric": metric,
            "statistic": r.statistic,
            "parameter": normalize_parameter(r.parameter),
            "branch": r.branch,
            "comparison": r.comparison,
            "comparison_to_branch": r.comparison_to_branch,
            "ci_width": None if r.ci_width is None else float(r.ci_width),
            "point": finite_or_nan(r.point),
            "lower": finite_or_nan(r.lower),
            "upper": finite_or_nan(r.upper),
            "segment": segment,
            "analysis_basis": analysis_basis,
        }
        for r in rows
    ]
    frame = pd.DataFrame.from_records(records, columns=STATISTICS_COLUMNS)
    frame["parameter"] = frame["parameter"].astype(object).where(frame["parameter"].notna(), None)
    for column in ("point", "lower", "upper"):
        frame[column] = frame[column].astype(float)
    return frame
