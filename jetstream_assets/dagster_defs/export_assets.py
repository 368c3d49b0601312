"""Bucket exports Experimenter reads, per experiment: statistics and metadata JSON (errors JSON is
published by every analysis step, see errors_export)."""


import datetime as dt

import dagster as dg

from jetstream_assets.analysis.exports import export_metadata, export_statistics
from jetstream_assets.dagster_defs.analysis_assets import ENROLLMENTS_KEY, STATISTICS_KEY
from jetstream_assets.dagster_defs.engine_kinds import bucket_kinds
from jetstream_assets.dagster_defs.errors_export import ERRORS_JSON_KEY, publish_errors
from jetstream_assets.dagster_defs.experiment_step import experiment_step
from jetstream_assets.dagster_defs.markdown import md_table
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.resources import BucketResource, MetricHubResource, WarehouseResource

EXPORTS_GROUP = "experimenter_exports"


@dg.asset(
    key=["bucket", "statistics_json"],
    deps=[STATISTICS_KEY],
    partitions_def=experiments_partitions,
    group_name=EXPORTS_GROUP,
    kinds=bucket_kinds(),
    output_required=False,
    description="`statistics/statistics_<slug>_<suffix>.json`: each statistics view as a JSON array "
    "(nimbus `Statistics`), re-exported only when the view changed since the file was written.",
)
def statistics_json(context: dg.AssetExecutionContext, warehouse: WarehouseResource, metric_hub: MetricHubResource,
                    bucket: BucketResource):
    with publish_errors(context, warehouse, bucket), experiment_step(context, warehouse, metric_hub) as step:
        if not step.analysable:
            return
        results = export_statistics(step.warehouse, bucket.get_bucket(), step.slug)
        written = [r for r in results if r.written]
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(r.rows for r in written),
                "files": dg.MetadataValue.md(
                    md_table(["file", "rows", "written"],
                             [(r.uri, r.rows if r.written else "", "yes" if r.written else "unchanged") for r in results])
                ),
            }
        )


@dg.asset(
    key=["bucket", "metadata_json"],
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


errors_json = dg.AssetSpec(
    key=ERRORS_JSON_KEY,
    deps=[STATISTICS_KEY],
    partitions_def=experiments_partitions,
    group_name=EXPORTS_GROUP,
    kinds=bucket_kinds(),
    description="`errors/errors_<slug>.json` (nimbus `AnalysisErrors`): the experiment's WARNING/ERROR log rows "
    "of the current weekly cycle, without expected skips; re-published by every analysis step.",
)
