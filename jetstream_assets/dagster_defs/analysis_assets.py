"""Per-experiment tables: enrollments, metrics and statistics (partitioned by experiment slug).

A step that has nothing to do (the experiment is skipped, or no window is ready on the run's date)
publishes nothing and says why (see skips). Enrollment health and statistics completeness are
partitioned asset checks evaluated after these steps (see checks).
"""

import dagster as dg

from jetstream_assets.analysis.enrollments import ensure_enrollments
from jetstream_assets.analysis.metrics import compute_metrics, existing_metrics_tables
from jetstream_assets.analysis.statistics_tables import StatisticsTable, compute_statistics
from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.core.schema import STATISTICS_SCHEMA
from jetstream_assets.core.windows import ExperimentDates, window
from jetstream_assets.sql.dialect import quote_string
from jetstream_assets.dagster_defs.engine_kinds import warehouse_kinds
from jetstream_assets.dagster_defs.experiment_step import ExperimentStep, experiment_step
from jetstream_assets.dagster_defs.freshness import DAILY_STATISTICS_FRESHNESS
from jetstream_assets.dagster_defs.markdown import md_table
from jetstream_assets.dagster_defs.partitions import WAREHOUSE_POOL, experiments_partitions
from jetstream_assets.dagster_defs.resources import BucketResource, MetricHubResource, WarehouseResource
from jetstream_assets.dagster_defs.errors_export import publish_errors
from jetstream_assets.dagster_defs.skips import ANALYSIS_DATE, skip_event
from jetstream_assets.engines.warehouse import Warehouse

ENROLLMENTS_KEY = dg.AssetKey(["mozanalysis", "enrollments"])
METRICS_KEY = dg.AssetKey(["mozanalysis", "metrics"])
STATISTICS_KEY = dg.AssetKey(["mozanalysis", "statistics"])
ANALYSIS_GROUP = "experiment_analysis"
STATISTICS_COLUMN_SCHEMA = dg.TableSchema(columns=[dg.TableColumn(f.name, f.type) for f in STATISTICS_SCHEMA])


def table_metadata(warehouse: Warehouse, table: str, schema: dg.TableSchema | None = None) -> dict:
    """Dagster's table keys for one warehouse table; its column names are read back when not known."""
    if schema is None:
        schema = dg.TableSchema(columns=[dg.TableColumn(c, "") for c in warehouse.table_schema(warehouse.dataset, table)])
    return {
        "dagster/table_name": dg.MetadataValue.text(f"{warehouse.dataset}.{table}"),
        "dagster/column_schema": dg.MetadataValue.table_schema(schema),
    }


def run_metadata(step: ExperimentStep) -> dict:
    """The analysis date and mode a materialization records (the checks read the date back)."""
    date = step.plan.date if step.plan is not None else step.settings.date
    return {
        ANALYSIS_DATE: dg.MetadataValue.text(date.isoformat()),
        "mode": dg.MetadataValue.text("rerun" if step.settings.rerun else "daily"),
    }


def newest_window(dates: ExperimentDates, tables: list[StatisticsTable]) -> StatisticsTable:
    """The table of the window whose days reach furthest (the longer one on a tie): `week_2` over
    `preenrollment_week_1`, `days28_1` over `week_4`, `overall_1` over every other."""
    def recency(table: StatisticsTable) -> tuple[int, int]:
        w = window(dates, AnalysisPeriod(table.period), table.window_index)
        return w.end, w.days

    return max(tables, key=recency)


@dg.asset(
    key=ENROLLMENTS_KEY,
    partitions_def=experiments_partitions,
    pool=WAREHOUSE_POOL,
    group_name=ANALYSIS_GROUP,
    kinds=warehouse_kinds(),
    output_required=False,
    metadata={"dagster/table_name": dg.MetadataValue.text("mozanalysis.enrollments_<slug>")},
    description="`enrollments_<slug>`: one row per enrolled client and branch, with segment flags and "
    "default Nimbus exposures. Built once, on the first day the `day` period is ready, then reused.",
)
def enrollments(context: dg.AssetExecutionContext, warehouse: WarehouseResource, metric_hub: MetricHubResource,
                bucket: BucketResource):
    with publish_errors(context, warehouse, bucket), experiment_step(context, warehouse, metric_hub) as step:
        if not step.analysable:
            yield skip_event(context, step.skip_reason, run_metadata(step))
            return
        if not step.plan.enrollments_ready:
            yield skip_event(context, f"enrollment is not over on {step.plan.date}", run_metadata(step))
            return
        result = ensure_enrollments(step.warehouse, step.config, step.plan, step.log)
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows,
                **table_metadata(step.warehouse, result.table),
                "created": result.created,
                "clients_per_branch": dg.MetadataValue.md(
                    md_table(["branch", "clients"], sorted(result.clients_per_branch.items()))
                ),
                "unknown_branches": dg.MetadataValue.json(result.unknown_branches),
                **run_metadata(step),
            },
        )


