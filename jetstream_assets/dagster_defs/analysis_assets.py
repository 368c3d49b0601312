"""Per-experiment tables: enrollments, metrics and statistics (partitioned by experiment slug).

A step that has nothing to do (the experiment is skipped, or no window became ready on the run's
date) yields no materialization, and the steps after it in the run are skipped, as in Jetstream.
Enrollment health and statistics completeness are asset checks evaluated by these steps (see checks).
"""


import dagster as dg

from jetstream_assets.analysis.enrollments import ensure_enrollments
from jetstream_assets.analysis.health import (
    analysis_errors,
    enrollment_days_passed,
    enrollment_volume,
    measure_unenrollment,
    read_window_statistics,
    sample_ratio_mismatch,
    statistics_completeness,
)
from jetstream_assets.analysis.metrics import compute_metrics, existing_metrics_tables
from jetstream_assets.analysis.statistics_tables import compute_statistics
from jetstream_assets.sql.dialect import quote_string
from jetstream_assets.dagster_defs.checks import (
    ANALYSIS_ERRORS,
    ENROLLMENT_VOLUME,
    SAMPLE_RATIO,
    STATISTICS_COMPLETENESS,
    UNENROLLMENT_RATE,
    checked_asset,
    run_started_at,
)
from jetstream_assets.dagster_defs.engine_kinds import warehouse_kinds
from jetstream_assets.dagster_defs.experiment_step import ExperimentStep, experiment_step
from jetstream_assets.dagster_defs.freshness import DAILY_STATISTICS_FRESHNESS
from jetstream_assets.dagster_defs.markdown import md_table
from jetstream_assets.dagster_defs.partitions import WAREHOUSE_POOL, experiments_partitions
from jetstream_assets.dagster_defs.resources import BucketResource, MetricHubResource, WarehouseResource
from jetstream_assets.dagster_defs.errors_export import publish_errors

ENROLLMENTS_KEY = dg.AssetKey(["mozanalysis", "enrollments"])
METRICS_KEY = dg.AssetKey(["mozanalysis", "metrics"])
STATISTICS_KEY = dg.AssetKey(["mozanalysis", "statistics"])
ANALYSIS_GROUP = "experiment_analysis"


def _enrollment_checks(step: ExperimentStep, clients_per_branch: dict[str, int]) -> list[dg.AssetCheckResult]:
    experiment = step.config.experiment
    dates = step.plan.dates
    days = enrollment_days_passed(dates.start_date, dates.last_enrollment_date, step.plan.date)
    return [
        SAMPLE_RATIO.result(sample_ratio_mismatch(clients_per_branch, {b.slug: b.ratio for b in experiment.branches})),
        ENROLLMENT_VOLUME.result(enrollment_volume(sum(clients_per_branch.values()), days)),
        UNENROLLMENT_RATE.result(measure_unenrollment(step.warehouse, step.slug, dates.start_date, step.plan.date)),
    ]


def _statistics_checks(context: dg.AssetExecutionContext, step: ExperimentStep) -> list[dg.AssetCheckResult]:
    step.logs_handler.flush()  # this step's ERROR rows count too
    windows = read_window_statistics(step.warehouse, step.config, step.plan)
    return [
        STATISTICS_COMPLETENESS.result(statistics_completeness(step.config, step.plan, windows)),
        ANALYSIS_ERRORS.result(analysis_errors(step.warehouse, step.slug, run_started_at(context))),
    ]


def _run_metadata(step) -> dict:
    return {
        "analysis_date": dg.MetadataValue.text(step.plan.date.isoformat()),
        "mode": dg.MetadataValue.text("rerun" if step.plan.rerun else "daily"),
    }


@checked_asset(
    dg.AssetSpec(
        ENROLLMENTS_KEY,
        group_name=ANALYSIS_GROUP,
        kinds=warehouse_kinds(),
        skippable=True,
        description="`enrollments_<slug>`: one row per enrolled client and branch, with segment flags and "
        "default Nimbus exposures. Built once, on the first day the `day` period is ready, then reused.",
    ),
    [SAMPLE_RATIO, ENROLLMENT_VOLUME, UNENROLLMENT_RATE],
)
def enrollments(context: dg.AssetExecutionContext, warehouse: WarehouseResource, metric_hub: MetricHubResource,
                bucket: BucketResource):
    with publish_errors(context, warehouse, bucket), experiment_step(context, warehouse, metric_hub) as step:
        if not step.analysable:
            context.log.info(f"{step.slug} skipped: {step.skip_reason}")
            return
        if not step.plan.enrollments_ready:
            context.log.info(f"{step.slug}: enrollment is not over on {step.plan.date}; nothing to do yet")
            return
        result = ensure_enrollments(step.warehouse, step.config, step.plan, step.log)
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows,
                "table": dg.MetadataValue.text(f"{step.warehouse.dataset}.{result.table}"),
                "created": result.created,
                "clients_per_branch": dg.MetadataValue.md(
                    md_table(["branch", "clients"], sorted(result.clients_per_branch.items()))
                ),
                "unknown_branches": dg.MetadataValue.json(result.unknown_branches),
                **_run_metadata(step),
            },
            check_results=_enrollment_checks(step, result.clients_per_branch),
        )


