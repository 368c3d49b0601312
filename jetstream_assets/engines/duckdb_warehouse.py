"""The embedded warehouse: one DuckDB file, datasets as schemas, BigQuery SQL translated by sqlglot.

A long step never holds DuckDB's file lock against another process for longer than one operation (a
statement, a short transaction, a publication's swap): see `duckdb_connections`. A process that finds
the file locked waits (up to `lock_wait_seconds`) instead of failing. Bookkeeping BigQuery keeps for us
(table modification times, descriptions, labels, the job history used for query cost, the writers of
staging tables) lives in the `_jetstream` schema.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import tempfile
import time
from typing import Any, Iterable, Iterator

import duckdb
import pandas as pd

from jetstream_assets.engines.query_bytes import estimate_query_bytes
from jetstream_assets.core.schema import Schema, duckdb_type
from jetstream_assets.engines.duckdb_connections import SharedFileConnections
from jetstream_assets.engines.duckdb_table_stats import STATS_TABLE_DDL, TableStatsCache
from jetstream_assets.engines.publication import Publication, StagingWriter, staging_token
from jetstream_assets.engines.warehouse import QueryLabels, Warehouse, WarehouseError
from jetstream_assets.sql.dialect import SqlTranslationError, bigquery_to_duckdb

INTERNAL_SCHEMA = "_jetstream"
COST_PER_TIB_USD = 6.25  # BigQuery on-demand list price per TiB billed
DEFAULT_LOCK_WAIT_SECONDS = 1800.0  # JETSTREAM_DUCKDB_LOCK_WAIT_SECONDS

_BOOKKEEPING = f"""
CREATE SCHEMA IF NOT EXISTS {INTERNAL_SCHEMA};
CREATE TABLE IF NOT EXISTS {INTERNAL_SCHEMA}.table_metadata (
  dataset VARCHAR, table_name VARCHAR, description VARCHAR, labels JSON, last_modified TIMESTAMP,
  PRIMARY KEY (dataset, table_name));
CREATE TABLE IF NOT EXISTS {INTERNAL_SCHEMA}.query_log (
  submission_timestamp TIMESTAMP, experiment_slug VARCHAR, destination_table VARCHAR, query VARCHAR,
  duration_ms DOUBLE, error_reason VARCHAR, error_message VARCHAR);
