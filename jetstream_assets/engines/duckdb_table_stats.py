"""BigQuery billing statistics of DuckDB tables: rows and logical bytes per column, sized by BigQuery's rules.

Each DuckDB type is sized as the BigQuery type it stands for (`query_bytes.FIXED_SIZE_BYTES`; STRING and
BYTES = 2 + length; JSON = canonical text length; ARRAY/STRUCT = their contents; a MAP as BigQuery's
ARRAY<STRUCT<key, value>>). Statistics are cached in memory and in `_jetstream.table_stats`, keyed by a
cheap signature of the table (our last write of it, its row count and column types), so each version
of a table is scanned once across processes. Views are sized by scanning them, never cached.
"""

from __future__ import annotations

import hashlib
import json

import duckdb

from jetstream_assets.engines.query_bytes import FIXED_SIZE_BYTES, VARIABLE_SIZE_OVERHEAD_BYTES, TableStats

# the BigQuery type each fixed-width DuckDB type is written as (HUGEINT has no BigQuery twin: NUMERIC-sized)
_BIGQUERY_FIXED = {
    "boolean": "BOOL",
    **dict.fromkeys(
        ("tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger", "ubigint"), "INT64"
    ),
    **dict.fromkeys(("float", "double"), "FLOAT64"),
    **dict.fromkeys(("hugeint", "uhugeint"), "NUMERIC"),
    "date": "DATE",
    **dict.fromkeys(("time", "time with time zone"), "TIME"),
    **dict.fromkeys(
        ("timestamp", "timestamp with time zone", "timestamp_s", "timestamp_ms", "timestamp_ns"), "TIMESTAMP"
    ),
    "interval": "INTERVAL",
}
_NUMERIC_MAX_SCALE = 9  # a DECIMAL with more fractional digits only fits BigQuery's BIGNUMERIC

STATS_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS {schema}.table_stats (
  dataset VARCHAR, table_name VARCHAR, signature VARCHAR, row_count BIGINT, column_bytes JSON,
  PRIMARY KEY (dataset, table_name));
"""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _fixed_size(dtype: duckdb.DuckDBPyType) -> int | None:
    if dtype.id == "decimal":
        scale = dict(dtype.children)["scale"]
        return FIXED_SIZE_BYTES["NUMERIC" if scale <= _NUMERIC_MAX_SCALE else "BIGNUMERIC"]
    bigquery = _BIGQUERY_FIXED.get(dtype.id)
    return FIXED_SIZE_BYTES[bigquery] if bigquery else None


def value_size_sql(value: str, dtype: duckdb.DuckDBPyType, depth: int = 0) -> str:
    """SQL for the logical bytes of one value (NULL when the value is NULL: BigQuery counts it as 0)."""
    fixed = _fixed_size(dtype)
    if fixed is not None:
        return f"CASE WHEN {value} IS NULL THEN NULL ELSE {fixed} END"
    if str(dtype) == "JSON":
        return f"strlen(json({value}))"  # json() minifies: BigQuery sizes the canonical text
    if dtype.id == "varchar":
        return f"{VARIABLE_SIZE_OVERHEAD_BYTES} + strlen({value})"
    if dtype.id == "blob":
        return f"{VARIABLE_SIZE_OVERHEAD_BYTES} + octet_length({value})"
    item = f"v{depth}"
    if dtype.id in ("list", "array"):
        inner = value_size_sql(item, dtype.children[0][1], depth + 1)
        return f"list_sum(list_transform({value}, lambda {item}: COALESCE({inner}, 0)))"
    if dtype.id == "map":
        (_, key_type), (_, value_type) = dtype.children
        key = value_size_sql(f"{item}.key", key_type, depth + 1)
        val = value_size_sql(f"{item}.value", value_type, depth + 1)
        return (
            f"list_sum(list_transform(map_entries({value}), "
            f"lambda {item}: COALESCE({key}, 0) + COALESCE({val}, 0)))"
        )
    if dtype.id == "struct":
        fields = " + ".join(
            f"COALESCE({value_size_sql(f'struct_extract({value}, {_literal(name)})', ftype, depth + 1)}, 0)"
            for name, ftype in dtype.children
        )
        return f"CASE WHEN {value} IS NULL THEN NULL ELSE {fields or '0'} END"
    # UUID, ENUM, BIT and anything newer: as the STRING it would be exported as
    return f"{VARIABLE_SIZE_OVERHEAD_BYTES} + strlen(CAST({value} AS VARCHAR))"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _column_total_sql(name: str, dtype: duckdb.DuckDBPyType) -> str:
    column = _ident(name)
    fixed = _fixed_size(dtype)
    if fixed is not None:  # cheaper than sizing row by row
        return f"{fixed} * COUNT({column})"
    return f"COALESCE(SUM({value_size_sql(column, dtype)}), 0)"


def _relation(con: duckdb.DuckDBPyConnection, dataset: str, table: str) -> duckdb.DuckDBPyRelation | None:
    try:
        return con.table(f"{_ident(dataset)}.{_ident(table)}")
    except duckdb.CatalogException:
        return None


def measure_table(con: duckdb.DuckDBPyConnection, dataset: str, table: str) -> TableStats:
    """Scan the table (or view) once: its rows and every column's logical bytes."""
    relation = con.table(f"{_ident(dataset)}.{_ident(table)}")
    names, types = relation.columns, relation.types
    totals = ", ".join(["COUNT(*)"] + [_column_total_sql(n, t) for n, t in zip(names, types)])
    row = con.execute(f"SELECT {totals} FROM {_ident(dataset)}.{_ident(table)}").fetchone()
    return TableStats(rows=int(row[0]), column_bytes={n.lower(): int(b) for n, b in zip(names, row[1:])})