@dg.asset(
    key=METRICS_KEY,
    deps=[ENROLLMENTS_KEY],
    partitions_def=experiments_partitions,
    pool=WAREHOUSE_POOL,
    group_name=ANALYSIS_GROUP,
    kinds=warehouse_kinds(),
    output_required=False,
    description="Per-client metrics `<slug>_<basis>_<period>_<n>` for each window ready on the analysis "
    "date, and the views `<slug>_<basis>_<suffix>` over all windows.",
)
def metrics(context: dg.AssetExecutionContext, warehouse: WarehouseResource, metric_hub: MetricHubResource,
            bucket: BucketResource):
    with publish_errors(context, warehouse, bucket), experiment_step(context, warehouse, metric_hub) as step:
        if not step.analysable or step.plan.is_empty():
            context.log.info(f"{step.slug}: no analysis window is ready on {step.settings.date}")
            return
        tables = compute_metrics(step.warehouse, step.config, step.plan, step.log)
        if not tables:
            raise dg.Failure(f"{step.slug}: every metrics query failed; see monitoring.logs")
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(t.rows for t in tables),
                "tables": dg.MetadataValue.md(
                    md_table(
                        ["period", "window", "basis", "table", "clients", "metrics", "failed"],
                        [(t.period, t.window_index, t.basis, t.table, t.rows, len(t.metrics),
                          ", ".join(t.failed_metrics)) for t in tables],
                    )
                ),
                **_run_metadata(step),
            }
        )


def _uplift_preview(frame_rows: list[dict]) -> str:
    rows = [
        (r["metric"], r["statistic"], r["branch"], r["comparison_to_branch"], r["point"], r["lower"], r["upper"])
        for r in frame_rows
    ]
    return md_table(["metric", "statistic", "branch", "vs", "relative uplift", "lower", "upper"], rows)


@checked_asset(
    dg.AssetSpec(
        STATISTICS_KEY,
        deps=[METRICS_KEY],
        group_name=ANALYSIS_GROUP,
        kinds=warehouse_kinds() | {"pandas"},
        skippable=True,
        freshness_policy=DAILY_STATISTICS_FRESHNESS,
        description="Statistics `statistics_<slug>_<period>_<n>` (schema v4) for every metric, statistic, branch "
        "pair, segment and basis, and the views `statistics_<slug>_<suffix>`.",
    ),
    # the errors check lives here: statistics is the last analysis step, and it runs whenever an earlier
    # step failed only partially (a failed metric or statistic is logged and the rest is computed), so it
    # sees every ERROR row of the run; a step that fails outright fails the run, which is its own alert
    [STATISTICS_COMPLETENESS, ANALYSIS_ERRORS],
)
def statistics(context: dg.AssetExecutionContext, warehouse: WarehouseResource, metric_hub: MetricHubResource,
               bucket: BucketResource):
    with publish_errors(context, warehouse, bucket), experiment_step(context, warehouse, metric_hub) as step:
        if not step.analysable or step.plan.is_empty():
            return
        inputs = existing_metrics_tables(step.warehouse, step.config, step.plan)
        tables = compute_statistics(step.warehouse, step.config, step.plan, inputs, step.log)
        if not tables:
            raise dg.Failure(f"{step.slug}: no metrics table to compute statistics from")
        newest = tables[-1]
        reference = step.config.experiment.reference_branch or step.config.experiment.branch_slugs[0]
        preview = step.warehouse.query(
            f"SELECT metric, statistic, branch, comparison_to_branch, point, lower, upper "
            f"FROM {step.warehouse.table_ref(step.warehouse.dataset, newest.table)} "
            "WHERE comparison = 'relative_uplift' AND segment = 'all' AND analysis_basis = 'enrollments' "
            f"AND comparison_to_branch = {quote_string(reference)} ORDER BY metric, statistic, branch"
        ).to_dict("records")
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(t.rows for t in tables),
                "tables": dg.MetadataValue.md(
                    md_table(["period", "window", "table", "rows", "failures", "SQL (s)", "statistics (s)"],
                             [(t.period, t.window_index, t.table, t.rows, len(t.failures), round(t.sql_seconds, 2),
                               round(t.statistics_seconds, 2)) for t in tables])
                ),
                "seconds_in_sql": dg.MetadataValue.float(round(sum(t.sql_seconds for t in tables), 3)),
                "seconds_in_statistics": dg.MetadataValue.float(round(sum(t.statistics_seconds for t in tables), 3)),
                "clients_per_branch": dg.MetadataValue.json({t.table: t.clients_per_branch for t in tables}),
                f"relative_uplift ({newest.table})": dg.MetadataValue.md(_uplift_preview(preview)),
                "failures": dg.MetadataValue.json(sorted({f for t in tables for f in t.failures})),
                **_run_metadata(step),
            },
            check_results=_statistics_checks(context, step),
        )
