"""Bucket exports Experimenter reads, per experiment: statistics, metadata and errors JSON."""


import datetime as dt

import dagster as dg

from jetstream_assets.analysis.exports import ExportResult, export_metadata, export_statistics
from jetstream_assets.analysis.logs import context as log_context
from jetstream_assets.dagster_defs.analysis_assets import ENROLLMENTS_KEY, STATISTICS_KEY, run_metadata
from jetstream_assets.dagster_defs.engine_kinds import bucket_kinds
from jetstream_assets.dagster_defs.run_times import run_started_at
from jetstream_assets.dagster_defs.errors_export import ERRORS_JSON_KEY, errors_metadata, export_errors_of, publish_errors
from jetstream_assets.dagster_defs.experiment_step import experiment_step
from jetstream_assets.dagster_defs.markdown import md_table
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.resources import BucketResource, MetricHubResource, WarehouseResource
from jetstream_assets.dagster_defs.skips import REFUSED, skip_event

EXPORTS_GROUP = "experimenter_exports"
STATISTICS_JSON_KEY = dg.AssetKey(["bucket", "statistics_json"])
METADATA_JSON_KEY = dg.AssetKey(["bucket", "metadata_json"])


@dg.asset(
    key=STATISTICS_JSON_KEY,
    deps=[STATISTICS_KEY],
    partitions_def=experiments_partitions,
    group_name=EXPORTS_GROUP,
    kinds=bucket_kinds(),
    output_required=False,
    description="`statistics/statistics_<slug>_<suffix>.json`: each statistics view as a JSON array "
    "(nimbus `Statistics`), re-exported when the view changed since the file was written or the published "
    "file is unusable; a view that fails validation is not published.",
)
def statistics_json(context: dg.AssetExecutionContext, warehouse: WarehouseResource, metric_hub: MetricHubResource,
                    bucket: BucketResource):
    with publish_errors(context, warehouse, bucket), experiment_step(context, warehouse, metric_hub) as step:
        if not step.analysable:
            yield skip_event(context, step.skip_reason, run_metadata(step))
            return
        results = export_statistics(step.warehouse, bucket.get_bucket(), step.slug)
        refused = {r.key: r.refused for r in results if r.refused}
        for key, reason in refused.items():
            step.log.error("%s: %s not published: %s", step.slug, key, reason, extra=log_context(experiment=step.slug))
        written = [r for r in results if r.written]
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(r.rows for r in written),
                "files": dg.MetadataValue.md(
                    md_table(["file", "rows", "written"],
                             [(r.uri, r.rows if r.written else "", _export_status(r)) for r in results])
                ),
                REFUSED: dg.MetadataValue.json(refused),
                **run_metadata(step),
            },
        )


def _export_status(result: ExportResult) -> str:
    if result.refused:
        return "refused: fails validation"
    return "yes" if result.written else "unchanged"


@dg.asset(
    key=METADATA_JSON_KEY,
    deps=[ENROLLMENTS_KEY],
    partitions_def=experiments_partitions,
    group_name=EXPORTS_GROUP,
    kinds=bucket_kinds(),
    output_required=False,
    description="`metadata/metadata_<slug>.json`: metrics, outcomes and metric-hub overrides (nimbus `Metadata`).",
)
def metadata_json(context: dg.AssetExecutionContext, warehouse: WarehouseResource, metric_hub: MetricHubResource,
                  bucket: BucketResource):
    with publish_errors(context, warehouse, bucket), experiment_step(context, warehouse, metric_hub) as step:
        if not step.analysable:
            yield skip_event(context, step.skip_reason, run_metadata(step))
            return
        result = export_metadata(bucket.get_bucket(), step.config, dt.datetime.now(dt.timezone.utc))
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows,
                "uri": dg.MetadataValue.url(result.uri),
                "metrics": dg.MetadataValue.md(
                    md_table(["metric", "friendly name", "bases"],
                             [(m.name, m.friendly_name, ", ".join(m.analysis_bases))
                              for m in step.config.all_metrics().values()])
                ),
            }
        )


@dg.asset(
    key=ERRORS_JSON_KEY,
    # last in a run, so it holds every step's rows; a failed step publishes the file itself (publish_errors)
    deps=[STATISTICS_JSON_KEY, METADATA_JSON_KEY],
    partitions_def=experiments_partitions,
    group_name=EXPORTS_GROUP,
    kinds=bucket_kinds(),
    description="`errors/errors_<slug>.json` (nimbus `AnalysisErrors`): the experiment's WARNING/ERROR log rows "
    "of the current weekly cycle, without expected skips. Materialized once per run, after the other exports; "
    "every analysis step also rewrites the file when it ends, so a run that fails still publishes its errors.",
)
def errors_json(context: dg.AssetExecutionContext, warehouse: WarehouseResource, bucket: BucketResource):
    wh = warehouse.get_warehouse()
    with wh.session():
        result = export_errors_of(wh, bucket, context.partition_key, run_started_at(context.instance, context.run_id))
    return dg.MaterializeResult(metadata=errors_metadata(result))
