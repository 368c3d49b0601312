"""`errors/errors_<slug>.json`: written when every analysis step ends (failed ones included), and
materialized once per run by the `bucket/errors_json` asset."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Iterator

import dagster as dg

from jetstream_assets.analysis.exports import ExportResult, errors_window_start, export_errors
from jetstream_assets.dagster_defs.markdown import md_table
from jetstream_assets.dagster_defs.resources import BucketResource, WarehouseResource
from jetstream_assets.dagster_defs.run_times import run_started_at
from jetstream_assets.dagster_defs.table_name_owner import clash_of
from jetstream_assets.engines.warehouse import Warehouse
from jetstream_assets.experimenter.store import read_snapshot

ERRORS_JSON_KEY = dg.AssetKey(["bucket", "errors_json"])


def export_errors_of(wh: Warehouse, bucket: BucketResource, slug: str, now: dt.datetime) -> ExportResult:
    """The experiment's errors of its current weekly cycle, written to the bucket (naive UTC `now`)."""
    experiment = read_snapshot(wh, today=now.date()).get(slug)
    return export_errors(wh, bucket.get_bucket(), slug, errors_window_start(experiment, now))


def errors_metadata(result: ExportResult) -> dict:
    return {
        "dagster/row_count": result.rows,
        "uri": dg.MetadataValue.url(result.uri),
        "errors": dg.MetadataValue.md(
            md_table(
                ["time", "level", "type", "metric", "message"],
                [(r["timestamp"], r["log_level"], r["exception_type"], r["metric"], r["message"][:160])
                 for r in result.payload],
                limit=10,
            )
        ),
    }


@contextlib.contextmanager
def publish_errors(context, warehouse: WarehouseResource, bucket: BucketResource) -> Iterator[None]:
    """Wraps a step (outside its log capture, so the step's rows are flushed first) and rewrites the
    experiment's errors file whatever the step's outcome, so a run that stops at a failed step still
    publishes why. An export problem is reported, never raised over the step's own result."""
    started = run_started_at(context.instance, context.run_id)  # the errors window is the run's, not the step's
    wh = warehouse.get_warehouse()
    with wh.session():
        try:
            yield
        finally:
            try:
                if clash_of(context.instance, context.partition_key, read_snapshot(wh, today=started.date())) is None:
                    # (else the file's name belongs to another experiment; the step logged why)
                    export_errors_of(wh, bucket, context.partition_key, started)
            except Exception as e:
                context.log.error(f"{context.partition_key}: could not export errors JSON: {e}")
