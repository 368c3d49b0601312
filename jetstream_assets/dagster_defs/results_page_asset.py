"""`results/<slug>.html`: the experiment's results page, rebuilt after its statistics and metadata exports.

The page's banners are the experiment's own asset checks: the latest evaluation of each check for this
partition, read from the Dagster instance and handed to the (Dagster-free) renderer as plain data."""


import datetime as dt

import dagster as dg

from jetstream_assets.dagster_defs.analysis_assets import ENROLLMENTS_KEY, STATISTICS_KEY
from jetstream_assets.dagster_defs.checks import (
    ANALYSIS_ERRORS,
    ENROLLMENT_VOLUME,
    EXPORT_CONTRACT,
    SAMPLE_RATIO,
    STATISTICS_COMPLETENESS,
    UNENROLLMENT_RATE,
)
from jetstream_assets.dagster_defs.engine_kinds import bucket_kinds
from jetstream_assets.dagster_defs.errors_export import ERRORS_JSON_KEY
from jetstream_assets.dagster_defs.experiment_step import experiment_step
from jetstream_assets.dagster_defs.export_assets import EXPORTS_GROUP, STATISTICS_JSON_KEY
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.skips import SKIPPED
from jetstream_assets.dagster_defs.resources import BucketResource, MetricHubResource, WarehouseResource
from jetstream_assets.experimenter.store import read_snapshot
from jetstream_assets.results_page import Alert, page_data, render_page, results_object

RESULTS_HTML_KEY = dg.AssetKey(["bucket", "results_html"])
METADATA_JSON_KEY = dg.AssetKey(["bucket", "metadata_json"])
HTML_CONTENT_TYPE = "text/html; charset=utf-8"

# (asset, check) pairs whose failures the page shows as banners
PAGE_CHECKS = (
    (ENROLLMENTS_KEY, SAMPLE_RATIO),
    (ENROLLMENTS_KEY, ENROLLMENT_VOLUME),
    (ENROLLMENTS_KEY, UNENROLLMENT_RATE),
    (STATISTICS_KEY, STATISTICS_COMPLETENESS),
    (STATISTICS_KEY, ANALYSIS_ERRORS),
    (STATISTICS_JSON_KEY, EXPORT_CONTRACT),
)


def latest_alerts(instance: dg.DagsterInstance, partition: str) -> list[Alert]:
    """The checks evaluated with each asset's latest materialization of this experiment (in-asset checks of a
    partitioned asset carry no partition of their own, so they are found through that materialization's run)."""
    alerts = []
    for asset in dict.fromkeys(asset for asset, _ in PAGE_CHECKS):
        latest = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[partition]), limit=1,
        ).records
        if not latest:
            continue
        evaluations = {}
        for record in instance.get_records_for_run(
            latest[0].run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        ).records:
            evaluation = record.event_log_entry.asset_check_evaluation
            if evaluation is not None and evaluation.asset_key == asset:
                evaluations[evaluation.check_name] = evaluation  # the run's last evaluation wins
        for check_asset, check in PAGE_CHECKS:
            evaluation = evaluations.get(check.name) if check_asset == asset else None
            if evaluation is not None:
                alerts.append(Alert(check.name, evaluation.severity.value, evaluation.passed,
                                    evaluation.description or "", check.description))
    return alerts


@dg.asset(
    key=RESULTS_HTML_KEY,
    deps=[STATISTICS_JSON_KEY, METADATA_JSON_KEY, ERRORS_JSON_KEY],
    partitions_def=experiments_partitions,
    group_name=EXPORTS_GROUP,
    kinds=bucket_kinds(),
    description="`results/<slug>.html`: the experiment's results page (one self-contained HTML file: forest "
    "plots of relative uplift, weekly uplift, distributions, alert banners), drawn from the statistics, "
    "metadata and errors exports.",
)
def results_html(context: dg.AssetExecutionContext, warehouse: WarehouseResource, metric_hub: MetricHubResource,
                 bucket: BucketResource) -> dg.MaterializeResult:
    with experiment_step(context, warehouse, metric_hub) as step:
        if step.config is not None:
            experiment = step.config.experiment
            adjusted = {o.slug: o.multiple_testing for o in step.config.outcomes if o.multiple_testing}
        else:  # not analysed (skipped): the page says why
            today = dt.datetime.now(dt.timezone.utc).date()
            experiment = read_snapshot(step.warehouse, today=today)[step.slug]
            adjusted = {}
        target = bucket.get_bucket()
        data = page_data(target, experiment, alerts=latest_alerts(context.instance, step.slug),
                         skip_reason=step.skip_reason, multiple_testing=adjusted)
        uri = target.write_text(results_object(step.slug), render_page(data), HTML_CONTENT_TYPE)
        return dg.MaterializeResult(
            metadata={
                "uri": dg.MetadataValue.url(uri),
                "dagster/row_count": sum(len(rows) for rows in data.statistics.values()),  # statistics drawn
                "metrics": len(data.metrics),
                "alerts": ", ".join(a.name for a in data.alerts if not a.passed) or "none",
                "unreadable exports": len(data.problems),
                **({SKIPPED: dg.MetadataValue.text(step.skip_reason)} if step.skip_reason else {}),
            }
        )
