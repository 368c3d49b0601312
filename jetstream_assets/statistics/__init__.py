"""Jetstream's statistics, computed with numpy/scipy/pandas only.

`compute()` turns client-level data into rows of the statistics schema (v4). Per-reference-branch
failures do not raise: the rows that could be computed are returned, and the failures travel with them
as `StatisticComputationError`s in `rows.attrs["computation_errors"]` (read them with
`computation_errors(rows)`; the caller logs one row per failure). `compute()` itself raises
`StatisticConfigError` for a configuration mistake and `StatisticComputationError` when the data cannot be
analysed at all (a missing column, NULLs left by a pre-treatment, non-binary values for `binomial`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from jetstream_assets.statistics.errors import StatisticComputationError, StatisticConfigError
from jetstream_assets.statistics.pre_treatments import parse_pre_treatments
from jetstream_assets.statistics.registry import STATISTICS, available_statistics, definition
from jetstream_assets.statistics.rows import STATISTICS_COLUMNS, to_frame
from jetstream_assets.statistics.seeding import stable_seed

__all__ = [
    "STATISTICS",
    "STATISTICS_COLUMNS",
    "StatisticComputationError",
    "StatisticConfigError",
    "available_statistics",
    "compute",
    "computation_errors",
    "stable_seed",
]

ERRORS_ATTR = "computation_errors"


def compute(
    statistic_name: str, data: pd.DataFrame, metric: str, *, segment: str = "all",
    analysis_basis: str = "enrollments", seed: int | None = None, window_days: int | None = None, **params,
) -> pd.DataFrame:
    """Rows of `statistic_name` (a Jetstream config name) for `metric` in `data` (`branch` + value columns).

    Same data and same `seed` give identical rows; `seed=None` is random, as in mozanalysis.
    Rows with NULL in the columns a statistic reads are left out first (Jetstream queries
    `<metric> IS NOT NULL`), then the declared `pre_treatments` run in order.
    """
    stat = definition(statistic_name)
    params = dict(params)
    pre_treatments = parse_pre_treatments(statistic_name, params.pop("pre_treatments", None))
    resolved = stat.resolve(params)
    columns = stat.columns(metric, resolved)
    missing = [c for c in ["branch", *columns] if c not in data.columns]
    if missing:
        raise StatisticComputationError(metric, statistic_name, f"column(s) {missing} not in the data")

    frame = data.dropna(subset=columns)
    for pre_treatment in pre_treatments:
        frame = pre_treatment.apply(frame, columns, window_days)
    if stat.rejects_nulls and frame[columns].isna().to_numpy().any():
        raise StatisticComputationError(
            metric, statistic_name, "pre-treatments left NULL values (add remove_indefinites)",
        )
    infinite = _infinite_count(frame, columns)
    if infinite:
        # mozanalysis cannot summarise ±inf either; say so instead of publishing NULL estimates
        raise StatisticComputationError(
            metric, statistic_name, f"{infinite} infinite value(s) (add the remove_indefinites pre-treatment)",
        )

    output = stat.function(frame, metric, seed, **resolved)
    rows = to_frame(output.rows, metric, segment, analysis_basis)
    rows.attrs[ERRORS_ATTR] = [
        StatisticComputationError(metric, statistic_name, f.reason, f.reference_branch) for f in output.failures
    ]
    return rows


def _infinite_count(frame: pd.DataFrame, columns: list[str]) -> int:
    numeric = frame[columns].select_dtypes(include="number")
    return int(np.isinf(numeric.to_numpy(dtype=float)).sum()) if numeric.size else 0


def computation_errors(rows: pd.DataFrame) -> list[StatisticComputationError]:
    """The per-reference-branch failures `compute()` attached to its rows (empty when all succeeded).

    Each names the metric, the statistic's config name (e.g. `bootstrap_mean`) and the reference branch.
    """
    return list(rows.attrs.get(ERRORS_ATTR, []))
