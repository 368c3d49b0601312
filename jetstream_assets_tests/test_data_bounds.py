"""Runs are bounded by the data: the last day every table an experiment reads holds caps the windows
analysed. A run without a date (a UI materialization or backfill) analyses up to that day and lands on
what the CLI publishes; a dated run past the data warns, naming the table and the date, and computes
no window the data does not cover. Real DuckDB warehouses and real Dagster runs throughout."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from jetstream_assets.analysis.data_bounds import DataBounds, is_table_path, source_tables
from jetstream_assets.core.periods import AnalysisPeriod as P
from jetstream_assets.engines.bigquery_warehouse import latest_partition_day
from jetstream_assets.engines.duckdb_warehouse import DuckDBWarehouse
from jetstream_assets.engines.warehouse import WarehouseError
from jetstream_assets.metric_hub.models import DataSource, Metric, Segment, SegmentDataSource, StatisticSpec
from jetstream_assets.sample.designs import DEMO_SRM_SLUG
from jetstream_assets_tests.fixtures_sample import ANALYSIS_ASSETS, analyse, load_snapshot
from jetstream_assets_tests.small_sample import (
    DATA_END,
    TAB_GROUPS_WEEK_READY,
    analysis_resources,
    like_tab_groups,
    log_rows,
    relations,
    small_demo_designs,
    table_contents,
    write_small_sample,
)
from jetstream_assets_tests.test_windows import config, metric

SLUG = "bounded-experiment"
TABLE_SLUG = "bounded_experiment"
# tab-groups-live's dates: last enrollment day 2026-09-28, weeks ready on 2026-10-04 and 2026-10-11;
# clients_daily stops on 2026-10-08, in the middle of the second week
CLIENTS_DAILY_END = dt.date(2026, 10, 8)
SECOND_WEEK_READY = TAB_GROUPS_WEEK_READY[1]


# --- which tables, and their latest day ---------------------------------------------------------------

def test_tables_read_are_the_events_and_every_table_data_source() -> None:
    nimbus = DataSource("nimbus_events", "(SELECT client_id, DATE(submission_timestamp) AS submission_date "
                                         "FROM `p.telemetry.events_stream`)")
    unenrolled = Metric("unenrolled", "COUNT(*) > 0", nimbus, (StatisticSpec("binomial"),))
    cfg = config(
        metrics={P.WEEK: (metric("a"), unenrolled), P.OVERALL: (metric("b"),)},
        segments=(Segment("heavy", "TRUE", SegmentDataSource("cd_last_week", "`p.telemetry.clients_daily`")),),
    )
    tables, subqueries = source_tables(cfg)
    assert [(t.table, t.date_column, t.read_by) for t in tables] == [
        ("`moz-fx-data-shared-prod.firefox_desktop.events_stream`", "submission_timestamp", ("enrollments",)),
        ("telemetry.clients_daily", "submission_date", ("clients_daily",)),
        ("p.telemetry.clients_daily", "submission_date", ("cd_last_week",)),
    ]
    assert subqueries == ["nimbus_events"]
    assert is_table_path("moz-fx-data-shared-prod.telemetry.clients_daily")
    assert not is_table_path(nimbus.from_expression)


def test_the_last_complete_day_is_the_earliest_latest_day() -> None:
    bounds = DataBounds({"a": dt.date(2026, 10, 12), "b": dt.date(2026, 10, 8)})
    assert bounds.last_complete_day == dt.date(2026, 10, 8)
    assert bounds.short_of(dt.date(2026, 10, 10)) == {"b": dt.date(2026, 10, 8)}
    assert DataBounds({"a": dt.date(2026, 10, 12), "b": None}).last_complete_day is None


@pytest.mark.parametrize(("partition_id", "day"), [
    ("20261012", dt.date(2026, 10, 12)),
    ("2026101223", dt.date(2026, 10, 12)),  # an hour-partitioned table completes a day at hour 23
    ("2026101207", dt.date(2026, 10, 11)),
    (None, None),
])
def test_bigquery_partition_ids_give_the_last_complete_day(partition_id, day) -> None:
    assert latest_partition_day(partition_id) == day


def test_duckdb_latest_date_reads_dates_and_timestamps_from_the_start(tmp_path: Path) -> None:
    wh = DuckDBWarehouse(str(tmp_path / "w.duckdb"), "p", "mozanalysis", "monitoring")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("CREATE SCHEMA telemetry")
        con.execute("CREATE TABLE telemetry.days AS "
                    "SELECT DATE '2026-10-03' + CAST(i AS INTEGER) AS submission_date FROM range(5) t(i)")
        con.execute("CREATE TABLE telemetry.events AS "
                    "SELECT TIMESTAMP '2026-10-09 23:59:00' AS submission_timestamp")
    since = dt.date(2026, 10, 1)
    assert wh.latest_date("moz-fx-data-shared-prod.telemetry.days", "submission_date",
                          since=since) == dt.date(2026, 10, 7)
    assert wh.latest_date("`telemetry.events`", "submission_timestamp", since=since) == dt.date(2026, 10, 9)
    assert wh.latest_date("telemetry.days", "submission_date", since=dt.date(2026, 10, 8)) is None
    with pytest.raises(WarehouseError):
        wh.latest_date("telemetry.missing", "submission_date", since=since)


# --- runs ---------------------------------------------------------------------------------------------

def run_messages(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    return [e.user_message for e in instance.all_logs(result.run_id) if e.user_message]


def weekly_windows_published(home: Path, table_slug: str) -> list[int]:
    rows = json.loads((home / "bucket" / "statistics" / f"statistics_{table_slug}_weekly.json").read_text())
    return sorted({int(r["window_index"]) for r in rows})


@pytest.fixture
def stops_mid_window(tmp_path: Path, instance: dg.DagsterInstance) -> dict:
    """An experiment whose clients_daily stops in the middle of its second week (events go on)."""
    sample = write_small_sample(tmp_path / "home", [like_tab_groups(SLUG, clients=300)])
    with duckdb.connect(str(sample.warehouse_path)) as con:
        con.execute("DELETE FROM telemetry.clients_daily WHERE submission_date > ?", [CLIENTS_DAILY_END])
    resources = analysis_resources(sample.home)
    assert load_snapshot(instance, resources).success
    instance.add_dynamic_partitions("jetstream_experiments", [SLUG])
    return {"home": sample.home, "resources": resources}


def test_a_run_without_a_date_stops_at_the_last_day_of_data(stops_mid_window, instance) -> None:
    home = stops_mid_window["home"]
    result = dg.materialize(ANALYSIS_ASSETS, partition_key=SLUG, resources=stops_mid_window["resources"],
                            instance=instance, tags={})
    tables = relations(home)
    assert f"statistics_{TABLE_SLUG}_week_1" in tables and f"statistics_{TABLE_SLUG}_preenrollment_week_1" in tables
    assert not any(t.startswith(f"{TABLE_SLUG}_") and t.endswith("_week_2") for t in tables)
    assert f"statistics_{TABLE_SLUG}_week_2" not in tables
    assert weekly_windows_published(home, TABLE_SLUG) == [1]  # nothing of the half-covered week is published
    messages = run_messages(instance, result)
    assert any(f"{SLUG}: no analysis date given: analysing up to the last day of data, {CLIENTS_DAILY_END}" in m
               for m in messages)
    assert any(f"{SLUG}: week windows 2-" in m and f"not ready: the last day of data is {CLIENTS_DAILY_END}" in m
               for m in messages)
    assert log_rows(home, SLUG).query("log_level != 'INFO'").empty  # nothing to warn about: no date was asked


def test_a_daily_run_past_the_data_warns_and_computes_nothing(stops_mid_window, instance) -> None:
    home, resources = stops_mid_window["home"], stops_mid_window["resources"]
    analyse(instance, resources, SLUG, TAB_GROUPS_WEEK_READY[0])  # the first week, covered by the data
    result = analyse(instance, resources, SLUG, SECOND_WEEK_READY)
    assert result.success
    rows = log_rows(home, SLUG)
    warnings = rows[rows["message"].str.contains("is not complete")]
    assert warnings["log_level"].tolist() == ["WARNING"]  # one row for the run, not one per step
    message = warnings["message"].iloc[0]
    assert "moz-fx-data-shared-prod.telemetry.clients_daily (read by clients_daily)" in message
    assert f"has data through {CLIENTS_DAILY_END} only: {SECOND_WEEK_READY} is not complete" in message
    assert f"statistics_{TABLE_SLUG}_week_2" not in relations(home)
    assert weekly_windows_published(home, TABLE_SLUG) == [1]
    assert any("week window 2 not ready" in m for m in run_messages(instance, result))


def test_ui_materialization_without_a_date_publishes_what_the_cli_published(tmp_path: Path) -> None:
    """The demo's SRM experiment (live, so by the wall clock weeks past the data would be due): the CLI's
    rerun on the last day of data and a UI-style run without a date give the same tables and files."""
    designs = [d for d in small_demo_designs(400) if d.slug == DEMO_SRM_SLUG]
    table_slug = DEMO_SRM_SLUG.replace("-", "_")
    homes = {}
    for path, tags in (("cli", "rerun"), ("ui", None)):
        sample = write_small_sample(tmp_path / path, designs)
        resources = analysis_resources(sample.home)
        with dg.instance_for_test() as instance:
            assert load_snapshot(instance, resources).success
            if tags == "rerun":
                analyse(instance, resources, DEMO_SRM_SLUG, DATA_END, rerun=True)  # runner.analyse's tags
            else:
                instance.add_dynamic_partitions("jetstream_experiments", [DEMO_SRM_SLUG])
                dg.materialize(ANALYSIS_ASSETS, partition_key=DEMO_SRM_SLUG, resources=resources, instance=instance)
        homes[path] = sample.home
    statistics = {name: sorted(t for t in relations(home) if t.startswith(f"statistics_{table_slug}"))
                  for name, home in homes.items()}
    assert statistics["cli"] == statistics["ui"] and f"statistics_{table_slug}_week_1" in statistics["cli"]
    for table in statistics["cli"]:
        assert table_contents(homes["cli"], table).equals(table_contents(homes["ui"], table)), table
    files = {name: sorted(p.name for p in (home / "bucket" / "statistics").iterdir()) for name, home in homes.items()}
    assert files["cli"] == files["ui"]
    for name in files["cli"]:
        cli_rows, ui_rows = (json.loads((homes[h] / "bucket" / "statistics" / name).read_text()) for h in ("cli", "ui"))
        assert cli_rows == ui_rows, name
