"""Sensors: experiment discovery (snapshot table -> partitions -> first runs)."""


import datetime as dt
import json

import dagster as dg

from jetstream_assets.analysis.selection import wants_partition
from jetstream_assets.dagster_defs.jobs import experiment_analysis_job
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.resources import WarehouseResource
from jetstream_assets.dagster_defs.run_tags import rerun_tags
from jetstream_assets.experimenter.store import read_snapshot

# enabling the sensor on a large backlog must not flood the run queue: the rest waits in the cursor
MAX_RUNS_PER_TICK = 10


def _pending(cursor: str | None) -> list[str]:
    if not cursor:
        return []
    try:
        return list(json.loads(cursor).get("pending", []))
    except (ValueError, AttributeError):
        return []


@dg.sensor(
    job=experiment_analysis_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reads monitoring.experimenter_experiments_v1 (not the API), adds a partition for each newly "
    f"analysable experiment and requests its first full analysis, at most {MAX_RUNS_PER_TICK} per tick.",
)
def experiment_discovery_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    today = dt.datetime.now(dt.timezone.utc).date()
    date = today - dt.timedelta(days=1)
    experiments = read_snapshot(warehouse.get_warehouse(), today=today)
    if not experiments:
        return dg.SkipReason("monitoring.experimenter_experiments_v1 is empty: materialize it first")
    known = set(context.instance.get_dynamic_partitions(experiments_partitions.name))
    new = sorted(slug for slug, e in experiments.items() if wants_partition(e, date) and slug not in known)
    queue = list(dict.fromkeys(_pending(context.cursor) + new))
    batch, rest = queue[:MAX_RUNS_PER_TICK], queue[MAX_RUNS_PER_TICK:]
    if not new and not batch:
        return dg.SkipReason(f"no new analysable experiments among {len(experiments)}")
    return dg.SensorResult(
        dynamic_partitions_requests=[experiments_partitions.build_add_request(new)] if new else [],
        run_requests=[
            dg.RunRequest(run_key=f"first-analysis-{slug}", partition_key=slug, tags=rerun_tags(date))
            for slug in batch
        ],
        cursor=json.dumps({"pending": rest}),
    )
