"""Fault tolerance of the automation: an Experimenter outage, sensor ticks that die half-way, a step
that crashes, a run that fails before the analysis code, and reruns on changed configuration.

Every scenario checks what a user sees (a `logs` row, a SkipReason, a failed run that names its
cause), that nothing published earlier is lost, and that the next tick or run recovers. Sensor ticks
go through Dagster's own sensor daemon (`sensor_daemon`), so what a failed tick leaves behind is what
Dagster commits, not what a test double chooses to."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from jetstream_assets.dagster_defs import analysis_assets
from jetstream_assets.dagster_defs.jobs import experiment_analysis_job, experimenter_snapshot_job
from jetstream_assets.dagster_defs.monitoring_assets import experimenter_experiments_v1
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.resources import ExperimenterResource, MetricHubResource, WarehouseResource
from jetstream_assets.dagster_defs.run_tags import ANALYSIS_DATE_TAG, RERUN_TAG, daily_tags
from jetstream_assets.dagster_defs.schedules import daily_analysis_schedule
from jetstream_assets.dagster_defs.sensors import (
    MAX_RERUNS_PER_TICK,
    MAX_RUNS_PER_TICK,
    ConfigChangeState,
    PendingRerun,
    analysis_run_failure_sensor,
    config_change_sensor,
    experiment_discovery_sensor,
)
from jetstream_assets.experimenter.parse import parse_experiments
from jetstream_assets.experimenter.store import read_snapshot, write_snapshot
from jetstream_assets.sample.designs import BranchDesign, ExperimentDesign
from jetstream_assets.sample.experimenter_payload import experimenter_payload
from jetstream_assets.settings import bundled_metric_hub
from jetstream_assets_tests import sensor_fault_definitions as faults
from jetstream_assets_tests.fixtures_sample import ANALYSIS_ASSETS
from jetstream_assets_tests.sensor_daemon import SensorDaemon, Tick, TickStatus, queued_instance, sensor_daemon
from jetstream_assets_tests.small_sample import (
    BRAND_NEW,
    SEARCH_SHORTCUTS,
    TAB_GROUPS,
    TAB_GROUPS_WEEK_READY,
    analysis_resources,
    like_tab_groups,
    log_rows,
    relations,
    small_demo_designs,
    snapshot_rows,
    table_contents,
    write_small_sample,
)

TODAY = dt.datetime.now(dt.timezone.utc).date()
YESTERDAY = TODAY - dt.timedelta(days=1)


def design(slug: str, start: dt.date, *, end: dt.date | None = None) -> ExperimentDesign:
    """An Experimenter record without telemetry (the sensors read only the snapshot)."""
    return ExperimentDesign(
        slug=slug, start_date=start, enrollment_end_date=start + dt.timedelta(days=6), end_date=end,
        proposed_enrollment=7, branches=(BranchDesign("control"), BranchDesign("treatment")), n_clients=0,
        reference_branch="control",
    )


def live(slug: str) -> ExperimentDesign:
    return design(slug, TODAY - dt.timedelta(days=30))


def store_snapshot(home: Path, designs: list[ExperimentDesign]) -> WarehouseResource:
    """Replace monitoring.experimenter_experiments_v1 of `home` with `designs` (as the snapshot job does)."""
    warehouse = WarehouseResource(home=str(home))
    parsed = parse_experiments(experimenter_payload(designs), today=TODAY)
    assert not parsed.problems
    write_snapshot(warehouse.get_warehouse(), parsed.experiments)
    return warehouse


@pytest.fixture(name="queued_instance")
def queued_instance_fixture() -> Iterator[dg.DagsterInstance]:
    with queued_instance() as instance:
        yield instance


def run_keys(runs: list[dg.DagsterRun]) -> list[str]:
    return [r.tags["dagster/run_key"] for r in runs]


def partitions(instance: dg.DagsterInstance) -> set[str]:
    return set(instance.get_dynamic_partitions(experiments_partitions.name))


# --- Experimenter outage during a schedule tick --------------------------------------------------

SCHEDULED = dt.datetime(2026, 10, 12, 4, 0, tzinfo=dt.timezone.utc)
ANALYSED_ON_SCHEDULE = sorted([SEARCH_SHORTCUTS, TAB_GROUPS, BRAND_NEW])


def test_experimenter_outage_keeps_the_snapshot_and_the_daily_schedule(
    experimenter_server, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    home = tmp_path / "home"
    resources = {
        "warehouse": WarehouseResource(home=str(home)),
        "experimenter": ExperimenterResource(url=experimenter_server.url),
        "metric_hub": MetricHubResource(path=bundled_metric_hub()),
    }
    snapshot_job = dg.Definitions(
        assets=[experimenter_experiments_v1], jobs=[experimenter_snapshot_job], resources=resources
    ).resolve_job_def(experimenter_snapshot_job.name)

    def schedule_tick():
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=SCHEDULED, resources=resources)
        return daily_analysis_schedule(context)

    experimenter_server.respond(experimenter_payload(small_demo_designs()))
    assert snapshot_job.execute_in_process(instance=instance, raise_on_error=False).success
    instance.add_dynamic_partitions(experiments_partitions.name, ANALYSED_ON_SCHEDULE)
    before_rows = snapshot_rows(home)
    before_requests = [(r.run_key, r.partition_key) for r in schedule_tick()]
    assert sorted(p for _, p in before_requests) == ANALYSED_ON_SCHEDULE

    experimenter_server.respond_raw(503, "<html>Service Unavailable</html>", content_type="text/html")
    outage = snapshot_job.execute_in_process(instance=instance, raise_on_error=False)

    assert not outage.success
    [failure] = outage.get_step_failure_events()
    assert "503" in failure.step_failure_data.error.to_string()
    assert snapshot_rows(home) == before_rows  # the last good snapshot is kept whole
    # the daily analysis goes ahead from it, with the same run keys as before the outage
    assert [(r.run_key, r.partition_key) for r in schedule_tick()] == before_requests

    late_starter = design("starts-after-the-outage", dt.date(2026, 10, 5))
    experimenter_server.respond(experimenter_payload([*small_demo_designs(), late_starter]))
    assert snapshot_job.execute_in_process(instance=instance, raise_on_error=False).success
    assert late_starter.slug in read_snapshot(resources["warehouse"].get_warehouse(), today=TODAY)
    assert len(snapshot_rows(home)) == len(before_rows) + 1


# --- sensor ticks cut off half-way ---------------------------------------------------------------

DISCOVERED = [f"live-experiment-{i:02d}" for i in range(1, MAX_RUNS_PER_TICK + 3)]


def test_discovery_tick_that_dies_half_way_commits_nothing_and_the_next_tick_is_a_clean_one(
    tmp_path: Path, queued_instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_snapshot(tmp_path, [live(slug) for slug in DISCOVERED])
    monkeypatch.setenv(faults.HOME, str(tmp_path))
    monkeypatch.setenv(faults.METRIC_HUB, bundled_metric_hub())
    with sensor_daemon(queued_instance, "discovery", experiment_discovery_sensor.name) as daemon:
        monkeypatch.setenv(faults.WAREHOUSE_CALL, "2")  # call 1 finds the snapshot table, reading it is cut off
        dying = daemon.tick()
        assert dying.status == TickStatus.FAILURE and "SensorDeadlineExceeded: deadline exceeded during" in dying.error
        assert partitions(queued_instance) == set() and daemon.cursor is None and not daemon.all_runs()

        monkeypatch.delenv(faults.WAREHOUSE_CALL)
        first = daemon.tick()
        assert first.status == TickStatus.SUCCESS
        assert first.partitions == DISCOVERED[:MAX_RUNS_PER_TICK]
        assert partitions(queued_instance) == set(DISCOVERED)  # every partition at once, the runs in batches
        assert json.loads(daemon.cursor) == {"pending": DISCOVERED[MAX_RUNS_PER_TICK:]}

        cursor = daemon.cursor
        monkeypatch.setenv(faults.WAREHOUSE_CALL, "2")
        assert daemon.tick().status == TickStatus.FAILURE
        assert daemon.cursor == cursor and len(daemon.all_runs()) == MAX_RUNS_PER_TICK

        monkeypatch.delenv(faults.WAREHOUSE_CALL)
        assert daemon.tick().partitions == DISCOVERED[MAX_RUNS_PER_TICK:]
        assert daemon.tick().status == TickStatus.SKIPPED
        runs = daemon.all_runs()
    assert sorted(r.tags["dagster/partition"] for r in runs) == DISCOVERED  # each first analysis launched once
    assert sorted(run_keys(runs)) == [f"first-analysis-{slug}" for slug in DISCOVERED]
    assert {r.status for r in runs} == {dg.DagsterRunStatus.QUEUED}


@dataclass
class ConfigHub:
    """A metric-hub copy in tmp and a snapshot of `designs`, every one of them a partition."""

    home: Path
    hub: Path
    designs: list[ExperimentDesign]

    def point_at(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The fault code location's resources read this home and metric-hub folder."""
        monkeypatch.setenv(faults.HOME, str(self.home))
        monkeypatch.setenv(faults.METRIC_HUB, str(self.hub))

    def config(self, slug: str) -> Path:
        return self.hub / "jetstream" / f"{slug}.toml"

    def definitions(self) -> Path:
        return self.hub / "definitions" / "firefox_desktop.toml"


