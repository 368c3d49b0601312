"""Schedules: the Experimenter snapshot every 10 minutes, the daily analysis at 04:00 UTC, daily monitoring."""


import datetime as dt

import dagster as dg

from jetstream_assets.analysis.selection import wants_daily_run
from jetstream_assets.dagster_defs.jobs import experiment_analysis_job, experimenter_snapshot_job, monitoring_job
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.resources import WarehouseResource
from jetstream_assets.dagster_defs.run_tags import daily_tags
from jetstream_assets.experimenter.store import read_snapshot

experimenter_snapshot_schedule = dg.ScheduleDefinition(
    name="experimenter_snapshot_every_10_minutes",
    job=experimenter_snapshot_job,
    cron_schedule="*/10 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

monitoring_schedule = dg.ScheduleDefinition(
    name="monitoring_daily",
    job=monitoring_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


@dg.schedule(
    name="daily_analysis",
    job=experiment_analysis_job,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Yesterday's analysis of every live experiment partition, one keyed run per experiment "
    "(a re-tick does not launch twice).",
)
def daily_analysis_schedule(context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource):
    date = context.scheduled_execution_time.date() - dt.timedelta(days=1)
    experiments = read_snapshot(warehouse.get_warehouse(), today=context.scheduled_execution_time.date())
    keys = context.instance.get_dynamic_partitions(experiments_partitions.name)
    requests = [
        dg.RunRequest(run_key=f"daily-{date.isoformat()}-{slug}", partition_key=slug, tags=daily_tags(date))
        for slug in sorted(keys)
        if slug in experiments and wants_daily_run(experiments[slug], date)
    ]
    if not requests:
        return dg.SkipReason(f"no live experiment partitions to analyse for {date}")
    return requests
