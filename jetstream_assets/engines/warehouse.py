"""The warehouse interface every engine implements (DuckDB now, BigQuery in production).

SQL handed to a warehouse is BigQuery SQL; tables are addressed as (dataset, table). Every query may
carry labels (experiment slug, destination) so cost can be attributed to an experiment.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import pandas as pd

from jetstream_assets.core.schema import Schema
from jetstream_assets.engines.publication import Publication
from jetstream_assets.sql.dialect import quote_identifier, quote_string

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueryLabels:
    experiment: str | None = None
    destination: str | None = None  # dataset.table the query writes, if any
    extra: dict[str, str] = field(default_factory=dict)


class WarehouseError(RuntimeError):
    """A query or table operation failed; the message names the table or the query's purpose."""


class Warehouse(abc.ABC):
    engine: str

    def __init__(self, project: str, dataset: str, monitoring_dataset: str):
        self.project = project
        self.dataset = dataset
        self.monitoring_dataset = monitoring_dataset

    @abc.abstractmethod
    def table_ref(self, dataset: str, table: str) -> str:
        """The table's name as BigQuery SQL text (quoted), for use inside queries."""

    @abc.abstractmethod
    def query(self, sql: str, labels: QueryLabels | None = None) -> pd.DataFrame: ...

    @abc.abstractmethod
    def dry_run(self, sql: str, labels: QueryLabels | None = None) -> int | None:
        """Check a query without running it; returns the bytes it would process when the engine knows.
        Raises WarehouseError naming the problem (unknown table or column, syntax)."""

    @abc.abstractmethod
    def create_table_as(
        self, dataset: str, table: str, sql: str, *, description: str = "", labels: QueryLabels | None = None
    ) -> int:
        """Atomically replace `table` with the query's result; returns its row count."""

    @abc.abstractmethod
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
        """Write rows with an explicit schema; replaces the table atomically unless `append`."""

    @abc.abstractmethod
    def create_window_view(self, dataset: str, view: str, table_prefix: str) -> None:
        """A view over every `<table_prefix><n>` table with an added `window_index` column (= n)."""

    @abc.abstractmethod
    def replace_day(
        self, dataset: str, table: str, rows: Iterable[dict[str, Any]], schema: Schema, *,
        date_column: str, day: dt.date, description: str = "",
    ) -> int:
        """Atomically replace the rows of one day (`DATE(date_column) = day`) of a day-partitioned table,
        creating the table if needed; returns the number of rows written for that day."""

    @abc.abstractmethod
    def query_costs(self, day: dt.date) -> pd.DataFrame:
        """The jobs of `day` that wrote to the results dataset, with exactly the columns of
        `core.schema.QUERY_COST_SCHEMA` (bigquery-etl's query_cost_v1 rule for the engine)."""

    @abc.abstractmethod
    def drop_tables(self, dataset: str, names: list[str]) -> None:
        """Drop these tables or views if they exist (only ever the pipeline's own)."""

    @abc.abstractmethod
    def list_tables(self, dataset: str, prefix: str = "") -> list[str]: ...

    @abc.abstractmethod
    def table_modified(self, dataset: str, table: str) -> dt.datetime | None:
        """When the table (or view) last changed; None if it does not exist."""

    @abc.abstractmethod
    def table_schema(self, dataset: str, table: str) -> list[str]:
        """Column names of an existing table."""

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """A block of related work (one step); engines that benefit keep a connection open through it."""
        yield

    @contextlib.contextmanager
    def publication(self, dataset: str, slug: str) -> Iterator[Publication]:
        """One step's tables of one experiment, published together: tables are built under staging names,
        and only when the block ends without an exception are they swapped in (with the recorded view
        re-creations and drops). On an exception (or `pub.cancel()`) every staging table is dropped and the
        published state is untouched. Leftover staging tables of this experiment's dead writers are removed first."""
        self._clean_staging(dataset, slug)
        pub = Publication(self, dataset, slug)
        self._begin_publication(pub)
        try:
            yield pub
            if pub.cancelled:
                self._abandon(pub)
            else:
                self._swap(pub)
        except BaseException:
            try:
                self._abandon(pub)
            except Exception as cleanup_error:  # never replaces the step's own error
                _log.warning("could not drop the staging tables of %s: %s", slug, cleanup_error)
            raise

    @abc.abstractmethod
    def _clean_staging(self, dataset: str, slug: str) -> None:
        """Drop the staging tables of `slug` whose writer is dead or too old (`StagingWriter.abandoned`)."""

    @abc.abstractmethod
    def _begin_publication(self, pub: Publication) -> None:
        """Record the publication's writer before any staging table exists."""

    @abc.abstractmethod
    def _swap(self, pub: Publication) -> None:
        """Replace the published tables by the staged ones, drop the stale ones, recreate the views."""

    @abc.abstractmethod
    def _abandon(self, pub: Publication) -> None:
        """Drop the publication's staging tables and forget its writer."""

    def table_exists(self, dataset: str, table: str) -> bool:
        return self.table_modified(dataset, table) is not None

    def latest_date(
        self, table: str, column: str, *, since: dt.date, labels: QueryLabels | None = None
    ) -> dt.date | None:
        """The latest date on or after `since` present in `table` (a BigQuery path, as configs write it),
        read from its DATE or TIMESTAMP `column`; None when it has no row since then. Reading only dates
        from `since` keeps the scan to the partitions an analysis could use."""
        col = quote_identifier(column)
        frame = self.query(
            f"SELECT MAX(DATE({col})) AS latest FROM {quote_identifier(table.strip('`'))} "
            f"WHERE DATE({col}) >= DATE {quote_string(since.isoformat())}",
            labels,
        )
        value = frame["latest"].iloc[0]
        return None if pd.isna(value) else pd.Timestamp(value).date()
