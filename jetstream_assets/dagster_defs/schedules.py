"""Schedules: the Experimenter snapshot every 10 minutes, the daily analysis at 04:00 UTC, daily monitoring."""


import datetime as dt

import dagster as dg

from jetstream_assets.analysis.selection import wants_daily_run
from jetstream_assets.dagster_defs.jobs import experiment_analysis_job, experimenter_snapshot_job, monitoring_job
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.resources import MetricHubResource, WarehouseResource
from jetstream_assets.dagster_defs.run_tags import daily_tags
from jetstream_assets.experimenter.models import Experiment
from jetstream_assets.experimenter.store import read_snapshot
from jetstream_assets.metric_hub.errors import ConfigError
from jetstream_assets.metric_hub.loader import MetricHub

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


def _wants_daily_run(experiment: Experiment, hub: MetricHub, date: dt.date) -> bool:
    """Experimenter's dates, else the experiment's metric-hub dates: a config that extends the end date
    keeps the experiment analysed daily, up to its overall window, as Jetstream's analysis honours it.
    A config that cannot be resolved keeps Experimenter's dates (the analysis reports the error)."""
    if wants_daily_run(experiment, date):
        return True
    if not hub.has_experiment_config(experiment.slug):
        return False
    try:
        configured = hub.resolve(experiment).experiment
    except ConfigError:
        return False
    return wants_daily_run(configured, date)


@dg.schedule(
    name="daily_analysis",
    job=experiment_analysis_job,
    cron_schedule="0 4 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Yesterday's analysis of every live experiment partition (end date as metric-hub may "
    "override it), one keyed run per experiment (a re-tick does not launch twice).",
)
def daily_analysis_schedule(
    context: dg.ScheduleEvaluationContext, warehouse: WarehouseResource, metric_hub: MetricHubResource
):
    date = context.scheduled_execution_time.date() - dt.timedelta(days=1)
    experiments = read_snapshot(warehouse.get_warehouse(), today=context.scheduled_execution_time.date())
    hub = metric_hub.get_metric_hub()
    keys = context.instance.get_dynamic_partitions(experiments_partitions.name)
    requests = [
        dg.RunRequest(run_key=f"daily-{date.isoformat()}-{slug}", partition_key=slug, tags=daily_tags(date))
        for slug in sorted(keys)
        if slug in experiments and _wants_daily_run(experiments[slug], hub, date)
    ]
    if not requests:
        return dg.SkipReason(f"no live experiment partitions to analyse for {date}")
    return requests