@dg.asset(
    key=METRICS_KEY,
    deps=[ENROLLMENTS_KEY],
    partitions_def=experiments_partitions,
    pool=WAREHOUSE_POOL,
    group_name=ANALYSIS_GROUP,
    kinds=warehouse_kinds(),
    output_required=False,
    metadata={"dagster/table_name": dg.MetadataValue.text("mozanalysis.<slug>_<basis>_<period>_<n>")},
    description="Per-client metrics `<slug>_<basis>_<period>_<n>` for each window ready on the analysis "
    "date, and the views `<slug>_<basis>_<suffix>` over all windows.",
)
def metrics(context: dg.AssetExecutionContext, warehouse: WarehouseResource, metric_hub: MetricHubResource,
            bucket: BucketResource):
    with publish_errors(context, warehouse, bucket), experiment_step(context, warehouse, metric_hub) as step:
        if not step.analysable:
            yield skip_event(context, step.skip_reason, run_metadata(step))
            return
        if step.plan.is_empty():
            yield skip_event(context, f"no analysis window is ready on {step.plan.date}", run_metadata(step))
            return
        tables = compute_metrics(step.warehouse, step.config, step.plan, step.log)
        if not tables:
            raise dg.Failure(f"{step.slug}: every metrics query failed; see monitoring.logs")
        yield dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(t.rows for t in tables),
                # the last table written: the window tables of one period share its columns
                **table_metadata(step.warehouse, tables[-1].table),
                "tables": dg.MetadataValue.md(
                    md_table(
                        ["period", "window", "basis", "table", "clients", "metrics", "failed"],
                        [(t.period, t.window_index, t.basis, t.table, t.rows, len(t.metrics),
                          ", ".join(t.failed_metrics)) for t in tables],
                    )
                ),
                **run_metadata(step),
            }
        )


def _uplift_preview(frame_rows: list[dict]) -> str:
    rows = [
        (r["metric"], r["statistic"], r["branch"], r["comparison_to_branch"], r["point"], r["lower"], r["upper"])
        for r in frame_rows
    ]
    return md_table(["metric", "statistic", "branch", "vs", "relative uplift", "lower", "upper"], rows)


@dg.asset(
    key=STATISTICS_KEY,
    deps=[METRICS_KEY],
    partitions_def=experiments_partitions,
    pool=WAREHOUSE_POOL,
    group_name=ANALYSIS_GROUP,
    kinds=warehouse_kinds() | {"pandas"},
    output_required=False,
    freshness_policy=DAILY_STATISTICS_FRESHNESS,
    metadata={
        "dagster/table_name": dg.MetadataValue.text("mozanalysis.statistics_<slug>_<period>_<n>"),
        "dagster/column_schema": dg.MetadataValue.table_schema(STATISTICS_COLUMN_SCHEMA),
    },
    description="Statistics `statistics_<slug>_<period>_<n>` (schema v4) for every metric, statistic, branch "
    "pair, segment and basis, and the views `statistics_<slug>_<suffix>`.",
)
def statistics(context: dg.AssetExecutionContext, warehouse: WarehouseResource, metric_hub: MetricHubResource,
               bucket: BucketResource):
    with publish_errors(context, warehouse, bucket), experiment_step(context, warehouse, metric_hub) as step:
        if not step.analysable:
            yield skip_event(context, step.skip_reason, run_metadata(step))
            return
        if step.plan.is_empty():
            yield skip_event(context, f"no analysis window is ready on {step.plan.date}", run_metadata(step))
            return
        inputs = existing_metrics_tables(step.warehouse, step.config, step.plan)
        tables = compute_statistics(step.warehouse, step.config, step.plan, inputs, step.log)
        if not tables:
            raise dg.Failure(f"{step.slug}: no metrics table to compute statistics from")
        newest = newest_window(step.plan.dates, tables)
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
                **table_metadata(step.warehouse, newest.table, STATISTICS_COLUMN_SCHEMA),
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
                **run_metadata(step),
            },
        )
