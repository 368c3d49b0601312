"""Multiple-testing control per outcome: Bonferroni-adjusted intervals, written as extra schema-v4 rows.

An outcome is a family of m = (its metrics) × (branches - 1) comparisons against a reference branch. An
outcome with `multiple_testing = "bonferroni"` gets, next to each comparison row of its metrics, a row at
`ci_width` = 1 - (1 - c) / m, which holds for all m comparisons at once with probability ≥ c (family-wise).
The unadjusted rows stay, so Experimenter and every reader of the plain rows see what they always saw;
a reader tells the adjusted rows apart by their larger `ci_width`.

The adjusted row is the unadjusted one with each half-width stretched by z(1 - (1-c)/2m) / z(1 - (1-c)/2):
- exact for normal-theory intervals (`linear_model_mean`) and for a percentile bootstrap whose sampling
  distribution is normal, which the bootstrap means are for the sample sizes experiments have;
- conservative for the confidence sequences of `always_valid_mean`, whose width grows like
  sqrt(log(1/α)), more slowly in 1/α than z does.
Rows with a `parameter` (deciles, KDE, ECDF) and rows without an interval are not adjusted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

BONFERRONI = "bonferroni"
METHODS = frozenset({BONFERRONI})


def family_size(metrics: int, branches: int) -> int:
    """Comparisons in an outcome's family: each metric, each non-reference branch against the reference."""
    return max(metrics * (branches - 1), 1)


def bonferroni_width(confidence_interval: float, comparisons: int) -> float:
    """The per-comparison confidence that gives `confidence_interval` for all `comparisons` together."""
    return 1 - (1 - confidence_interval) / comparisons


def stretch_factor(confidence_interval, adjusted):
    """How much wider a normal interval at `adjusted` is than one at `confidence_interval` (numpy-friendly)."""
    return stats.norm.ppf((1 + adjusted) / 2) / stats.norm.ppf((1 + confidence_interval) / 2)


def bonferroni_rows(frame: pd.DataFrame, families: Iterable[Sequence[str]], branches: int) -> pd.DataFrame:
    """`frame` (statistics rows of one window) plus the adjusted rows of every family (a family = the
    metric names of one outcome). A metric in two families gets one adjusted row per family size."""
    adjusted = [frame]
    for metrics in families:
        m = family_size(len(metrics), branches)
        if m < 2:
            continue
        eligible = (
            frame["metric"].isin(list(metrics)) & frame["comparison"].notna() & frame["parameter"].isna()
            & frame["ci_width"].notna() & frame["lower"].notna() & frame["upper"].notna()
        )
        rows = frame[eligible].copy()
        if rows.empty:
            continue
        width = rows["ci_width"].astype(float).to_numpy()
        new_width = bonferroni_width(width, m)
        factor = stretch_factor(width, new_width)
        point = rows["point"].to_numpy(dtype=float)
        rows["lower"] = point - (point - rows["lower"].to_numpy(dtype=float)) * factor
        rows["upper"] = point + (rows["upper"].to_numpy(dtype=float) - point) * factor
        rows["ci_width"] = np.round(new_width, 9)
        adjusted.append(rows)
    if len(adjusted) == 1:
        return frame
    return pd.concat(adjusted, ignore_index=True).drop_duplicates(
        subset=["metric", "statistic", "parameter", "branch", "comparison", "comparison_to_branch", "ci_width",
                "segment", "analysis_basis"],
    )
