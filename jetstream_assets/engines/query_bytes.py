"""Bytes a BigQuery query is billed for under on-demand pricing, estimated from table statistics.

BigQuery is columnar: a query is charged for every column it references in every table it reads,
over all the table's rows (a WHERE clause or LIMIT does not reduce it; unpartitioned tables assumed).
Columns are resolved to tables through CTEs, subqueries and aliases with sqlglot's optimizer; columns a
CTE or subquery selects but nothing downstream uses are pruned, as BigQuery's planner does. A column
that cannot be resolved charges every column of the tables of its scope: the estimate errs high,
never low.

Per-type sizes follow "Data size calculation" in BigQuery's pricing documentation
(https://cloud.google.com/bigquery/pricing#data_size_calculation); the engine that owns the data turns
them into per-column totals (`TableStats.column_bytes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import sqlglot
from sqlglot import exp
from sqlglot.dialects.bigquery import BigQuery
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.pushdown_projections import pushdown_projections
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope

MIB = 1 << 20

# https://cloud.google.com/bigquery/pricing#on_demand_pricing: "Charges are rounded up to the nearest MB,
# with a minimum 10 MB data processed per table referenced by the query, and with a minimum 10 MB data
# processed per query." (a query that reads no table is free)
MINIMUM_BILLED_PER_TABLE = 10 * MIB

# Logical bytes per non-NULL value (NULL is 0 bytes for every type), from the data size calculation table.
FIXED_SIZE_BYTES: Mapping[str, int] = {
    "INT64": 8,
    "FLOAT64": 8,
    "NUMERIC": 16,
    "BIGNUMERIC": 32,
    "BOOL": 1,
    "DATE": 8,
    "DATETIME": 8,
    "TIME": 8,
    "TIMESTAMP": 8,
    "INTERVAL": 16,
    "RANGE": 16,
}
# STRING and BYTES: this many bytes plus the UTF-8 (or raw) length of the value.
VARIABLE_SIZE_OVERHEAD_BYTES = 2
# JSON: the UTF-8 length of the canonical (minified) JSON text, no overhead.
# ARRAY and STRUCT: 0 bytes plus the sizes of their elements / fields (a MAP stored as
# ARRAY<STRUCT<key, value>> is the sum of its keys and values).


class _BigQueryColumns(BigQuery):
    """BigQuery's name resolution without type inference (a quarter of the cost; types do not change which
    columns are read); a STRUCT's `s.*` stays unexpanded and so charges every column of its scope."""

    ANNOTATE_ALL_SCOPES = False
    SUPPORTS_STRUCT_STAR_EXPANSION = False


@dataclass(frozen=True)
class TableStats:
    """What billing needs to know of a stored table: its rows and each column's logical bytes over all rows."""

    rows: int
    column_bytes: Mapping[str, int]  # lower-case column name -> bytes


# `dataset.table` (or a bare `table`) -> its statistics; None when no such stored table exists
StatsLookup = Callable[[str], TableStats | None]


@dataclass(frozen=True)
class QueryBytes:
    processed: int  # bytes of the referenced columns
    billed: int  # after BigQuery's per-table minimum and MB rounding
    columns: Mapping[str, frozenset[str]] = field(default_factory=dict)  # table -> the columns charged