def config_hub(tmp_path: Path, instance: dg.DagsterInstance, designs: list[ExperimentDesign]) -> ConfigHub:
    hub = tmp_path / "metric-hub"
    shutil.copytree(bundled_metric_hub(), hub)
    store_snapshot(tmp_path / "home", designs)
    instance.add_dynamic_partitions(experiments_partitions.name, [d.slug for d in designs])
    return ConfigHub(tmp_path / "home", hub, designs)


def test_config_change_tick_that_dies_half_way_commits_nothing_and_reruns_each_once(
    tmp_path: Path, queued_instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    slugs = [f"tracked-experiment-{i}" for i in range(MAX_RERUNS_PER_TICK + 3)]
    hub = config_hub(tmp_path, queued_instance, [live(s) for s in slugs])
    hub.point_at(monkeypatch)
    with sensor_daemon(queued_instance, "config_change", config_change_sensor.name) as daemon:
        assert not daemon.tick().runs  # first sight: recorded
        recorded = daemon.cursor
        assert set(ConfigChangeState.parse(recorded).seen) == set(slugs)
        hub.definitions().write_text(hub.definitions().read_text() + "\n# shared definitions edited\n")

        monkeypatch.setenv(faults.FINGERPRINT_CALL, "4")
        dying = daemon.tick()
        assert dying.status == TickStatus.FAILURE and "deadline exceeded while reading" in dying.error
        assert daemon.cursor == recorded and not daemon.all_runs()

        monkeypatch.delenv(faults.FINGERPRINT_CALL)
        first = daemon.tick()
        assert first.status == TickStatus.SUCCESS and len(first.runs) == MAX_RERUNS_PER_TICK
        carried = daemon.cursor
        assert len(ConfigChangeState.parse(carried).pending) == len(slugs) - MAX_RERUNS_PER_TICK

        monkeypatch.setenv(faults.FINGERPRINT_CALL, "4")
        assert daemon.tick().status == TickStatus.FAILURE
        assert daemon.cursor == carried and len(daemon.all_runs()) == MAX_RERUNS_PER_TICK

        monkeypatch.delenv(faults.FINGERPRINT_CALL)
        assert len(daemon.tick().runs) == len(slugs) - MAX_RERUNS_PER_TICK
        assert daemon.tick().status == TickStatus.SKIPPED
        runs = daemon.all_runs()
    assert sorted(r.tags["dagster/partition"] for r in runs) == sorted(slugs)  # every experiment rerun exactly once
    assert len(set(run_keys(runs))) == len(slugs)


# --- a crashing step, and a run that fails before the analysis code ------------------------------

CRASHING = "crashing-experiment"
FIRST_WEEK, SECOND_WEEK = TAB_GROUPS_WEEK_READY


@dataclass
class CrashSite:
    """One experiment's telemetry, snapshot and partition, and the real `experiment_analysis` job."""

    home: Path
    instance: dg.DagsterInstance
    job: dg.JobDefinition

    def run(self, date: dt.date) -> dg.ExecuteInProcessResult:
        return self.job.execute_in_process(
            instance=self.instance, partition_key=CRASHING, tags=daily_tags(date), raise_on_error=False
        )

    def failure_sensor(self, run: dg.ExecuteInProcessResult):
        context = dg.build_run_status_sensor_context(
            sensor_name=analysis_run_failure_sensor.name,
            dagster_instance=self.instance,
            dagster_run=run.dagster_run,
            dagster_event=run.get_run_failure_event(),
            resources={"warehouse": WarehouseResource(home=str(self.home))},
        ).for_run_failure()
        return analysis_run_failure_sensor(context)

    def errors(self):
        rows = log_rows(self.home, CRASHING)
        return rows[rows["log_level"] == "ERROR"].reset_index(drop=True)

    def published(self) -> dict[str, Any]:
        """The statistics an earlier run published: its table and its statistics files (the metadata
        and errors files are re-published by every attempt, by design)."""
        statistics = self.home / "bucket" / "statistics"
        files = {p.name: p.read_bytes() for p in sorted(statistics.glob("*.json"))}
        table = table_contents(self.home, "statistics_crashing_experiment_week_1").to_json(orient="records")
        return {"statistics_crashing_experiment_week_1": table, **files}


@pytest.fixture
def crash_site(tmp_path: Path, instance: dg.DagsterInstance) -> CrashSite:
    sample = write_small_sample(tmp_path / "home", [like_tab_groups(CRASHING, clients=200)])
    resources = analysis_resources(sample.home)
    store_snapshot(sample.home, list(sample.designs))
    job = dg.Definitions(
        assets=ANALYSIS_ASSETS, jobs=[experiment_analysis_job], resources=resources
    ).resolve_job_def(experiment_analysis_job.name)
    instance.add_dynamic_partitions(experiments_partitions.name, [CRASHING])
    return CrashSite(sample.home, instance, job)


def out_of_memory(*args: Any, **kwargs: Any):
    raise MemoryError("statistics worker ran out of memory")


def test_crashing_step_logs_its_error_keeps_earlier_results_and_recovers(
    crash_site: CrashSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert crash_site.run(FIRST_WEEK).success
    before = crash_site.published()
    # No small real input makes the statistics code exhaust memory; patching the statistics step's
    # entry point stands in for a worker that dies inside it (Jetstream's "resource_limit" failures).
    monkeypatch.setattr(analysis_assets, "compute_statistics", out_of_memory)

    crashed = crash_site.run(SECOND_WEEK)

    assert not crashed.success
    [error] = crash_site.errors().to_dict("records")  # flushed although the step raised
    assert error["exception_type"] == "MemoryError"
    assert "mozanalysis/statistics failed" in error["message"]
    assert error["func_name"] == "out_of_memory"
    assert crash_site.published() == before  # table and files of the first week untouched
    assert "statistics_crashing_experiment_week_2" not in relations(crash_site.home)

    skip = crash_site.failure_sensor(crashed)
    assert isinstance(skip, dg.SkipReason) and "already logged" in skip.skip_message
    assert len(crash_site.errors()) == 1  # the failure sensor did not add a second row

    monkeypatch.undo()
    assert crash_site.run(SECOND_WEEK).success
    assert "statistics_crashing_experiment_week_2" in relations(crash_site.home)


def test_run_failing_before_the_analysis_gets_exactly_one_row_from_the_failure_sensor(crash_site: CrashSite) -> None:
    warehouse_file = crash_site.home / "warehouse.duckdb"
    intact = warehouse_file.with_name("warehouse.duckdb.intact")
    os.replace(warehouse_file, intact)
    warehouse_file.write_bytes(b"not a database" * 100)  # e.g. a mount that served garbage for a moment
    try:
        failed = crash_site.run(FIRST_WEEK)
    finally:
        os.replace(intact, warehouse_file)
    assert not failed.success
    assert crash_site.errors().empty  # the analysis could not write anything

    assert crash_site.failure_sensor(failed) is None
    [row] = crash_site.errors().to_dict("records")
    assert failed.run_id in row["message"] and "mozanalysis__enrollments" in row["message"]
    assert row["exception_type"] == "WarehouseError"
    assert "cannot open DuckDB warehouse" in row["message"]
    assert (row["filename"], row["func_name"]) == ("duckdb_connections.py", "_connect")
    assert row["source"] == "jetstream" and row["exception"]

    # a repeated evaluation of the same failure (e.g. a retried tick) finds its own row
    assert isinstance(crash_site.failure_sensor(failed), dg.SkipReason)
    assert len(crash_site.errors()) == 1
    assert crash_site.run(FIRST_WEEK).success  # the next run recovers
    assert "statistics_crashing_experiment_week_1" in relations(crash_site.home)


# --- config-change sensor ------------------------------------------------------------------------

OWN_A, OWN_B, DATES_C = "own-config-a", "own-config-b", "dates-only-c"
ENDED_LONG_AGO = "ended-long-ago"
OWN_CONFIG = """\
[experiment]
enrollment_period = 7

[metrics]
weekly = ["active_hours"]
"""


@pytest.fixture
def tracked(
    tmp_path: Path, queued_instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ConfigHub, SensorDaemon]]:
    """Four experiment partitions whose first sight is already recorded in the sensor's stored cursor."""
    designs = [
        live(OWN_A), live(OWN_B), live(DATES_C),
        design(ENDED_LONG_AGO, TODAY - dt.timedelta(days=300), end=TODAY - dt.timedelta(days=200)),
    ]
    hub = config_hub(tmp_path, queued_instance, designs)
    hub.config(OWN_A).write_text(OWN_CONFIG)
    hub.config(OWN_B).write_text(OWN_CONFIG)
    hub.point_at(monkeypatch)
    with sensor_daemon(queued_instance, "config_change", config_change_sensor.name) as daemon:
        first = daemon.tick()
        assert first.status != TickStatus.FAILURE and not first.runs  # first sight only records
        # an experiment that ended long ago is no longer analysed, so not tracked either
        assert set(ConfigChangeState.parse(daemon.cursor).seen) == {OWN_A, OWN_B, DATES_C}
        yield hub, daemon


def reruns(tick: Tick) -> list[str]:
    assert tick.status == TickStatus.SUCCESS, tick
    for run in tick.runs:
        slug = run.tags["dagster/partition"]
        assert {ANALYSIS_DATE_TAG: YESTERDAY.isoformat(), RERUN_TAG: "true"}.items() <= run.tags.items()
        assert run.tags["dagster/run_key"].startswith(f"config-changed-{slug}-")
    return tick.partitions


def nothing_new(tick: Tick) -> bool:
    return tick.status == TickStatus.SKIPPED and not tick.runs


def test_a_changed_config_or_date_reruns_only_that_experiment(tracked) -> None:
    hub, daemon = tracked
    assert nothing_new(daemon.tick())  # same state: nothing

    hub.config(OWN_A).write_text(OWN_CONFIG.replace("enrollment_period = 7", "enrollment_period = 8"))
    assert reruns(daemon.tick()) == [OWN_A]
    assert nothing_new(daemon.tick())  # a re-tick launches nothing twice

    extended = [
        design(d.slug, d.start_date, end=TODAY + dt.timedelta(days=14)) if d.slug == DATES_C else d
        for d in hub.designs
    ]
    store_snapshot(hub.home, extended)  # Experimenter moved one end date
    assert reruns(daemon.tick()) == [DATES_C]

    hub.config(OWN_B).write_text(OWN_CONFIG + "\n[metrics.active_hours.statistics.deciles]\n")
    assert reruns(daemon.tick()) == [OWN_B]  # its neighbour's file is not theirs

    hub.config(OWN_A).write_text("[metrics\nweekly = [")  # no longer parses: the rerun will log why
    assert reruns(daemon.tick()) == [OWN_A]
    assert nothing_new(daemon.tick())


def test_shared_definitions_rerun_every_recent_experiment_and_a_revert_reruns_again(tracked) -> None:
    hub, daemon = tracked
    original = hub.definitions().read_text()
    hub.definitions().write_text(original + "\n# edited\n")
    edited = daemon.tick()
    assert reruns(edited) == sorted([OWN_A, OWN_B, DATES_C])  # not the one that ended long ago

    hub.definitions().write_text(original)
    reverted = daemon.tick()
    # back to the first fingerprint, yet new run keys: Dagster drops a request whose run key it has seen
    assert reruns(reverted) == sorted([OWN_A, OWN_B, DATES_C])
    assert not set(run_keys(edited.runs)) & set(run_keys(reverted.runs))


def test_missing_metric_hub_folder_skips_without_forgetting(tracked) -> None:
    hub, daemon = tracked
    recorded = daemon.cursor
    moved = hub.hub.with_name("metric-hub-moved")
    hub.hub.rename(moved)
    skip = daemon.tick()
    assert nothing_new(skip) and "missing" in skip.skip_reason
    assert daemon.cursor == recorded
    moved.rename(hub.hub)
    assert nothing_new(daemon.tick())  # back as it was: no rerun storm


def test_cursor_of_thousands_of_experiments_stays_compact() -> None:
    state = ConfigChangeState(
        seen={f"experiment-with-a-typical-slug-{i:05d}": "0123456789ab" for i in range(5000)},
        pending=tuple(PendingRerun(f"experiment-with-a-typical-slug-{i:05d}", "0123456789ab", 7) for i in range(200)),
        generation=7,
    )
    text = state.dumps()
    assert len(text) < 60 * 5200  # about the slug's length plus 20 bytes per experiment
    assert ConfigChangeState.parse(text) == state
    assert ConfigChangeState.parse("not json") == ConfigChangeState()