ALTER TABLE {INTERNAL_SCHEMA}.query_log ADD COLUMN IF NOT EXISTS total_bytes_processed BIGINT;
CREATE TABLE IF NOT EXISTS {INTERNAL_SCHEMA}.staging_writers (
  token VARCHAR PRIMARY KEY, dataset VARCHAR, slug VARCHAR, pid INTEGER, host VARCHAR, started TIMESTAMP);
{STATS_TABLE_DDL.format(schema=INTERNAL_SCHEMA)}"""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@contextlib.contextmanager
def _single_threaded(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Tables the pipeline publishes are computed on one thread: DuckDB's parallel SUM of DOUBLEs adds
    partial sums in whatever order threads finish, so the last bits of a metric (and every statistic
    computed from it) would change from run to run, and re-running a date must give identical tables."""
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        # callers end their transaction inside this block: in an aborted transaction this SET would fail
        # and replace the real error
        con.execute(f"SET threads = {int(threads)}")


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back while an error propagates; a failing rollback must not replace that error."""
    with contextlib.suppress(duckdb.Error):
        con.execute("ROLLBACK")


@contextlib.contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        _rollback(con)
        raise


def _missing_as_none(value: Any) -> Any:
    """NaN, NaT and pandas' NA (as DataFrame rows carry them) are NULL."""
    if isinstance(value, (list, dict, tuple)) or hasattr(value, "__len__") and not isinstance(value, str):
        return value
    try:
        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):  # pandas Timestamps are datetimes too
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class DuckDBWarehouse(Warehouse):
    engine = "duckdb"

    def __init__(
        self, path: str, project: str, dataset: str, monitoring_dataset: str, memory_limit: str | None = None,
        lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS,
    ):
        super().__init__(project, dataset, monitoring_dataset)
        self.path = path
        # DuckDB's buffer pool grows to 80% of RAM by default; a limit makes it spill to disk instead.
        # Insertion order is never relied on (every read that needs an order says ORDER BY), and keeping it
        # costs large CREATE TABLE AS statements memory.
        self._config: dict[str, object] = {"preserve_insertion_order": False}
        if memory_limit:
            self._config["memory_limit"] = memory_limit
        self._table_stats = TableStatsCache(INTERNAL_SCHEMA)
        self._connections = SharedFileConnections(path, self._config, lock_wait_seconds)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with self._connect() as con:
            con.execute(_BOOKKEEPING)
            for schema in (dataset, monitoring_dataset):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(schema)}")

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Keep the file open between the block's operations while no other process waits for it."""
        with self._connections.session():
            yield

    def _connect(self) -> contextlib.AbstractContextManager[duckdb.DuckDBPyConnection]:
        return self._connections.connection()

    def table_ref(self, dataset: str, table: str) -> str:
        return f"`{dataset}`.`{table}`"

    def _billed_bytes(self, con: duckdb.DuckDBPyConnection, sql: str) -> int | None:
        """What BigQuery on-demand would bill `sql` on the tables as they are now (None: cannot be measured).
        Taken before the query runs and outside any transaction, so measuring can never abort a write."""
        try:
            return estimate_query_bytes(sql, lambda name: self._table_stats.lookup(con, name)).billed
        except duckdb.Error:
            return None

    def _record(
        self,
        con: duckdb.DuckDBPyConnection,
        sql: str,
        labels: QueryLabels | None,
        seconds: float,
        error: Exception | None,
        billed_bytes: int | None = None,
    ) -> None:
        labels = labels or QueryLabels()
        con.execute(
            f"INSERT INTO {INTERNAL_SCHEMA}.query_log (submission_timestamp, experiment_slug, destination_table, "
            "query, duration_ms, error_reason, error_message, total_bytes_processed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                _utcnow(),
                labels.experiment,
                labels.destination,
                sql,
                seconds * 1000.0,
                type(error).__name__ if error else None,
                str(error) if error else None,
                0 if error else billed_bytes,  # BigQuery does not bill a query that fails
            ],
        )

    def _translate(self, con, sql: str, labels: QueryLabels | None, failure: str) -> str:
        """BigQuery SQL as DuckDB's; SQL that cannot be parsed is recorded and raised like a failed query."""
        try:
            return bigquery_to_duckdb(sql)
        except SqlTranslationError as e:
            self._record(con, sql, labels, 0.0, e)
            raise WarehouseError(f"{failure}: {e}") from e

    def query(self, sql: str, labels: QueryLabels | None = None) -> pd.DataFrame:
        with self._connect() as con:
            translated = self._translate(con, sql, labels, f"query failed{_purpose(labels)}")
            billed = self._billed_bytes(con, sql)
            started = time.perf_counter()
            try:
                frame = con.execute(translated).df()
            except duckdb.Error as e:
                self._record(con, sql, labels, time.perf_counter() - started, e)
                raise WarehouseError(f"query failed{_purpose(labels)}: {e}") from e
            self._record(con, sql, labels, time.perf_counter() - started, None, billed)
            return frame

    def dry_run(self, sql: str, labels: QueryLabels | None = None) -> int | None:
        with self._connect() as con:
            try:
                translated = bigquery_to_duckdb(sql)
            except SqlTranslationError as e:
                raise WarehouseError(f"dry run failed{_purpose(labels)}: {e}") from e
            try:
                con.execute(f"EXPLAIN {translated}")
            except duckdb.Error as e:
                raise WarehouseError(f"dry run failed{_purpose(labels)}: {e}") from e
        return None

    def _touch(self, con, dataset: str, table: str, description: str, labels: QueryLabels | None) -> None:
        con.execute(
            f"INSERT OR REPLACE INTO {INTERNAL_SCHEMA}.table_metadata VALUES (?, ?, ?, ?, ?)",
            [dataset, table, description, json.dumps((labels.extra if labels else {}) or {}), _utcnow()],
        )

    def create_table_as(
        self, dataset: str, table: str, sql: str, *, description: str = "", labels: QueryLabels | None = None
    ) -> int:
        target = f"{_ident(dataset)}.{_ident(table)}"
        with self._connect() as con:
            translated = self._translate(con, sql, labels, f"creating {dataset}.{table} failed")
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(dataset)}")
            billed = self._billed_bytes(con, sql)
            started = time.perf_counter()
            try:
                with _single_threaded(con), _transaction(con):
                    con.execute(f"CREATE OR REPLACE TABLE {target} AS {translated}")
                    self._record(con, sql, labels, time.perf_counter() - started, None, billed)
                    self._touch(con, dataset, table, description, labels)
            except duckdb.Error as e:
                # recorded after the rollback, so the failure stays in the job history
                self._record(con, sql, labels, time.perf_counter() - started, e)
                raise WarehouseError(f"creating {dataset}.{table} failed: {e}") from e
            return con.execute(f"SELECT COUNT(*) FROM {target}").fetchone()[0]

    @contextlib.contextmanager
    def _staged(self, rows: Iterable[dict[str, Any]], schema: Schema) -> Iterator[tuple[str, int]]:
        """Rows as a DuckDB relation (SQL text) typed by `schema`, staged through NDJSON so nested
        records and repeated fields load exactly as BigQuery's JSON loads do."""
        columns = "{" + ", ".join(f"'{f.name}': '{duckdb_type(f)}'" for f in schema) + "}"
        names = [f.name for f in schema]
        with tempfile.NamedTemporaryFile("w", suffix=".ndjson", delete=False) as fh:
            count = 0
            for row in rows:
                fh.write(json.dumps({n: _missing_as_none(row.get(n)) for n in names}, default=_json_default,
                                    allow_nan=False))
                fh.write("\n")
                count += 1
            path = fh.name
        try:
            if count:
                yield f"read_json('{path}', format='newline_delimited', columns={columns})", count
            else:
                empty = ", ".join(f"CAST(NULL AS {duckdb_type(f)}) AS {_ident(f.name)}" for f in schema)
                yield f"(SELECT {empty} LIMIT 0)", 0
        finally:
            os.unlink(path)

    def _write(self, dataset: str, table: str, rows, schema: Schema, description: str, labels, write) -> int:
        target = f"{_ident(dataset)}.{_ident(table)}"
        try:
            with self._staged(rows, schema) as (source, _), self._connect() as con:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(dataset)}")
                with _transaction(con):
                    exists = con.execute(
                        "SELECT COUNT(*) FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?",
                        [dataset, table],
                    ).fetchone()[0]
                    written = write(con, target, source, bool(exists))
                    self._touch(con, dataset, table, description, labels)
                return written
        except duckdb.Error as e:
            raise WarehouseError(f"loading rows into {dataset}.{table} failed: {e}") from e

    def load_rows(
        self,
        dataset: str,
        table: str,
        rows: Iterable[dict[str, Any]],
        schema: Schema,
        *,
        append: bool = False,
        description: str = "",
        labels: QueryLabels | None = None,
    ) -> int:
        def write(con, target, source, exists):
            if append and exists:
                con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {source}")
            else:
                con.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM {source}")
            return con.execute(f"SELECT COUNT(*) FROM {target}").fetchone()[0]

        return self._write(dataset, table, rows, schema, description, labels, write)

    def replace_day(
        self, dataset: str, table: str, rows: Iterable[dict[str, Any]], schema: Schema, *,
        date_column: str, day: dt.date, description: str = "",
    ) -> int:
        def write(con, target, source, exists):
            if not exists:
                con.execute(f"CREATE TABLE {target} AS SELECT * FROM {source} LIMIT 0")
            con.execute(f"DELETE FROM {target} WHERE CAST({_ident(date_column)} AS DATE) = ?", [day])
            con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM {source}")
            return con.execute(
                f"SELECT COUNT(*) FROM {target} WHERE CAST({_ident(date_column)} AS DATE) = ?", [day]
            ).fetchone()[0]

        return self._write(dataset, table, rows, schema, description, None, write)

    def create_window_view(self, dataset: str, view: str, table_prefix: str) -> None:
        with self._connect() as con, _transaction(con):
            self._window_view(con, dataset, view, table_prefix)

    def _window_view(self, con, dataset: str, view: str, table_prefix: str) -> None:
        pattern = re.compile(re.escape(table_prefix) + r"([0-9]+)$")
        tables = [
            (name, int(m.group(1)))
            for (name,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? ORDER BY table_name", [dataset]
            ).fetchall()
            if (m := pattern.match(name))
        ]
        if not tables:
            return
        union = "\nUNION ALL BY NAME\n".join(
            f"SELECT *, CAST({index} AS BIGINT) AS window_index FROM {_ident(dataset)}.{_ident(name)}"
            for name, index in sorted(tables, key=lambda t: t[1])
        )
        con.execute(f"CREATE OR REPLACE VIEW {_ident(dataset)}.{_ident(view)} AS {union}")
        self._touch(con, dataset, view, "", None)

    def drop_tables(self, dataset: str, names: list[str]) -> None:
        with self._connect() as con, _transaction(con):
            self._drop(con, dataset, names)

    def _drop(self, con, dataset: str, names: list[str]) -> None:
        views = {n for (n,) in con.execute("SELECT view_name FROM duckdb_views() WHERE schema_name = ?", [dataset]).fetchall()}
        for name in names:
            kind = "VIEW" if name in views else "TABLE"
            con.execute(f"DROP {kind} IF EXISTS {_ident(dataset)}.{_ident(name)}")
        for bookkeeping in ("table_metadata", "table_stats"):
            con.execute(
                f"DELETE FROM {INTERNAL_SCHEMA}.{bookkeeping} WHERE dataset = ? AND list_contains(?, table_name)",
                [dataset, names],
            )

    # -- publication (Warehouse.publication) --------------------------------------------------------
    def _staging_tables(self, con, dataset: str, tokens: list[str]) -> list[str]:
        return [name for (name,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = ?", [dataset]).fetchall()
            if staging_token(name) in tokens]

    def _clean_staging(self, dataset: str, slug: str) -> None:
        now = _utcnow()
        with self._connect() as con:
            writers = [StagingWriter(*row) for row in con.execute(
                f"SELECT token, pid, host, started FROM {INTERNAL_SCHEMA}.staging_writers "
                "WHERE dataset = ? AND slug = ?", [dataset, slug]).fetchall()]
            dead = [w.token for w in writers if w.abandoned(now)]
            if dead:
                with _transaction(con):
                    self._drop(con, dataset, self._staging_tables(con, dataset, dead))
                    con.execute(f"DELETE FROM {INTERNAL_SCHEMA}.staging_writers WHERE list_contains(?, token)",
                                [dead])

    def _begin_publication(self, pub: Publication) -> None:
        w = pub.writer
        with self._connect() as con:
            con.execute(f"INSERT INTO {INTERNAL_SCHEMA}.staging_writers VALUES (?, ?, ?, ?, ?, ?)",
                        [w.token, pub.dataset, pub.slug, w.pid, w.host, w.started])

    def _abandon(self, pub: Publication) -> None:
        with self._connect() as con, _transaction(con):
            self._drop(con, pub.dataset, self._staging_tables(con, pub.dataset, [pub.writer.token]))
            con.execute(f"DELETE FROM {INTERNAL_SCHEMA}.staging_writers WHERE token = ?", [pub.writer.token])

    def _swap(self, pub: Publication) -> None:
        """One transaction: readers (and a crash) see the old tables and views or the new ones."""
        dataset = _ident(pub.dataset)
        with self._connect() as con, _transaction(con):
            self._drop(con, pub.dataset, [*pub.built, *pub.stale])
            for final, staged in pub.built.items():
                con.execute(f"ALTER TABLE {dataset}.{_ident(staged.staging)} RENAME TO {_ident(final)}")
                con.execute(
                    f"UPDATE {INTERNAL_SCHEMA}.table_metadata SET table_name = ?, last_modified = ? "
                    "WHERE dataset = ? AND table_name = ?", [final, _utcnow(), pub.dataset, staged.staging])
            con.execute(f"DELETE FROM {INTERNAL_SCHEMA}.table_stats WHERE dataset = ? AND list_contains(?, table_name)",
                        [pub.dataset, [s.staging for s in pub.built.values()]])
            for view, prefix in pub.views.items():
                self._window_view(con, pub.dataset, view, prefix)
            con.execute(f"DELETE FROM {INTERNAL_SCHEMA}.staging_writers WHERE token = ?", [pub.writer.token])

    def list_tables(self, dataset: str, prefix: str = "") -> list[str]:
        with self._connect() as con:
            rows = con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? "
                "UNION SELECT view_name FROM duckdb_views() WHERE schema_name = ? ORDER BY 1",
                [dataset, dataset],
            ).fetchall()
        return [name for (name,) in rows if name.startswith(prefix)]

    def table_modified(self, dataset: str, table: str) -> dt.datetime | None:
        with self._connect() as con:
            exists = con.execute(
                "SELECT COUNT(*) FROM (SELECT table_name AS n, schema_name AS s FROM duckdb_tables() "
                "UNION ALL SELECT view_name, schema_name FROM duckdb_views()) WHERE s = ? AND n = ?",
                [dataset, table],
            ).fetchone()[0]
            if not exists:
                return None
            row = con.execute(
                f"SELECT last_modified FROM {INTERNAL_SCHEMA}.table_metadata WHERE dataset = ? AND table_name = ?",
                [dataset, table],
            ).fetchone()
        # a table we did not write (e.g. user telemetry) has no record: treat it as old
        return row[0] if row else dt.datetime(1970, 1, 1)

    def table_schema(self, dataset: str, table: str) -> list[str]:
        with self._connect() as con:
            rows = con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? "
                "ORDER BY column_index",
                [dataset, table],
            ).fetchall()
        return [name for (name,) in rows]

    def query_costs(self, day: dt.date) -> pd.DataFrame:
        """bigquery-etl's rule on our own job history: the day's queries that wrote to the results dataset.
        `total_bytes_processed` is the estimate of what BigQuery on-demand would bill (`engines.query_bytes`)."""
        with self._connect() as con:
            return con.execute(
                f"""
                SELECT
                  submission_timestamp,
                  destination_table,
                  query,
                  CAST(total_bytes_processed AS BIGINT) AS total_bytes_processed,
                  total_bytes_processed / POW(2, 40) * {COST_PER_TIB_USD} AS cost_usd,
                  experiment_slug,
                  CAST(ROUND(duration_ms) AS BIGINT) AS total_slot_ms,
                  duration_ms / 60000.0 AS duration_minutes,
                  error_reason
                FROM {INTERNAL_SCHEMA}.query_log
                WHERE CAST(submission_timestamp AS DATE) = ? AND starts_with(destination_table, ?)
                ORDER BY submission_timestamp""",
                [day, f"{self.dataset}."],
            ).df()

    def query_log(self, since: dt.datetime | None = None) -> pd.DataFrame:
        """Every query this warehouse ran (the embedded stand-in for BigQuery's job history)."""
        with self._connect() as con:
            sql = f"SELECT * FROM {INTERNAL_SCHEMA}.query_log"
            order = " ORDER BY submission_timestamp"
            if since is not None:
                return con.execute(sql + " WHERE submission_timestamp >= ?" + order, [since]).df()
            return con.execute(sql + order).df()


def _purpose(labels: QueryLabels | None) -> str:
    if labels is None:
        return ""
    parts = [p for p in (labels.experiment and f"experiment {labels.experiment}", labels.destination and f"writing {labels.destination}") if p]
    return f" ({', '.join(parts)})" if parts else ""
