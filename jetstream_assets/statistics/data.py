"""Turning the caller's client-level frame into per-branch float arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd


def branches_of(data: pd.DataFrame) -> list[str]:
    """Branches in order of first appearance (Jetstream's `df.branch.unique()`); a categorical column also
    lists its unused categories, so that a branch nobody is in still gets a count of 0."""
    column = data["branch"]
    seen = [str(b) for b in column.dropna().unique()]
    if isinstance(column.dtype, pd.CategoricalDtype):
        seen += [str(c) for c in column.cat.categories if str(c) not in seen]
    return seen


def as_float(series: pd.Series) -> np.ndarray:
    """Float values with NULL as NaN, whatever the dtype (nullable Int64/boolean from the warehouse included)."""
    return series.to_numpy(dtype=float, na_value=np.nan)


def values_by_branch(data: pd.DataFrame, columns: str | list[str], branches: list[str]) -> dict[str, np.ndarray]:
    """Each branch's values of `columns` (1-D for one column, n×k for a list); branches with no rows are left out."""
    labels = data["branch"].astype(str).to_numpy()
    if isinstance(columns, str):
        values = as_float(data[columns])
    else:
        values = np.column_stack([as_float(data[c]) for c in columns]) if len(data) else np.empty((0, len(columns)))
    out = {}
    for branch in branches:
        selected = values[labels == branch]
        if len(selected):
            out[branch] = selected
    return out
