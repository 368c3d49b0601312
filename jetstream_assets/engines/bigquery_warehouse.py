"""The production warehouse: BigQuery, through a client from dagster-gcp's `BigQueryResource`.

The SQL is the same BigQuery SQL the embedded engine translates. Tables are written with DDL
(`CREATE OR REPLACE TABLE … AS`, atomic; emulators ignore `QueryJobConfig.destination`), rows with
load jobs (WRITE_TRUNCATE is atomic too). Tables carry Jetstream's metadata: description = slug and
labels `last_updated=<unix ts>` (+ `schema_version`); every job carries the experiment slug as a label
so cost is attributed per experiment. Errors name the table or experiment and Jetstream's error
category, which the `jetstream_analysis_errors` view of bigquery-etl sorts on.

Publishing a step (`Warehouse.publication`): BigQuery has no multi-table transaction for DDL, so the
swap is as atomic as BigQuery allows: each published table is replaced by one copy job (WRITE_TRUNCATE)
from its staging table, which readers see as one atomic change of that table; the stale tables are
dropped only after every copy succeeded, then the views are recreated, then the staging tables dropped.
What it cannot make atomic is the set: while the swap runs (seconds), a reader may see some windows
new and others old, and a crash in the middle leaves such a mix, never a missing table (the next
successful step of the experiment replaces all of it). A crash leaves staging tables; BigQuery cannot
tell a dead writer on another machine from a live one, so they are dropped by the experiment's next
step once they are older than `STAGING_MAX_AGE`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import io
import json
import math
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterable, Sequence

import pandas as pd
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from jetstream_assets.core.schema import QUERY_COST_SCHEMA, Field, Schema, column_names
from jetstream_assets.engines.publication import (
    STAGING_MAX_AGE,
    STAGING_PREFIX,
    Publication,
    staging_name,
    staging_token,
)
from jetstream_assets.engines.warehouse import QueryLabels, Warehouse, WarehouseError
from jetstream_assets.sql.dialect import quote_identifier, quote_string

COST_PER_TIB_USD = 6.25  # BigQuery on-demand list price per TiB (contract §2)
APPLICATION_LABEL = "jetstream-assets"

ClientFactory = Callable[[], ContextManager[bigquery.Client]]


@dataclass(frozen=True)
class BigQueryOptions:
    location: str = "US"
    api_timeout_seconds: float = 60.0  # each REST call
    job_timeout_seconds: float = 6 * 3600.0  # BigQuery's own limit for a query job
    retries: bool = True  # off against emulators: an emulator's HTTP 500 would be retried for minutes
    storage_read_api: bool = True  # faster result download; emulators answer only over REST


class BigQueryError(WarehouseError):
    """A BigQuery failure; `category` is Jetstream's (e.g. "Resources exceeded"), or None."""

    def __init__(self, message: str, category: str | None = None):
        super().__init__(message)
        self.category = category


def label_value(text: str) -> str:
    """BigQuery's label rules: at most 63 lowercase letters, digits, `_` or `-`."""
    return re.sub(r"[^a-z0-9_-]", "_", text.lower())[:63]


def job_labels(labels: QueryLabels | None) -> dict[str, str]:
    labels = labels or QueryLabels()
    out = {"application": APPLICATION_LABEL}
    if labels.experiment:
        out["experiment_slug"] = label_value(labels.experiment)
    if labels.destination:
        out["destination_table"] = label_value(labels.destination.rsplit(".", 1)[-1])
    out.update({label_value(k): label_value(v) for k, v in labels.extra.items()})
    return out


def table_labels(labels: QueryLabels | None, now: float | None = None) -> dict[str, str]:
    """Jetstream's table labels: `last_updated` (unix seconds) and any extra ones (`schema_version`)."""
    extra = (labels.extra if labels else {}) or {}
    stamp = str(int(now if now is not None else time.time()))
    return {"last_updated": stamp} | {label_value(k): label_value(v) for k, v in extra.items()}


