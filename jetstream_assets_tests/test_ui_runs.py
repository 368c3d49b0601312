"""Runs launched from the UI (no analysis-date tag): each partition of a backfill over every partition,
where one experiment is skipped, materializes every asset (what the backfill daemon needs to end
COMPLETED_SUCCESS: test_backfill_daemon runs the daemon itself); what a skip records; a deleted
experiment's partition; and the metadata a Dagster user reads on the materializations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from jetstream_assets.analysis.statistics_tables import StatisticsTable
from jetstream_assets.core.windows import ExperimentDates
from jetstream_assets.dagster_defs.analysis_assets import STATISTICS_KEY, newest_window
from jetstream_assets.dagster_defs.checks import ANALYSIS_CHECKS
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.run_tags import daily_tags
from jetstream_assets_tests.cheap_metric_hub import write_cheap_metric_hub
from jetstream_assets_tests.fixtures_sample import ANALYSIS_ASSETS, load_snapshot
from jetstream_assets_tests.small_sample import analysis_resources, small_demo_designs, write_small_sample

COMPLETE = "search-shortcuts-complete"  # ended 2026-10-12: a date-less rerun stops at its end date
NOT_ENROLLED = "brand-new-experiment"  # enrollment not complete: skipped
DELETED = "deleted-experiment"  # a partition whose experiment left Experimenter
ERRORS_JSON_KEY = dg.AssetKey(["bucket", "errors_json"])
PARTITIONS = [COMPLETE, NOT_ENROLLED]
BACKFILL_TAGS = {"dagster/backfill": "test-backfill"}  # what the daemon adds; no analysis date


@dataclass
class Backfilled:
    home: Path
    instance: dg.DagsterInstance
    resources: dict
    runs: dict[str, dg.ExecuteInProcessResult]


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("backfill")
    sample = write_small_sample(root / "home", [d for d in small_demo_designs() if d.slug in PARTITIONS])
    resources = analysis_resources(sample.home, metric_hub_path=str(write_cheap_metric_hub(root / "metric-hub")))
    with dg.instance_for_test() as instance:
        assert load_snapshot(instance, resources).success
        instance.add_dynamic_partitions(experiments_partitions.name, [*PARTITIONS, DELETED])
        runs = {slug: dg.materialize([*ANALYSIS_ASSETS, *ANALYSIS_CHECKS], partition_key=slug, tags=BACKFILL_TAGS,
                                     resources=resources, instance=instance, raise_on_error=False)
                for slug in [*PARTITIONS, DELETED]}
        yield Backfilled(sample.home, instance, resources, runs)


def test_every_partition_of_a_backfill_with_a_skipped_experiment_materializes_every_asset(backfilled: Backfilled):
    assert all(backfilled.runs[slug].success for slug in PARTITIONS)
    for asset in ANALYSIS_ASSETS:
        for key in asset.keys:
            materialized = backfilled.instance.get_materialized_partitions(key)
            assert set(PARTITIONS) <= materialized, f"{key.to_user_string()} would be a failed partition"


def test_a_skipped_experiment_shows_its_reason_on_every_asset_and_check(backfilled: Backfilled):
    run = backfilled.runs[NOT_ENROLLED]
    materializations = [e.materialization for e in run.get_asset_materialization_events()]
    errors_export = dg.AssetKey(["bucket", "errors_json"])
    skipped = {m.asset_key: m.metadata["skipped"].value for m in materializations if m.asset_key != errors_export}
    assert len(skipped) == len(ANALYSIS_ASSETS) - 1
    assert all("enrollment has not ended" in reason for reason in skipped.values())
    for evaluation in run.get_asset_check_evaluations():
        assert evaluation.passed and evaluation.partition == NOT_ENROLLED
        assert "enrollment has not ended" in evaluation.metadata["skipped"].value


def test_the_errors_export_is_materialized_once_per_run(backfilled: Backfilled):
    for slug in PARTITIONS:
        events = backfilled.runs[slug].get_asset_materialization_events()
        assert [e.materialization.partition for e in events if e.asset_key == ERRORS_JSON_KEY] == [slug]


def test_a_deleted_experiment_fails_naming_its_slug_and_still_publishes_its_errors_file(backfilled: Backfilled):
    run = backfilled.runs[DELETED]
    assert not run.success
    [failure] = [e for e in run.all_events if e.is_step_failure]
    assert "'deleted-experiment' is not in monitoring.experimenter_experiments_v1" in (
        failure.event_specific_data.error.message)
    assert not run.get_asset_materialization_events()  # the errors step never ran: no record of it
    assert (backfilled.home / "bucket" / "errors" / "errors_deleted_experiment.json").exists()


def test_a_dated_run_records_a_skip_as_an_observation_and_stops(backfilled: Backfilled, tmp_path: Path):
    # the CLI and the schedule: the partition keeps its last real materialization
    run = dg.materialize([*ANALYSIS_ASSETS, *ANALYSIS_CHECKS], partition_key=NOT_ENROLLED,
                         tags=daily_tags(dt.date(2026, 10, 12)), resources=backfilled.resources,
                         instance=backfilled.instance)
    assert run.success and not run.get_asset_materialization_events()
    assert not run.get_asset_check_evaluations()
    [observation] = [e.asset_observation_data.asset_observation for e in run.all_events if e.is_asset_observation]
    assert "enrollment has not ended" in observation.metadata["skipped"].value
    assert observation.partition == NOT_ENROLLED


def test_statistics_materialization_names_its_table_schema_and_newest_window(backfilled: Backfilled):
    [statistics] = [e.materialization for e in backfilled.runs[COMPLETE].get_asset_materialization_events()
                    if e.materialization.asset_key == STATISTICS_KEY]
    table = "statistics_search_shortcuts_complete_week_5"  # the last week before the 2026-10-12 end date
    assert statistics.metadata["dagster/table_name"].value == f"mozanalysis.{table}"
    assert "point" in [c.name for c in statistics.metadata["dagster/column_schema"].schema.columns]
    assert f"relative_uplift ({table})" in statistics.metadata


def test_every_table_materialization_has_its_table_name_and_columns(backfilled: Backfilled):
    for event in backfilled.runs[COMPLETE].get_asset_materialization_events():
        m = event.materialization
        if m.asset_key.path[0] == "mozanalysis":
            assert m.metadata["dagster/table_name"].value.startswith("mozanalysis.")
            assert m.metadata["dagster/column_schema"].schema.columns


def test_the_uplift_preview_is_the_window_whose_days_reach_furthest():
    dates = ExperimentDates(dt.date(2026, 9, 1), 7, dt.date(2026, 10, 31), is_complete=True)

    def table(period: str, index: int) -> StatisticsTable:
        return StatisticsTable(period, index, f"{period}_{index}", 1, {})

    assert newest_window(dates, [table("week", 1), table("preenrollment_week", 1)]).table == "week_1"
    assert newest_window(dates, [table("days28", 1), table("week", 4)]).table == "days28_1"
    assert newest_window(dates, [table("overall", 1), table("week", 5), table("days28", 1)]).table == "overall_1"
