"""`errors/errors_<slug>.json`, re-published after every step of an analysis attempt, failed ones included."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Iterator

import dagster as dg

from jetstream_assets.analysis.exports import export_errors, errors_window_start
from jetstream_assets.dagster_defs.markdown import md_table
from jetstream_assets.dagster_defs.resources import BucketResource, WarehouseResource
from jetstream_assets.dagster_defs.table_name_owner import clash_of
from jetstream_assets.experimenter.store import read_snapshot

ERRORS_JSON_KEY = dg.AssetKey(["bucket", "errors_json"])


@contextlib.contextmanager
def publish_errors(context, warehouse: WarehouseResource, bucket: BucketResource) -> Iterator[None]:
    """Wraps a step (outside its log capture, so the step's rows are flushed first) and exports the
    experiment's errors whatever the step's outcome. An export problem is reported, never raised over
    the step's own result."""
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    wh = warehouse.get_warehouse()
    with wh.session():
        try:
            yield
        finally:
            _export(context, wh, bucket, started)


def _export(context, wh, bucket: BucketResource, started: dt.datetime) -> None:
    slug = context.partition_key
    try:
        experiments = read_snapshot(wh, today=started.date())
        if clash_of(context.instance, slug, experiments) is not None:
            return  # the file's name belongs to another experiment; the step logged why
        experiment = experiments.get(slug)
        result = export_errors(wh, bucket.get_bucket(), slug, errors_window_start(experiment, started))
        context.log_event(
            dg.AssetMaterialization(
                asset_key=ERRORS_JSON_KEY,
                partition=slug,
                metadata={
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
                },
            )
        )
    except Exception as e:
        context.log.error(f"{slug}: could not export errors JSON: {e}")