def error_category(error: BaseException) -> str | None:
    """Jetstream's (bigquery-etl's) error categories, from the reason codes and message."""
    text = str(error)
    reasons = {e.get("reason") for e in (getattr(error, "errors", None) or []) if isinstance(e, dict)}
    if "resourcesExceeded" in reasons or "Resources exceeded" in text:
        return "Resources exceeded"
    if reasons & {"quotaExceeded", "rateLimitExceeded"} or isinstance(error, gexc.TooManyRequests):
        return "Quota exceeded"
    if "accessDenied" in reasons or isinstance(error, gexc.Forbidden):
        return "Permission denied"
    if "notFound" in reasons or isinstance(error, gexc.NotFound):
        return "Not found"
    if isinstance(error, (concurrent.futures.TimeoutError, TimeoutError, gexc.DeadlineExceeded)):
        return "Operation timed out"
    return None


def _describe(action: str, labels: QueryLabels | None) -> str:
    parts = []
    if labels and labels.experiment:
        parts.append(f"experiment {labels.experiment}")
    if labels and labels.destination:
        parts.append(f"writing {labels.destination}")
    return f"{action} ({', '.join(parts)})" if parts else action


def _wrap(action: str, error: BaseException, labels: QueryLabels | None = None) -> BigQueryError:
    category = error_category(error)
    prefix = f"[{category}] " if category else ""
    return BigQueryError(f"{_describe(action, labels)} failed: {prefix}{error}", category)


def bigquery_schema(schema: Schema) -> list[bigquery.SchemaField]:
    def field(f: Field) -> bigquery.SchemaField:
        return bigquery.SchemaField(f.name, f.type, mode=f.mode, description=f.description or None,
                                    fields=[field(c) for c in f.fields])
    return [field(f) for f in schema]


def _json_value(value: Any) -> Any:
    """A row value as NDJSON for a load job: NaN/NaT/NA as null, dates ISO, numpy as Python."""
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or (hasattr(value, "tolist") and getattr(value, "ndim", 0) > 0):
        return [_json_value(v) for v in list(value)]
    if value is None or value is pd.NaT or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, (dt.date, dt.datetime)):  # pandas Timestamps are datetimes too
        return value.isoformat()
    if hasattr(value, "item"):
        return _json_value(value.item())
    try:
        return None if pd.isna(value) else value
    except (TypeError, ValueError):
        return value


def ndjson(rows: Iterable[dict[str, Any]], schema: Schema) -> tuple[bytes, int]:
    names = column_names(schema)
    buffer = io.StringIO()
    count = 0
    for row in rows:
        buffer.write(json.dumps({n: _json_value(row.get(n)) for n in names}, allow_nan=False))
        buffer.write("\n")
        count += 1
    return buffer.getvalue().encode(), count


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value


