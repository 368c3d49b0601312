"""The discovery sensor and the daily analysis schedule, evaluated against a real snapshot table."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pytest

from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.resources import ExperimenterResource, MetricHubResource, WarehouseResource
from jetstream_assets.dagster_defs.run_tags import ANALYSIS_DATE_TAG, RERUN_TAG
from jetstream_assets.dagster_defs.schedules import daily_analysis_schedule
from jetstream_assets.dagster_defs.sensors import MAX_RUNS_PER_TICK, experiment_discovery_sensor
from jetstream_assets.experimenter.parse import parse_experiments
from jetstream_assets.experimenter.store import write_snapshot
from jetstream_assets.sample.designs import BranchDesign, ExperimentDesign
from jetstream_assets.sample.experimenter_payload import experimenter_payload
from jetstream_assets_tests.fixtures_sample import load_snapshot
from jetstream_assets_tests.small_sample import (
    BRAND_NEW,
    ONBOARDING,
    ROLLOUT,
    SEARCH_SHORTCUTS,
    TAB_GROUPS,
    small_demo_designs,
)

TODAY = dt.datetime.now(dt.timezone.utc).date()
YESTERDAY = TODAY - dt.timedelta(days=1)
LIVE = [f"live-experiment-{i:02d}" for i in range(1, MAX_RUNS_PER_TICK + 3)]


def design(slug: str, start: dt.date, *, end: dt.date | None = None, rollout: bool = False) -> ExperimentDesign:
    return ExperimentDesign(
        slug=slug, start_date=start, enrollment_end_date=start + dt.timedelta(days=6), end_date=end,
        proposed_enrollment=7, branches=(BranchDesign("control"), BranchDesign("treatment")), n_clients=0,
        is_rollout=rollout, reference_branch="control",
    )


# relative to the real clock, because the sensor analyses "yesterday"
DISCOVERY_DESIGNS = (
    *(design(slug, TODAY - dt.timedelta(days=30)) for slug in LIVE),
    design("a-rollout", TODAY - dt.timedelta(days=30), rollout=True),
    design("starts-today", TODAY),
    design("ended-long-ago", TODAY - dt.timedelta(days=200), end=TODAY - dt.timedelta(days=150)),
)


def snapshot_resources(home: Path, payload: list[dict]) -> dict:
    """`payload` in monitoring.experimenter_experiments_v1 of `home` (written as the snapshot asset
    writes it; the asset itself is tested in test_assets); the sensor's resources."""
    warehouse = WarehouseResource(home=str(home))
    write_snapshot(warehouse.get_warehouse(), parse_experiments(payload, today=TODAY).experiments)
    return {"warehouse": warehouse}


def partitions(instance: dg.DagsterInstance) -> set[str]:
    return set(instance.get_dynamic_partitions(experiments_partitions.name))


def tick(instance: dg.DagsterInstance, resources: dict, cursor: str | None = None):
    return experiment_discovery_sensor(dg.build_sensor_context(instance=instance, resources=resources, cursor=cursor))


def test_discovery_registers_analysable_experiments_and_caps_first_runs(tmp_path: Path,
                                                                        instance: dg.DagsterInstance) -> None:
    resources = snapshot_resources(tmp_path, experimenter_payload(DISCOVERY_DESIGNS))

    first = tick(instance, resources)
    assert isinstance(first, dg.SensorResult)
    [add] = first.dynamic_partitions_requests
    assert add.partitions_def_name == experiments_partitions.name
    assert sorted(add.partition_keys) == LIVE  # not the rollout, not one starting after yesterday, not one long over
    assert len(first.run_requests) == MAX_RUNS_PER_TICK
    requested = [r.partition_key for r in first.run_requests]
    for request in first.run_requests:
        assert request.run_key == f"first-analysis-{request.partition_key}"
        assert request.tags[ANALYSIS_DATE_TAG] == YESTERDAY.isoformat()
        assert request.tags[RERUN_TAG] == "true"
    assert json.loads(first.cursor)["pending"] == sorted(set(LIVE) - set(requested))

    # the daemon applies the partition request before the next tick
    instance.add_dynamic_partitions(experiments_partitions.name, list(add.partition_keys))
    second = tick(instance, resources, first.cursor)
    assert isinstance(second, dg.SensorResult)
    assert not second.dynamic_partitions_requests
    assert sorted(requested + [r.partition_key for r in second.run_requests]) == LIVE
    assert json.loads(second.cursor)["pending"] == []

    third = tick(instance, resources, second.cursor)
    assert isinstance(third, dg.SkipReason)


