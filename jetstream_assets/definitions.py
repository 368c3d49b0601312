"""The one `Definitions` object of the code location (`dagster dev -w workspace.yaml`)."""

from __future__ import annotations

import dagster as dg

from jetstream_assets.dagster_defs.analysis_assets import enrollments, metrics, statistics
from jetstream_assets.dagster_defs.checks import ANALYSIS_CHECKS
from jetstream_assets.dagster_defs.export_assets import errors_json, metadata_json, statistics_json
from jetstream_assets.dagster_defs.jobs import experiment_analysis_job, experimenter_snapshot_job, monitoring_job
from jetstream_assets.dagster_defs.monitoring_assets import experimenter_experiments_v1, logs
from jetstream_assets.dagster_defs.query_cost import query_cost_job, query_cost_schedule, query_cost_v1
from jetstream_assets.dagster_defs.resources import default_resources
from jetstream_assets.dagster_defs.results_page_asset import results_html
from jetstream_assets.dagster_defs.schedules import (
    daily_analysis_schedule,
    experimenter_snapshot_schedule,
    monitoring_schedule,
)
from jetstream_assets.dagster_defs.sensors import (
    analysis_run_failure_sensor,
    config_change_sensor,
    experiment_discovery_sensor,
)

# who answers for every asset in the UI's catalog and lineage (one team owns the whole code location)
OWNERS = ["team:experimentation-platform"]

defs = dg.Definitions(
    assets=dg.map_asset_specs(lambda spec: spec.replace_attributes(owners=OWNERS), [
        experimenter_experiments_v1,
        logs,
        query_cost_v1,
        enrollments,
        metrics,
        statistics,
        statistics_json,
        metadata_json,
        errors_json,
        results_html,
    ]),
    asset_checks=ANALYSIS_CHECKS,
    jobs=[experiment_analysis_job, experimenter_snapshot_job, monitoring_job, query_cost_job],
    schedules=[experimenter_snapshot_schedule, daily_analysis_schedule, monitoring_schedule, query_cost_schedule],
    sensors=[experiment_discovery_sensor, config_change_sensor, analysis_run_failure_sensor],
    resources=default_resources(),
    # steps of one run share a process, as the CLI's runs do: a process per step (the multiprocess default)
    # re-imports the code location for every step, ~14x slower for a UI partition run; a run's steps are
    # sequential anyway (each reads the table the previous one wrote), and runs still get a process each
    executor=dg.in_process_executor,
)