class BigQueryWarehouse(Warehouse):
    engine = "bigquery"

    def __init__(self, client_factory: ClientFactory, project: str, dataset: str, monitoring_dataset: str,
                 options: BigQueryOptions = BigQueryOptions()):
        super().__init__(project, dataset, monitoring_dataset)
        self.options = options
        # the factory is dagster-gcp's `BigQueryResource.get_client`: credentials are read when the
        # client is built, so one client serves the warehouse's lifetime
        with client_factory() as client:
            self._client = client

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def _retry(self):
        return bigquery.DEFAULT_RETRY.with_timeout(self.options.api_timeout_seconds * 4) if self.options.retries else None

    @property
    def _job_retry(self):
        return bigquery.retry.DEFAULT_JOB_RETRY if self.options.retries else None

    def _table_id(self, dataset: str, table: str) -> str:
        return f"{self.project}.{dataset}.{table}"

    def table_ref(self, dataset: str, table: str) -> str:
        return quote_identifier(self._table_id(dataset, table))

    def _run(self, sql: str, labels: QueryLabels | None, action: str,
             params: Sequence[bigquery.ScalarQueryParameter] = (), dry_run: bool = False) -> bigquery.QueryJob:
        config = bigquery.QueryJobConfig(labels=job_labels(labels), query_parameters=list(params),
                                         dry_run=dry_run, use_query_cache=not dry_run)
        job = None
        try:
            job = self._client.query(sql, job_config=config, location=self.options.location,
                                     timeout=self.options.api_timeout_seconds, retry=self._retry,
                                     job_retry=self._job_retry)
            if not dry_run:
                job.result(timeout=self.options.job_timeout_seconds, retry=self._retry, job_retry=self._job_retry)
            return job
        except (gexc.GoogleAPIError, concurrent.futures.TimeoutError) as e:
            if isinstance(e, concurrent.futures.TimeoutError) and job is not None:
                with contextlib.suppress(gexc.GoogleAPIError):
                    job.cancel(timeout=self.options.api_timeout_seconds)
            raise _wrap(action, e, labels) from e

    def _frame(self, job: bigquery.QueryJob, action: str) -> pd.DataFrame:
        try:
            # via Arrow, as DuckDB's frames are: NULL-able ints as floats, dates as `datetime.date`
            frame = job.to_arrow(create_bqstorage_client=self.options.storage_read_api).to_pandas()
        except gexc.GoogleAPIError as e:
            raise _wrap(action, e) from e
        for column in frame.columns:  # naive UTC, as every engine returns timestamps
            if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
                frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
        return frame

    def _get_table(self, dataset: str, table: str) -> bigquery.Table | None:
        try:
            return self._client.get_table(self._table_id(dataset, table), retry=self._retry,
                                          timeout=self.options.api_timeout_seconds)
        except gexc.NotFound:
            return None
        except gexc.GoogleAPIError as e:
            raise _wrap(f"reading metadata of {dataset}.{table}", e) from e

    def _set_table_metadata(self, dataset: str, table: str, description: str, labels: QueryLabels | None) -> None:
        target = self._get_table(dataset, table)
        if target is None:
            raise BigQueryError(f"{dataset}.{table} vanished after it was written", "Not found")
        target.labels = table_labels(labels)
        fields = ["labels"]
        if description:
            target.description = description
            fields.append("description")
        try:
            self._client.update_table(target, fields, retry=self._retry, timeout=self.options.api_timeout_seconds)
        except gexc.GoogleAPIError as e:
            raise _wrap(f"labelling {dataset}.{table}", e) from e

    def verify_datasets(self) -> None:
        """Fails fast, before any work, when the results or monitoring dataset is missing or unreadable."""
        for dataset in (self.dataset, self.monitoring_dataset):
            try:
                self._client.get_dataset(f"{self.project}.{dataset}", retry=self._retry,
                                         timeout=self.options.api_timeout_seconds)
            except gexc.NotFound:
                raise BigQueryError(
                    f"BigQuery dataset {self.project}.{dataset} does not exist: create it (`bq mk --dataset "
                    f"--location={self.options.location} {self.project}:{dataset}`) or point JETSTREAM_PROJECT / "
                    "JETSTREAM_DATASET / JETSTREAM_MONITORING_DATASET at an existing one", "Not found",
                ) from None
            except gexc.GoogleAPIError as e:
                raise _wrap(f"opening dataset {self.project}.{dataset}", e) from e

    # -- Warehouse ------------------------------------------------------------------------------
    def query(self, sql: str, labels: QueryLabels | None = None) -> pd.DataFrame:
        return self._frame(self._run(sql, labels, "query"), _describe("query", labels))

    def dry_run(self, sql: str, labels: QueryLabels | None = None) -> int | None:
        job = self._run(sql, labels, "dry run", dry_run=True)
        return int(job.total_bytes_processed or 0)

    @staticmethod
    def _options(description: str, labels: dict[str, str]) -> str:
        pairs = ", ".join(f"({quote_string(k)}, {quote_string(v)})" for k, v in labels.items())
        return f"OPTIONS (description = {quote_string(description)}, labels = [{pairs}])"

    def create_table_as(
        self, dataset: str, table: str, sql: str, *, description: str = "", labels: QueryLabels | None = None
    ) -> int:
        ddl = (f"CREATE OR REPLACE TABLE {self.table_ref(dataset, table)}\n"
               f"{self._options(description, table_labels(labels))}\nAS\n{sql}")
        self._run(ddl, labels, f"creating {dataset}.{table}")
        written = self._get_table(dataset, table)
        return int(written.num_rows or 0) if written is not None else 0

    def _load(self, dataset: str, table: str, data: bytes, schema: Schema, disposition: str,
              description: str, labels: QueryLabels | None) -> None:
        config = bigquery.LoadJobConfig(
            schema=bigquery_schema(schema),
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            write_disposition=disposition,
            create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED,
            destination_table_description=description or None,
            labels=job_labels(labels),
        )
        try:
            # a sized upload is a single multipart request: nothing reaches the table unless the job succeeds
            job = self._client.load_table_from_file(
                io.BytesIO(data), self._table_id(dataset, table), job_config=config, size=len(data),
                location=self.options.location, timeout=self.options.api_timeout_seconds,
            )
            job.result(timeout=self.options.job_timeout_seconds, retry=self._retry)
        except (gexc.GoogleAPIError, concurrent.futures.TimeoutError) as e:
            raise _wrap(f"loading rows into {dataset}.{table}", e, labels) from e

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
        data, _ = ndjson(rows, schema)
        disposition = bigquery.WriteDisposition.WRITE_APPEND if append else bigquery.WriteDisposition.WRITE_TRUNCATE
        self._load(dataset, table, data, schema, disposition, description, labels)
        self._set_table_metadata(dataset, table, description, labels)
        written = self._get_table(dataset, table)
        return int(written.num_rows or 0) if written is not None else 0

    def replace_day(
        self, dataset: str, table: str, rows: Iterable[dict[str, Any]], schema: Schema, *,
        date_column: str, day: dt.date, description: str = "",
    ) -> int:
        """Rows staged by a load job, then one MERGE deletes the day's old rows and inserts the new
        ones: a single statement, so readers see the old day or the new day, never neither."""
        data, _ = ndjson(rows, schema)
        staging = f"{STAGING_PREFIX}{table}_{uuid.uuid4().hex[:8]}"
        target = bigquery.Table(self._table_id(dataset, table), schema=bigquery_schema(schema))
        target.time_partitioning = bigquery.TimePartitioning(field=date_column)
        target.description = description or None
        try:
            self._client.create_table(target, exists_ok=True, retry=self._retry,
                                      timeout=self.options.api_timeout_seconds)
        except gexc.GoogleAPIError as e:
            raise _wrap(f"creating {dataset}.{table}", e) from e
        day_param = [bigquery.ScalarQueryParameter("day", "DATE", day)]
        column = quote_identifier(date_column)
        names = [quote_identifier(n) for n in column_names(schema)]
        try:
            self._load(dataset, staging, data, schema, bigquery.WriteDisposition.WRITE_TRUNCATE, "", None)
            self._run(
                f"MERGE {self.table_ref(dataset, table)} T USING {self.table_ref(dataset, staging)} S ON FALSE\n"
                f"WHEN NOT MATCHED BY SOURCE AND DATE(T.{column}) = @day THEN DELETE\n"
                f"WHEN NOT MATCHED THEN INSERT ({', '.join(names)}) VALUES ({', '.join('S.' + n for n in names)})",
                QueryLabels(destination=f"{dataset}.{table}"), f"replacing {day} of {dataset}.{table}", day_param,
            )
        finally:
            with contextlib.suppress(gexc.GoogleAPIError):
                self._client.delete_table(self._table_id(dataset, staging), not_found_ok=True,
                                          timeout=self.options.api_timeout_seconds)
        self._set_table_metadata(dataset, table, description, None)
        counted = self._run(f"SELECT COUNT(*) AS n FROM {self.table_ref(dataset, table)} WHERE DATE({column}) = @day",
                            None, f"counting {day} of {dataset}.{table}", day_param)
        return int(self._frame(counted, "count")["n"][0])

    def create_window_view(self, dataset: str, view: str, table_prefix: str) -> None:
        """Jetstream's wildcard view. Columns are those of the newest window's table (what BigQuery's
        wildcard would expose), listed explicitly: emulators leak `_TABLE_SUFFIX` through `*`."""
        pattern = re.compile(re.escape(table_prefix) + r"([0-9]+)$")
        windows = [(int(m.group(1)), name) for name in self.list_tables(dataset, table_prefix)
                   if (m := pattern.match(name))]
        if not windows:
            return
        newest = self._get_table(dataset, max(windows)[1])
        if newest is None:  # dropped meanwhile (a concurrent rerun): that rerun writes the view
            return
        columns = ", ".join(quote_identifier(f.name) for f in newest.schema)
        source = quote_identifier(f"{self.project}.{dataset}.{table_prefix}*")
        self._run(
            f"CREATE OR REPLACE VIEW {self.table_ref(dataset, view)}\n{self._options('', table_labels(None))}\nAS\n"
            f"SELECT {columns}, CAST(REGEXP_EXTRACT(_TABLE_SUFFIX, r'[0-9]+$') AS INT64) AS window_index\n"
            f"FROM {source}",
            QueryLabels(destination=f"{dataset}.{view}"), f"creating view {dataset}.{view}",
        )

    def query_costs(self, day: dt.date) -> pd.DataFrame:
        """bigquery-etl's query_cost rule: the day's query jobs whose destination is the results dataset."""
        region = quote_identifier(f"region-{self.options.location.lower()}")
        sql = f"""
SELECT
  creation_time AS submission_timestamp,
  CONCAT(destination_table.dataset_id, '.', destination_table.table_id) AS destination_table,
  query,
  total_bytes_processed,
  total_bytes_processed / POW(2, 40) * {COST_PER_TIB_USD} AS cost_usd,
  (SELECT l.value FROM UNNEST(labels) AS l WHERE l.key = 'experiment_slug') AS experiment_slug,
  total_slot_ms,
  TIMESTAMP_DIFF(end_time, creation_time, MILLISECOND) / 60000 AS duration_minutes,
  error_result.reason AS error_reason
FROM {quote_identifier(self.project)}.{region}.INFORMATION_SCHEMA.JOBS_BY_PROJECT
WHERE DATE(creation_time) = @day
  AND job_type = 'QUERY'
  AND destination_table.project_id = @project
  AND destination_table.dataset_id = @dataset
ORDER BY creation_time"""
        params = [bigquery.ScalarQueryParameter("day", "DATE", day),
                  bigquery.ScalarQueryParameter("project", "STRING", self.project),
                  bigquery.ScalarQueryParameter("dataset", "STRING", self.dataset)]
        frame = self._frame(self._run(sql, None, f"reading query costs of {day}", params), "query costs")
        return frame.reindex(columns=column_names(QUERY_COST_SCHEMA))

    def drop_tables(self, dataset: str, names: list[str]) -> None:
        """DDL drops (`DROP VIEW` for views): one statement per object, missing ones are skipped."""
        try:
            kinds = {t.table_id: t.table_type for t in self._client.list_tables(
                f"{self.project}.{dataset}", retry=self._retry, timeout=self.options.api_timeout_seconds)}
        except gexc.GoogleAPIError as e:
            raise _wrap(f"listing tables of {self.project}.{dataset}", e) from e
        for name in names:
            if name in kinds:
                kind = "VIEW" if kinds[name] == "VIEW" else "TABLE"
                self._run(f"DROP {kind} IF EXISTS {self.table_ref(dataset, name)}", None, f"dropping {dataset}.{name}")

    def list_tables(self, dataset: str, prefix: str = "") -> list[str]:
        try:
            tables = self._client.list_tables(f"{self.project}.{dataset}", retry=self._retry,
                                              timeout=self.options.api_timeout_seconds)
            return sorted(t.table_id for t in tables if t.table_id.startswith(prefix))
        except gexc.GoogleAPIError as e:
            raise _wrap(f"listing tables of {self.project}.{dataset}", e) from e

    def table_modified(self, dataset: str, table: str) -> dt.datetime | None:
        found = self._get_table(dataset, table)
        return _naive_utc(found.modified) if found is not None else None

    def table_schema(self, dataset: str, table: str) -> list[str]:
        found = self._get_table(dataset, table)
        return [f.name for f in found.schema] if found is not None else []

    # -- publication (Warehouse.publication) --------------------------------------------------------
    def _clean_staging(self, dataset: str, slug: str) -> None:
        """Staging tables carry the slug as description (as every analysis table does) and their age."""
        now = _naive_utc(dt.datetime.now(dt.timezone.utc))
        old = []
        for name in self.list_tables(dataset, STAGING_PREFIX):
            table = self._get_table(dataset, name) if staging_token(name) else None
            if table is not None and table.description == slug and now - _naive_utc(table.created) > STAGING_MAX_AGE:
                old.append(name)
        self.drop_tables(dataset, old)

    def _begin_publication(self, pub: Publication) -> None:
        """Nothing to record: a staging table's creation time and description say whose and how old it is."""

    def _abandon(self, pub: Publication) -> None:
        self.drop_tables(pub.dataset, self.list_tables(pub.dataset, staging_name(pub.writer.token, "")))

    def _copy(self, dataset: str, source: str, destination: str) -> None:
        config = bigquery.CopyJobConfig(write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
                                        create_disposition=bigquery.CreateDisposition.CREATE_IF_NEEDED)
        try:
            job = self._client.copy_table(self._table_id(dataset, source), self._table_id(dataset, destination),
                                          job_config=config, location=self.options.location,
                                          timeout=self.options.api_timeout_seconds, retry=self._retry)
            job.result(timeout=self.options.job_timeout_seconds, retry=self._retry)
        except (gexc.GoogleAPIError, concurrent.futures.TimeoutError) as e:
            raise _wrap(f"publishing {dataset}.{destination}", e) from e

    def _swap(self, pub: Publication) -> None:
        for final, staged in pub.built.items():
            self._copy(pub.dataset, staged.staging, final)
            self._set_table_metadata(pub.dataset, final, staged.description, staged.labels)
        # a recorded view is replaced in place (never missing) unless no window table is left for it
        self.drop_tables(pub.dataset, [n for n in pub.stale if n not in pub.views])
        for view, prefix in pub.views.items():
            if self.list_tables(pub.dataset, prefix):
                self.create_window_view(pub.dataset, view, prefix)
            elif view in pub.stale:
                self.drop_tables(pub.dataset, [view])
        self._abandon(pub)

    def latest_date(
        self, table: str, column: str, *, since: dt.date, labels: QueryLabels | None = None
    ) -> dt.date | None:
        """From the table's partitions (`INFORMATION_SCHEMA.PARTITIONS`: metadata, nothing billed) when it
        is partitioned by day or hour; otherwise (views, unpartitioned tables) MAX over `column` from `since`."""
        parts = table.strip("`").split(".")
        project, dataset, name = parts if len(parts) == 3 else [self._client.project, *parts]
        try:
            found = self._client.get_table(f"{project}.{dataset}.{name}", retry=self._retry,
                                           timeout=self.options.api_timeout_seconds)
        except gexc.GoogleAPIError as e:
            raise _wrap(f"reading metadata of {table}", e, labels) from e
        partitioning = found.time_partitioning
        if found.table_type != "TABLE" or partitioning is None or partitioning.type_ not in ("DAY", "HOUR"):
            return super().latest_date(table, column, since=since, labels=labels)
        sql = f"""
SELECT MAX(partition_id) AS latest
FROM {quote_identifier(project)}.{quote_identifier(dataset)}.INFORMATION_SCHEMA.PARTITIONS
WHERE table_name = @table
  AND REGEXP_CONTAINS(partition_id, r'^[0-9]{{8}}')
  AND total_rows > 0
  AND partition_id >= @since"""
        params = [bigquery.ScalarQueryParameter("table", "STRING", name),
                  bigquery.ScalarQueryParameter("since", "STRING", since.strftime("%Y%m%d"))]
        latest = self._frame(self._run(sql, labels, f"reading the partitions of {table}", params), "partitions")
        return latest_partition_day(latest["latest"].iloc[0])


def latest_partition_day(partition_id: str | None) -> dt.date | None:
    """The last complete day a table's newest partition shows: a day partition `YYYYMMDD` is written
    whole; an hour partition `YYYYMMDDHH` completes its day only at hour 23."""
    if partition_id is None or pd.isna(partition_id):
        return None
    day = dt.datetime.strptime(partition_id[:8], "%Y%m%d").date()
    return day if len(partition_id) == 8 or partition_id[8:] == "23" else day - dt.timedelta(days=1)
