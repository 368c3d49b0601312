"""Bucket exports Experimenter reads, per experiment: statistics and metadata JSON (errors JSON is
published by every analysis step, see errors_export)."""


import datetime as dt

import dagster as dg
from mozilla_nimbus_schemas.jetstream import Statistics

from jetstream_assets.analysis.exports import ExportResult, export_metadata, export_statistics
from jetstream_assets.analysis.health import export_contract
from jetstream_assets.analysis.logs import context as log_context
from jetstream_assets.dagster_defs.analysis_assets import ENROLLMENTS_KEY, STATISTICS_KEY
from jetstream_assets.dagster_defs.checks import EXPORT_CONTRACT, checked_asset
from jetstream_assets.dagster_defs.engine_kinds import bucket_kinds
from jetstream_assets.dagster_defs.errors_export import ERRORS_JSON_KEY, publish_errors
from jetstream_assets.dagster_defs.experiment_step import experiment_step
from jetstream_assets.dagster_defs.markdown import md_table
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.resources import BucketResource, MetricHubResource, WarehouseResource

EXPORTS_GROUP = "experimenter_exports"
STATISTICS_JSON_KEY = dg.AssetKey(["bucket", "statistics_json"])


@checked_asset(
    dg.AssetSpec(
        STATISTICS_JSON_KEY,
        deps=[STATISTICS_KEY],
        group_name=EXPORTS_GROUP,
        kinds=bucket_kinds(),
        skippable=True,
        description="`statistics/statistics_<slug>_<suffix>.json`: each statistics view as a JSON array "
        "(nimbus `Statistics`), re-exported when the view changed since the file was written or the published "
        "file is unusable; a view that fails validation is not published.",
    ),
    [EXPORT_CONTRACT],
)
def statistics_json(context: dg.AssetExecutionContext, warehouse: WarehouseResource, metric_hub: MetricHubResource,
                    bucket: BucketResource):
    with publish_errors(context, warehouse, bucket), experiment_step(context, warehouse, metric_hub) as step:
        if not step.analysable:
            return
        target = bucket.get_bucket()
        results = export_statistics(step.warehouse, target, step.slug)
        refused = {r.key: r.refused for r in results if r.refused}
        for key, reason in refused.items():
            step.log.error("%s: %s not published: %s", step.slug, key, reason, extra=log_context(experiment=step.slug))
        written = [r for r in results if r.written]
        contract = export_contract(target, [r.key for r in results if not r.refused], Statistics, refused)
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(r.rows for r in written),
                "files": dg.MetadataValue.md(
                    md_table(["file", "rows", "written"],
                             [(r.uri, r.rows if r.written else "", _export_status(r)) for r in results])
                ),
            },
            check_results=[EXPORT_CONTRACT.result(contract)],
        )


def _export_status(result: ExportResult) -> str:
    if result.refused:
        return "refused: fails validation"
    return "yes" if result.written else "unchanged"


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
