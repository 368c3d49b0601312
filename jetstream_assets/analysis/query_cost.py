"""Summaries of one day of `monitoring.query_cost_v1` rows: the costliest queries, per-experiment totals,
and the queries above the alert threshold (Jetstream's cost alert: a single analysis query costing too much).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

QUERY_TEXT_LIMIT = 1000  # characters of SQL kept in alerts and previews; analysis queries run to many KB
UNATTRIBUTED = "(none)"


@dataclass(frozen=True)
class CostlyQuery:
    experiment_slug: str
    destination_table: str
    cost_usd: float
    total_bytes_processed: int
    query: str  # truncated to QUERY_TEXT_LIMIT


@dataclass(frozen=True)
class ExperimentCost:
    experiment_slug: str
    queries: int
    total_bytes_processed: int
    cost_usd: float


def truncate_sql(sql: str, limit: int = QUERY_TEXT_LIMIT) -> str:
    sql = " ".join(sql.split())  # one line: readable in a table cell
    return sql if len(sql) <= limit else sql[: limit - 1] + "…"


def _costed(costs: pd.DataFrame) -> pd.DataFrame:
    """Rows with their cost known (queries logged before byte estimation have none), costliest first."""
    known = costs[costs["cost_usd"].notna()]
    return known.sort_values(["cost_usd", "submission_timestamp"], ascending=[False, True], kind="stable")


def _costly(row) -> CostlyQuery:
    return CostlyQuery(
        experiment_slug=row.experiment_slug if isinstance(row.experiment_slug, str) else UNATTRIBUTED,
        destination_table=row.destination_table,
        cost_usd=float(row.cost_usd),
        total_bytes_processed=int(row.total_bytes_processed),
        query=truncate_sql(row.query or ""),
    )


def top_queries(costs: pd.DataFrame, limit: int = 10) -> list[CostlyQuery]:
    return [_costly(row) for row in _costed(costs).head(limit).itertuples(index=False)]


def queries_above(costs: pd.DataFrame, threshold_usd: float) -> list[CostlyQuery]:
    """Every query whose own cost exceeds the threshold, costliest first."""
    known = _costed(costs)
    return [_costly(row) for row in known[known["cost_usd"] > threshold_usd].itertuples(index=False)]


def experiment_totals(costs: pd.DataFrame) -> list[ExperimentCost]:
    """Queries, bytes and cost per experiment, costliest experiment first."""
    if costs.empty:
        return []
    slugs = costs["experiment_slug"].fillna(UNATTRIBUTED)
    grouped = costs.assign(experiment_slug=slugs).groupby("experiment_slug", sort=True).agg(
        queries=("query", "size"),
        total_bytes_processed=("total_bytes_processed", "sum"),
        cost_usd=("cost_usd", "sum"),
    )
    grouped = grouped.sort_values("cost_usd", ascending=False, kind="stable")
    return [
        ExperimentCost(slug, int(r.queries), int(r.total_bytes_processed), float(r.cost_usd))
        for slug, r in grouped.iterrows()
    ]
