"""`count` and `sum`: one row per branch, no interval, no comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd

from jetstream_assets.statistics.data import branches_of, values_by_branch
from jetstream_assets.statistics.rows import Row, StatisticOutput


def count(data: pd.DataFrame, metric: str, seed: int | None) -> StatisticOutput:
    """Clients per branch (0 for a branch listed as a category but with no rows)."""
    labels = data["branch"].astype(str)
    return StatisticOutput([Row("count", b, float((labels == b).sum())) for b in branches_of(data)])


def sum_(data: pd.DataFrame, metric: str, seed: int | None) -> StatisticOutput:
    """Per-branch sum, skipping NULLs (pandas `groupby().sum()`, as Jetstream)."""
    values = values_by_branch(data, metric, branches_of(data))
    return StatisticOutput([
        Row("sum", b, float(np.nansum(values.get(b, np.zeros(0))))) for b in branches_of(data)
    ])
