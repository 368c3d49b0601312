"""Monitoring tables: the Experimenter snapshot and the analysis logs."""


import datetime as dt

import dagster as dg

from jetstream_assets.analysis.logs import LOGS_TABLE
from jetstream_assets.core.schema import LOGS_SCHEMA
from jetstream_assets.dagster_defs.engine_kinds import warehouse_kinds
from jetstream_assets.dagster_defs.freshness import EXPERIMENTER_SNAPSHOT_FRESHNESS
from jetstream_assets.dagster_defs.markdown import md_table
from jetstream_assets.dagster_defs.resources import ExperimenterResource, WarehouseResource
from jetstream_assets.experimenter.client import ExperimenterError, display_source, fetch_experimenter_payload
from jetstream_assets.experimenter.parse import parse_experiments
from jetstream_assets.experimenter.snapshot_guard import SnapshotRefused, check_snapshot_change
from jetstream_assets.experimenter.store import SNAPSHOT_TABLE, read_snapshot, write_snapshot

MONITORING_GROUP = "monitoring"
SNAPSHOT_KEY = dg.AssetKey(["monitoring", SNAPSHOT_TABLE])
LOGS_KEY = dg.AssetKey(["monitoring", LOGS_TABLE])


@dg.asset(
    key=SNAPSHOT_KEY,
    group_name=MONITORING_GROUP,
    freshness_policy=EXPERIMENTER_SNAPSHOT_FRESHNESS,
    kinds=warehouse_kinds() | {"python"},
    description="Every Experimenter experiment (API v8), flattened as bigquery-etl does; fully replaced on each "
    "load. A failed fetch (or one still running after EXPERIMENTER_FETCH_DEADLINE_SECONDS), or an answer with "
    "no usable experiment or lacking more than JETSTREAM_SNAPSHOT_MAX_LIVE_LOSS of the live ones, fails the step "
    "and leaves the previous contents in place.",
)
def experimenter_experiments_v1(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, experimenter: ExperimenterResource
) -> dg.MaterializeResult:
    source = experimenter.source
    today = dt.datetime.now(dt.timezone.utc).date()
    try:
        payload = fetch_experimenter_payload(source, deadline_seconds=experimenter.deadline_seconds)
    except ExperimenterError as e:
        # nothing is written: the table keeps its last good contents and no partition is touched
        raise dg.Failure(description=str(e), metadata={"source": display_source(source)}) from e
    parsed = parse_experiments(payload, today=today)
    for problem in parsed.problems:
        context.log.warning(f"Experimenter record skipped ({display_source(source)}): {problem}")
    wh = warehouse.get_warehouse()
    try:
        check_snapshot_change(
            read_snapshot(wh, today=today), parsed.experiments,
            records=len(payload), max_live_loss=experimenter.live_loss_limit,
        )
    except SnapshotRefused as e:
        raise dg.Failure(
            description=f"{display_source(source)}: snapshot not replaced: {e}",
            metadata={"source": display_source(source), "records": len(payload),
                      "usable": len(parsed.experiments)},
        ) from None
    rows = write_snapshot(wh, parsed.experiments)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "source": dg.MetadataValue.text(display_source(source)),
            "skipped_records": len(parsed.problems),
            "preview": dg.MetadataValue.md(
                md_table(
                    ["slug", "status", "start", "enrollment end", "end", "branches", "rollout"],
                    [
                        (e.slug, e.status, e.start_date, e.enrollment_end_date, e.end_date,
                         ", ".join(f"{b.slug}:{b.ratio:g}" for b in e.branches), e.is_rollout)
                        for e in parsed.experiments
                    ],
                )
            ),
        }
    )


@dg.asset(
    key=LOGS_KEY,
    group_name=MONITORING_GROUP,
    kinds=warehouse_kinds(),
    description="WARNING and ERROR records raised while analysing experiments (the seed's columns plus "
    "Jetstream's source/metric/statistic/analysis_basis/segment/analysis_period). Analysis steps append to it; "
    "materializing it makes sure it exists and summarises the last day.",
)
def logs(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    wh = warehouse.get_warehouse()
    if not wh.table_exists(wh.monitoring_dataset, LOGS_TABLE):
        wh.load_rows(wh.monitoring_dataset, LOGS_TABLE, [], LOGS_SCHEMA, description="Jetstream analysis logs")
    table = wh.table_ref(wh.monitoring_dataset, LOGS_TABLE)
    total = int(wh.query(f"SELECT COUNT(*) AS n FROM {table}")["n"][0])
    since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(days=1)
    recent = wh.query(
        f"SELECT experiment, log_level, COUNT(*) AS n FROM {table} "
        f"WHERE timestamp >= TIMESTAMP '{since.isoformat(sep=' ')}' GROUP BY experiment, log_level ORDER BY n DESC"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "last_24h": dg.MetadataValue.md(
                md_table(["experiment", "level", "records"], recent.itertuples(index=False, name=None))
            ),
        }
    )