class TableStatsCache:
    """Statistics of the warehouse's tables, recomputed only when a table's signature changes."""

    def __init__(self, internal_schema: str):
        self._schema = internal_schema
        self._memory: dict[tuple[str, str], tuple[str, TableStats]] = {}

    def _signature(self, con, relation: duckdb.DuckDBPyRelation, dataset: str, table: str) -> str:
        """Our last write of the table (tables we own), its exact row count and its column types: a
        user's table changed by another tool is caught by its row count or schema (a ~1 ms query)."""
        rows, modified = con.execute(
            f"SELECT (SELECT COUNT(*) FROM {_ident(dataset)}.{_ident(table)}), "
            f"(SELECT last_modified FROM {self._schema}.table_metadata WHERE dataset = ? AND table_name = ?)",
            [dataset, table],
        ).fetchone()
        described = json.dumps([rows, str(modified), relation.columns, [str(t) for t in relation.types]])
        return hashlib.sha256(described.encode()).hexdigest()

    def _stored(self, con, dataset: str, table: str, signature: str) -> TableStats | None:
        row = con.execute(
            f"SELECT row_count, column_bytes FROM {self._schema}.table_stats "
            "WHERE dataset = ? AND table_name = ? AND signature = ?",
            [dataset, table, signature],
        ).fetchone()
        return TableStats(rows=row[0], column_bytes=json.loads(row[1])) if row else None

    def _store(self, con, dataset: str, table: str, signature: str, stats: TableStats) -> None:
        con.execute(
            f"INSERT OR REPLACE INTO {self._schema}.table_stats VALUES (?, ?, ?, ?, ?)",
            [dataset, table, signature, stats.rows, json.dumps(dict(stats.column_bytes))],
        )

    def lookup(self, con: duckdb.DuckDBPyConnection, name: str) -> TableStats | None:
        """Statistics of `dataset.table` as a query names it (None: not a table or view of the warehouse)."""
        dataset, _, table = name.rpartition(".")
        if not dataset:
            return None  # the embedded engine has no default dataset: a bare name is never a stored table
        relation = _relation(con, dataset, table)
        if relation is None:
            return None
        if relation.type != "TABLE_RELATION":
            return measure_table(con, dataset, table)  # a view: its tables may change under it
        signature = self._signature(con, relation, dataset, table)
        cached = self._memory.get((dataset, table))
        if cached is not None and cached[0] == signature:
            return cached[1]
        stats = self._stored(con, dataset, table, signature)
        if stats is None:
            stats = measure_table(con, dataset, table)
            self._store(con, dataset, table, signature, stats)
        self._memory[(dataset, table)] = (signature, stats)
        return stats