def test_discovery_skips_on_an_empty_snapshot(experimenter_server, tmp_path: Path,
                                              instance: dg.DagsterInstance) -> None:
    warehouse = WarehouseResource(home=str(tmp_path))
    experimenter = ExperimenterResource(url=experimenter_server.url)  # serves []
    # an answer with no experiment is refused (test_snapshot_guard): the snapshot stays empty
    assert not load_snapshot(instance, {"warehouse": warehouse, "experimenter": experimenter}).success
    result = tick(instance, {"warehouse": warehouse})
    assert isinstance(result, dg.SkipReason)
    assert "empty" in result.skip_message
    assert partitions(instance) == set()


def test_discovery_skips_without_any_snapshot(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    result = tick(instance, {"warehouse": WarehouseResource(home=str(tmp_path))})
    assert isinstance(result, dg.SkipReason)


SCHEDULED = dt.datetime(2026, 10, 12, 4, 0, tzinfo=dt.timezone.utc)


def evaluate_schedule(instance: dg.DagsterInstance, resources: dict):
    resources = {"metric_hub": MetricHubResource(), **resources}
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=SCHEDULED, resources=resources)
    return daily_analysis_schedule(context)


def test_daily_schedule_requests_yesterday_for_live_partitions_only(tmp_path: Path,
                                                                    instance: dg.DagsterInstance) -> None:
    ended = design("ended-last-week", dt.date(2026, 9, 1), end=dt.date(2026, 10, 1))
    resources = snapshot_resources(tmp_path, experimenter_payload((*small_demo_designs(), ended)))
    # every demo experiment but onboarding has a partition, plus one Experimenter no longer lists
    instance.add_dynamic_partitions(
        experiments_partitions.name,
        [SEARCH_SHORTCUTS, TAB_GROUPS, BRAND_NEW, ROLLOUT, ended.slug, "gone-from-experimenter"],
    )

    requests = evaluate_schedule(instance, resources)

    assert sorted(r.partition_key for r in requests) == sorted([SEARCH_SHORTCUTS, TAB_GROUPS, BRAND_NEW])
    assert ONBOARDING not in {r.partition_key for r in requests}
    for request in requests:
        assert request.tags[ANALYSIS_DATE_TAG] == "2026-10-11"
        assert request.tags[RERUN_TAG] == "false"
        assert request.run_key == f"daily-2026-10-11-{request.partition_key}"


def test_daily_schedule_honours_a_metric_hub_end_date_override(tmp_path: Path,
                                                               instance: dg.DagsterInstance) -> None:
    """Experimenter says it ended on 2026-10-01; its metric-hub config extends it to 2026-10-20, so the
    experiment keeps its daily runs (and reaches its overall window on 2026-10-20)."""
    extended = design("extended-by-config", dt.date(2026, 9, 1), end=dt.date(2026, 10, 1))
    ended = design("ended-for-good", dt.date(2026, 9, 1), end=dt.date(2026, 10, 1))
    resources = snapshot_resources(tmp_path / "home", experimenter_payload((extended, ended)))
    hub = tmp_path / "metric-hub"
    (hub / "jetstream").mkdir(parents=True)
    (hub / "jetstream" / f"{extended.slug}.toml").write_text('[experiment]\nend_date = "2026-10-20"\n')
    (hub / "jetstream" / f"{ended.slug}.toml").write_text('[experiment]\nreference_branch = "treatment"\n')
    instance.add_dynamic_partitions(experiments_partitions.name, [extended.slug, ended.slug])

    requests = evaluate_schedule(instance, {**resources, "metric_hub": MetricHubResource(path=str(hub))})

    assert [r.partition_key for r in requests] == [extended.slug]


def test_daily_schedule_skips_without_partitions(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    resources = snapshot_resources(tmp_path, experimenter_payload(small_demo_designs()))
    result = evaluate_schedule(instance, resources)
    assert isinstance(result, dg.SkipReason)


@pytest.mark.parametrize("hour", [0, 23])
def test_daily_schedule_date_is_the_day_before_whatever_the_hour(hour: int, tmp_path: Path,
                                                                 instance: dg.DagsterInstance) -> None:
    resources = snapshot_resources(tmp_path, experimenter_payload(small_demo_designs()))
    instance.add_dynamic_partitions(experiments_partitions.name, [TAB_GROUPS])
    when = SCHEDULED.replace(hour=hour)
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when,
                                        resources={"metric_hub": MetricHubResource(), **resources})
    [request] = daily_analysis_schedule(context)
    assert request.tags[ANALYSIS_DATE_TAG] == "2026-10-11"
