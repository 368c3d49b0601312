"""Daily runs compute only the windows that became ready on their date (read from the DuckDB query log
and the tables' modification times), and `jetstream-assets rerun` on a fresh home lands on the same
statistics tables as the sequence of daily runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from jetstream_assets.dagster_defs.resources import WarehouseResource
from jetstream_assets.engines.warehouse import Warehouse
from jetstream_assets_tests.fixtures_sample import BackgroundCommand, analyse, cli_env, load_snapshot, new_dagster_home
from jetstream_assets_tests.small_sample import (
    RESULTS_DATASET,
    TAB_GROUPS_PREENROLLMENT_READY,
    TAB_GROUPS_WEEK_READY,
    SmallSample,
    analysis_resources,
    like_tab_groups,
    relations,
    table_contents,
    write_small_sample,
)

SLUG = "incremental-experiment"
TABLE_SLUG = "incremental_experiment"
PRE_READY = TAB_GROUPS_PREENROLLMENT_READY  # 2026-09-29: enrollments and the pre-enrollment week
NOTHING_READY = PRE_READY + dt.timedelta(days=1)
WEEK_READY = TAB_GROUPS_WEEK_READY[0]  # 2026-10-04: the first weekly window
BASES = ("enrollments", "exposures")
# the platform default (weekly active hours) and jetstream/incremental-experiment.toml (its pre-enrollment week)
METRIC_HUB = Path(__file__).parent / "data" / "metric-hub-full"


@dataclass
class DailyStep:
    """What one daily run did: the queries it ran and every result table's modification time after it."""

    date: dt.date
    queries: pd.DataFrame
    modified: dict[str, dt.datetime] = field(default_factory=dict)

    def written(self) -> set[str]:
        """Results tables written by a query of this run (metrics and enrollments are CREATE ... AS)."""
        destinations = self.queries["destination_table"].dropna()
        return {d.split(".", 1)[1] for d in destinations if d.startswith(f"{RESULTS_DATASET}.")}


@dataclass
class Incremental:
    daily: SmallSample
    steps: list[DailyStep]
    rerun_home: Path
    rerun: BackgroundCommand


def modification_times(warehouse: Warehouse) -> dict[str, dt.datetime]:
    return {t: warehouse.table_modified(RESULTS_DATASET, t)
            for t in warehouse.list_tables(RESULTS_DATASET) if TABLE_SLUG in t}


@pytest.fixture(scope="module")
def incremental(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Incremental]:
    root = tmp_path_factory.mktemp("incremental")
    designs = [like_tab_groups(SLUG, clients=300)]
    # the rerun runs in its own process and home while the daily runs go on here
    rerun_sample = write_small_sample(root / "rerun_home", designs)
    rerun = BackgroundCommand(
        ["rerun", "--experiment-slug", SLUG, "--date", WEEK_READY.isoformat()],
        cli_env(rerun_sample.home, new_dagster_home(root / "dagster_home"), str(rerun_sample.experimenter_json),
                METRIC_HUB_PATH=str(METRIC_HUB)),
    )
    try:
        sample = write_small_sample(root / "daily_home", designs)
        resources = analysis_resources(sample.home, metric_hub_path=str(METRIC_HUB))
        warehouse = WarehouseResource(home=str(sample.home)).get_warehouse()
        steps = []
        with dg.instance_for_test() as instance:
            assert load_snapshot(instance, resources).success
            for date in (PRE_READY, NOTHING_READY, WEEK_READY):
                started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
                assert analyse(instance, resources, SLUG, date).success
                step = DailyStep(date, warehouse.query_log(since=started))
                step.modified = modification_times(warehouse)
                steps.append(step)
        yield Incremental(sample, steps, rerun_sample.home, rerun)
    finally:
        rerun.stop()


def metrics_tables(period: str) -> set[str]:
    return {f"{TABLE_SLUG}_{basis}_{period}_1" for basis in BASES}


def test_first_day_builds_enrollments_and_the_preenrollment_week(incremental: Incremental) -> None:
    first = incremental.steps[0]
    assert first.written() == {f"enrollments_{TABLE_SLUG}"} | metrics_tables("preenrollment_week")
    assert f"statistics_{TABLE_SLUG}_preenrollment_week_1" in first.modified
    assert not any("_week_" in t and "preenrollment" not in t for t in first.modified)


def test_a_day_with_nothing_newly_ready_writes_no_table(incremental: Incremental) -> None:
    before, quiet = incremental.steps[0], incremental.steps[1]
    assert quiet.written() == set()
    # not even a read of a metrics table: the statistics step had nothing to compute
    reads = quiet.queries[quiet.queries["query"].str.contains(f"{TABLE_SLUG}_(?:enrollments|exposures)_", regex=True)]
    assert reads.empty, reads["query"].tolist()
    assert quiet.modified == before.modified


def test_the_day_a_week_is_ready_writes_exactly_that_week(incremental: Incremental) -> None:
    quiet, week = incremental.steps[1], incremental.steps[2]
    assert week.written() == metrics_tables("week")  # one metrics query per basis, enrollments reused
    creates = week.queries[week.queries["destination_table"].notna()]
    assert len(creates) == len(BASES)
    changed = {t for t, when in week.modified.items() if quiet.modified.get(t) != when}
    assert changed == metrics_tables("week") | {
        f"statistics_{TABLE_SLUG}_week_1",
        f"statistics_{TABLE_SLUG}_weekly",
        *(f"{TABLE_SLUG}_{basis}_weekly" for basis in BASES),
    }
    for table, when in quiet.modified.items():  # the pre-enrollment week and enrollments are untouched
        assert week.modified[table] == when, table


def test_rerun_on_a_fresh_home_lands_on_the_daily_runs_statistics(incremental: Incremental) -> None:
    done = incremental.rerun.result()
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert ["analysed", SLUG] in [line.split() for line in done.stdout.splitlines()], done.stdout
    daily_tables = {t for t in relations(incremental.daily.home) if t.startswith(f"statistics_{TABLE_SLUG}_")}
    rerun_tables = {t for t in relations(incremental.rerun_home) if t.startswith(f"statistics_{TABLE_SLUG}_")}
    assert daily_tables == rerun_tables == {
        f"statistics_{TABLE_SLUG}_preenrollment_week_1", f"statistics_{TABLE_SLUG}_week_1",
        f"statistics_{TABLE_SLUG}_preenrollment_weekly", f"statistics_{TABLE_SLUG}_weekly",
    }
    for table in sorted(daily_tables):
        daily = table_contents(incremental.daily.home, table)
        assert not daily.empty, table
        pd.testing.assert_frame_equal(table_contents(incremental.rerun_home, table), daily, obj=table)