def _round_up_mib(n: int) -> int:
    return -(-n // MIB) * MIB


def table_key(table: exp.Table) -> str:
    """`dataset.table` of a table reference (the project, if any, is dropped)."""
    return f"{table.db}.{table.name}" if table.db else table.name


class _Charges:
    """Columns charged per physical table, gathered over every statement and scope of a query."""

    def __init__(self, lookup: StatsLookup):
        self._lookup = lookup
        self._stats: dict[str, TableStats | None] = {}
        self.columns: dict[str, set[str]] = {}

    def stats(self, key: str) -> TableStats | None:
        if key not in self._stats:
            self._stats[key] = self._lookup(key)
        return self._stats[key]

    def read(self, key: str, columns: set[str] | None = None) -> None:
        """Charge `columns` of table `key` (None: all of them); a table read for no column still counts."""
        stats = self.stats(key)
        if stats is None:
            return
        charged = self.columns.setdefault(key, set())
        charged |= set(stats.column_bytes) if columns is None else {c.lower() for c in columns}

    def result(self) -> QueryBytes:
        processed = billed = 0
        for key, columns in self.columns.items():
            stats = self.stats(key)
            assert stats is not None  # only stored tables are ever charged
            table_bytes = sum(stats.column_bytes.get(c, 0) for c in columns)
            processed += table_bytes
            billed += max(_round_up_mib(table_bytes), MINIMUM_BILLED_PER_TABLE)
        return QueryBytes(processed, billed, {k: frozenset(v) for k, v in self.columns.items()})


def _physical_tables(statement: exp.Expression) -> list[exp.Table]:
    """Table references that are not CTE names (a CTE shadows only an unqualified name)."""
    ctes = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
    return [t for t in statement.find_all(exp.Table) if t.name and (t.db or t.name not in ctes)]


def _schema(tables: list[exp.Table], charges: _Charges) -> dict:
    """sqlglot's nested schema of the stored tables a statement reads; types do not matter for resolution."""
    schema: dict = {}
    for table in tables:
        stats = charges.stats(table_key(table))
        if stats is not None:
            columns = {c: "STRING" for c in stats.column_bytes}
            if table.db:
                schema.setdefault(table.db, {})[table.name] = columns
            else:
                schema[table.name] = columns
    return schema


def _source_of(scope: Scope, alias: str) -> exp.Expression | Scope | None:
    """The source an alias names, looking outwards for correlated references."""
    while scope is not None:
        if alias in scope.sources:
            return scope.sources[alias]
        scope = scope.parent
    return None


def _scope_tables(scope: Scope) -> list[exp.Table]:
    return [s for s in scope.sources.values() if isinstance(s, exp.Table)]


def _has_unexpanded_star(scope: Scope) -> bool:
    selects = scope.expression.selects if isinstance(scope.expression, exp.Select) else []
    return any(isinstance(s, exp.Star) or (isinstance(s, exp.Column) and s.is_star) for s in selects)


def _charge_scope(scope: Scope, charges: _Charges) -> None:
    for table in _scope_tables(scope):
        charges.read(table_key(table), set())
    if _has_unexpanded_star(scope):
        for table in _scope_tables(scope):
            charges.read(table_key(table))
    for column in scope.columns:
        source = _source_of(scope, column.table) if column.table else None
        if isinstance(source, exp.Table):
            charges.read(table_key(source), {column.name})
        elif source is None:
            # unresolved: charge everything this scope reads rather than guess low
            for table in _scope_tables(scope):
                charges.read(table_key(table))


def _charge_statement(statement: exp.Expression, charges: _Charges) -> None:
    tables = _physical_tables(statement)
    try:
        resolved = qualify(
            statement.copy(),
            schema=_schema(tables, charges),
            dialect=_BigQueryColumns,
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )
        resolved = pushdown_projections(resolved)
        scopes = traverse_scope(resolved)
    except (SqlglotError, KeyError, ValueError):
        scopes = []
    if not scopes:
        # not a query sqlglot can scope (DML, DDL, scripting): every column of every table it names
        for table in tables:
            charges.read(table_key(table))
        return
    for scope in scopes:
        _charge_scope(scope, charges)


def estimate_query_bytes(sql: str, lookup: StatsLookup) -> QueryBytes:
    """Bytes BigQuery would process and bill for `sql` (BigQuery SQL, one or more statements)."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="bigquery") if s is not None]
    except SqlglotError:
        return QueryBytes(0, 0)  # BigQuery rejects it before reading anything: not billed
    charges = _Charges(lookup)
    for statement in statements:
        _charge_statement(statement, charges)
    return charges.result()
