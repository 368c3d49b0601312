"""`monitoring.query_cost_v1`: the day's analysis queries and their cost, with the cost alert as an asset check.

One partition per UTC day, materialized shortly after the day ends; re-running a day replaces that day's rows.
"""

import datetime as dt

import dagster as dg
import pandas as pd

from jetstream_assets.analysis.query_cost import (
    CostlyQuery,
    experiment_totals,
    queries_above,
    top_queries,
)
from jetstream_assets.core.schema import QUERY_COST_SCHEMA
from jetstream_assets.dagster_defs.engine_kinds import warehouse_kinds
from jetstream_assets.dagster_defs.markdown import md_table
from jetstream_assets.dagster_defs.resources import AlertSettingsResource, WarehouseResource
from jetstream_assets.settings import setting

QUERY_COST_TABLE = "query_cost_v1"
QUERY_COST_KEY = dg.AssetKey(["monitoring", QUERY_COST_TABLE])
COST_CHECK_NAME = "no_query_above_cost_alert"

ROLLING_START_DAYS = 30


def query_cost_start(today: dt.date | None = None) -> dt.date:
    """The first daily partition: JETSTREAM_QUERY_COST_START_DATE (e.g. the deployment's first day), else a
    rolling month. A day before the pipeline ran has no query to cost, so a fixed start far in the past
    showed hundreds of "Missing" days that no backfill could fill; BigQuery keeps 180 days of job history,
    so no start can reach further back than that anyway. Rows of days that leave the window stay in the table."""
    configured = setting("JETSTREAM_QUERY_COST_START_DATE")
    if configured:
        try:
            return dt.date.fromisoformat(configured)
        except ValueError:
            raise ValueError(f"JETSTREAM_QUERY_COST_START_DATE={configured!r} is not a YYYY-MM-DD date") from None
    today = today or dt.datetime.now(dt.timezone.utc).date()
    return today - dt.timedelta(days=ROLLING_START_DAYS)


# end_offset=1: today's partition exists too, so `jetstream-assets run` can report the cost of the queries it
# just ran; the schedule rewrites the whole day after midnight (replace_day is idempotent)
query_cost_partitions = dg.DailyPartitionsDefinition(
    start_date=query_cost_start().isoformat(), timezone="UTC", end_offset=1
)

_QUERY_HEADERS = ["experiment", "destination", "cost (USD)", "bytes", "query"]


def _query_rows(queries: list[CostlyQuery]) -> list[tuple]:
    return [(q.experiment_slug, q.destination_table, q.cost_usd, q.total_bytes_processed, q.query) for q in queries]


def _cost_check(costs: pd.DataFrame, threshold_usd: float) -> dg.AssetCheckResult:
    offending = queries_above(costs, threshold_usd)
    metadata: dict[str, object] = {
        "threshold_usd": threshold_usd,
        "offending_queries": len(offending),
        "max_query_cost_usd": float(costs["cost_usd"].max()) if costs["cost_usd"].notna().any() else 0.0,
    }
    if offending:
        metadata |= {
            "experiment_slugs": dg.MetadataValue.json(sorted({q.experiment_slug for q in offending})),
            "destination_tables": dg.MetadataValue.json(sorted({q.destination_table for q in offending})),
            "costliest_query": dg.MetadataValue.text(offending[0].query),
            "offenders": dg.MetadataValue.md(md_table(_QUERY_HEADERS, _query_rows(offending))),
        }
    return dg.AssetCheckResult(
        check_name=COST_CHECK_NAME,
        passed=not offending,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"{len(offending)} quer{'y' if len(offending) == 1 else 'ies'} above ${threshold_usd:g}"
            if offending
            else f"every query at or below ${threshold_usd:g}"
        ),
        metadata=metadata,
    )


@dg.asset(
    key=QUERY_COST_KEY,
    group_name="monitoring",
    kinds=warehouse_kinds(),
    partitions_def=query_cost_partitions,
    check_specs=[
        dg.AssetCheckSpec(
            COST_CHECK_NAME,
            asset=QUERY_COST_KEY,
            description="No single analysis query of the day costs more than JETSTREAM_QUERY_COST_ALERT_USD "
            "(a warning naming the experiments, destination tables and SQL of the offending queries).",
        )
    ],
    description="Cost of every query that wrote to the results dataset on the partition's UTC day, attributed "
    "to its experiment (bigquery-etl's query_cost_v1). On the embedded engine, bytes are estimated as BigQuery "
    "on-demand bills them and cost_usd = bytes / 2^40 * 6.25.",
)
def query_cost_v1(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, alerts: AlertSettingsResource
) -> dg.MaterializeResult:
    day = dt.date.fromisoformat(context.partition_key)
    wh = warehouse.get_warehouse()
    costs = wh.query_costs(day)
    rows = wh.replace_day(
        wh.monitoring_dataset,
        QUERY_COST_TABLE,
        costs.to_dict("records"),
        QUERY_COST_SCHEMA,
        date_column="submission_timestamp",
        day=day,
        description="Cost of the queries that wrote to the results dataset, one row per query",
    )
    totals = experiment_totals(costs)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "total_cost_usd": float(costs["cost_usd"].sum()),
            "total_bytes_processed": int(costs["total_bytes_processed"].sum()),
            "top_queries": dg.MetadataValue.md(md_table(_QUERY_HEADERS, _query_rows(top_queries(costs)))),
            "per_experiment": dg.MetadataValue.md(
                md_table(
                    ["experiment", "queries", "bytes", "cost (USD)"],
                    [(t.experiment_slug, t.queries, t.total_bytes_processed, t.cost_usd) for t in totals],
                )
            ),
        },
        check_results=[_cost_check(costs, alerts.query_cost_threshold_usd)],
    )


query_cost_job = dg.define_asset_job(
    "query_cost_daily",
    selection=dg.AssetSelection.assets(QUERY_COST_KEY),
    description="Compile one UTC day of monitoring.query_cost_v1 and run the query-cost alert.",
)


@dg.schedule(
    name="query_cost_daily_schedule",
    job=query_cost_job,
    cron_schedule="30 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At 00:30 UTC, the complete previous day (a keyed request: a re-tick does not run it twice).",
)
def query_cost_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    day = (context.scheduled_execution_time.date() - dt.timedelta(days=1)).isoformat()
    return dg.RunRequest(run_key=f"query-cost-{day}", partition_key=day)
