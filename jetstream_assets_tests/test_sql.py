"""The enrollments and metrics queries, run on a real DuckDB warehouse over tiny hand-written telemetry
(contract §4), with exact expected values; the BigQuery -> DuckDB translation and the quoting helpers."""

from __future__ import annotations

import datetime as dt
import json
import logging

import duckdb
import pandas as pd
import pytest

from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.core.windows import AnalysisWindow, ExperimentDates
from jetstream_assets.engines.duckdb_warehouse import DuckDBWarehouse
from jetstream_assets.experimenter.models import Branch, Experiment
from jetstream_assets.metric_hub.models import (
    AnalysisConfig,
    DataSource,
    ExposureSignal,
    Metric,
    Segment,
    SegmentDataSource,
    StatisticSpec,
)
from jetstream_assets.sql.dialect import bigquery_to_duckdb, quote_identifier, quote_string
from jetstream_assets.sql.enrollments import build_enrollments_query
from jetstream_assets.sql.metrics import build_metrics_query

SLUG = "test-exp"
START = dt.date(2024, 1, 1)
E = 3
DATES = ExperimentDates(start_date=START, enrollment_period=E)  # last enrollment day L = 2024-01-04
HOSTILE = "x'; DROP TABLE t; --"

TELEMETRY_DDL = """
CREATE SCHEMA telemetry;
CREATE SCHEMA firefox_desktop;
CREATE TABLE firefox_desktop.events_stream (
  client_id VARCHAR, submission_timestamp TIMESTAMP, sample_id INTEGER,
  event_category VARCHAR, event_name VARCHAR, event_extra JSON);
CREATE TABLE telemetry.clients_daily (
  client_id VARCHAR, submission_date DATE, sample_id INTEGER, active_hours_sum DOUBLE,
  subsession_hours_sum DOUBLE, scalar_parent_browser_engagement_total_uri_count_sum BIGINT,
  search_count_all BIGINT, ad_clicks_count_all BIGINT, experiments MAP(VARCHAR, VARCHAR));
CREATE TABLE t (x INTEGER);
"""

# (client, timestamp, sample_id, category, event name, experiment, branch)
EVENTS = [
    ("c1", "2024-01-01 10:00", 5, "nimbus_events", "enrollment", SLUG, "control"),
    ("c1", "2024-01-02 09:00", 5, "nimbus_events", "enrollment", SLUG, "control"),  # second event, same branch
    ("c1", "2024-01-02 11:00", 5, "nimbus_events", "exposure", SLUG, "control"),
    ("c1", "2024-01-03 11:00", 5, "nimbus_events", "exposure", SLUG, "control"),
    ("c1", "2024-01-03 12:00", 5, "nimbus_events", "exposure", SLUG, "treatment"),  # other branch: ignored
    ("c2", "2024-01-02 08:00", 50, "nimbus_events", "enrollment", SLUG, "treatment"),  # never exposed
    ("c3", "2024-01-01 08:00", 10, "nimbus_events", "exposure", SLUG, "treatment"),  # before enrolling
    ("c3", "2024-01-03 08:00", 10, "nimbus_events", "enrollment", SLUG, "treatment"),
    ("c3", "2024-01-04 08:00", 10, "nimbus_events", "expose", SLUG, "treatment"),
    ("c5", "2024-01-02 23:59", 7, "nimbus_events", "enrollment", SLUG, "control"),  # no telemetry at all
    ("c4", "2024-01-01 08:00", 1, "nimbus_events", "enrollment", "other-exp", "control"),
    ("c6", "2024-01-05 08:00", 1, "nimbus_events", "enrollment", SLUG, "control"),  # after L
    ("c7", "2024-01-01 08:00", 1, "normandy", "enrollment", SLUG, "control"),  # not a Nimbus event
    ("h1", "2024-01-02 08:00", 3, "nimbus_events", "enrollment", HOSTILE, "control"),
]

# (client, date, active_hours_sum, experiments map)
CLIENTS_DAILY = [
    ("c1", "2024-01-01", 5.0, {SLUG: "control"}),
    ("c1", "2024-01-02", 2.0, {SLUG: "control"}),
    ("c1", "2024-01-03", 3.0, {}),  # not the enrollment day: no guard
    ("c1", "2024-01-08", 100.0, {SLUG: "control"}),
    ("c2", "2024-01-02", 1.0, {}),  # enrollment day without the experiment: the day-0 guard drops it
    ("c2", "2024-01-03", 4.0, {SLUG: "treatment"}),
    ("c3", "2024-01-03", 2.0, {SLUG: "treatment"}),
    ("c3", "2024-01-04", 7.0, {SLUG: "treatment"}),
    ("c4", "2024-01-01", 50.0, {"other-exp": "control"}),
    ("h1", "2024-01-02", 9.0, {HOSTILE: "control"}),
]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> DuckDBWarehouse:
    """A DuckDB warehouse holding the hand-written telemetry tables, created with plain DuckDB SQL."""
    path = tmp_path_factory.mktemp("sql") / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute(TELEMETRY_DDL)
        for client, ts, sample_id, category, name, slug, branch in EVENTS:
            extra = json.dumps({"experiment": slug, "branch": branch})
            con.execute("INSERT INTO firefox_desktop.events_stream VALUES (?, ?, ?, ?, ?, ?)",
                        [client, ts, sample_id, category, name, extra])
        for client, date, hours, experiments in CLIENTS_DAILY:
            con.execute("INSERT INTO telemetry.clients_daily VALUES "
                        "(?, ?, 1, ?, NULL, NULL, NULL, NULL, MAP(?::VARCHAR[], ?::VARCHAR[]))",
                        [client, date, hours, list(experiments), list(experiments.values())])
    return DuckDBWarehouse(str(path), "p", "mozanalysis", "monitoring")


def experiment(slug: str = SLUG) -> Experiment:
    return Experiment(slug=slug, branches=(Branch("control"), Branch("treatment")), start_date=START,
                      end_date=None, enrollment_end_date=START + dt.timedelta(days=E - 1),
                      proposed_enrollment=None, reference_branch="control")


CLIENTS_DAILY_SOURCE = DataSource("clients_daily", "`moz-fx-data-shared-prod`.telemetry.clients_daily")
HEAVY_USER = Segment("heavy_user", "LOGICAL_OR(ds.active_hours_sum > 2)",
                     SegmentDataSource("clients_daily", "mozdata.telemetry.clients_daily"))


def metric(name: str = "active_hours", select: str = "COALESCE(SUM(ds.active_hours_sum), 0)",
           source: DataSource = CLIENTS_DAILY_SOURCE) -> Metric:
    return Metric(name, select, source, (StatisticSpec("bootstrap_mean"),))


def analysis_config(slug: str = SLUG, **changes) -> AnalysisConfig:
    return AnalysisConfig(**(dict(experiment=experiment(slug), enrollment_period=E, metrics={}) | changes))


def enrollments(warehouse: DuckDBWarehouse, config: AnalysisConfig, table: str) -> dict[str, dict]:
    sql = build_enrollments_query(config, first_enrollment_date=START, last_enrollment_date=DATES.last_enrollment_date)
    warehouse.create_table_as("mozanalysis", table, sql)
    frame = warehouse.query(f"SELECT * FROM {warehouse.table_ref('mozanalysis', table)} ORDER BY analysis_id")
    return {row["analysis_id"]: row for row in frame.to_dict("records")}


def as_date(value) -> dt.date | None:
    """A DATE column's value as pandas returns it (Timestamp or NaT), as a date."""
    return None if pd.isna(value) else pd.Timestamp(value).date()


@pytest.fixture(scope="module")
def enrollments_table(warehouse) -> str:
    """`mozanalysis.enrollments_test_exp`, with the heavy_user segment."""
    enrollments(warehouse, analysis_config(segments=(HEAVY_USER,)), "enrollments_test_exp")
    return warehouse.table_ref("mozanalysis", "enrollments_test_exp")


# --- enrollments ---------------------------------------------------------------------------------------

def test_enrollments_first_event_counts_and_exposures(warehouse, enrollments_table):
    rows = warehouse.query(f"SELECT * FROM {enrollments_table} ORDER BY analysis_id").to_dict("records")
    got = {r["analysis_id"]: (r["branch"], as_date(r["enrollment_date"]), r["num_enrollment_events"],
                              as_date(r["exposure_date"]), r["num_exposure_events"], r["heavy_user"]) for r in rows}
    assert got == {
        "c1": ("control", dt.date(2024, 1, 1), 2, dt.date(2024, 1, 2), 2, True),
        "c2": ("treatment", dt.date(2024, 1, 2), 1, None, 0, False),
        "c3": ("treatment", dt.date(2024, 1, 3), 1, dt.date(2024, 1, 4), 1, False),  # exposure before enrolling ignored
        "c5": ("control", dt.date(2024, 1, 2), 1, None, 0, False),
    }
    assert warehouse.table_schema("mozanalysis", "enrollments_test_exp") == [
        "analysis_id", "branch", "enrollment_date", "num_enrollment_events", "heavy_user",
        "exposure_date", "num_exposure_events",
    ]


def test_sample_size_keeps_clients_with_smaller_sample_id(warehouse):
    got = enrollments(warehouse, analysis_config(sample_size=10), "enrollments_sampled")
    assert sorted(got) == ["c1", "c5"]  # sample ids 5 and 7; c3 (10) and c2 (50) are left out


# --- metrics -------------------------------------------------------------------------------------------

def run_metrics(warehouse, enrollments_table, window: tuple[int, int], basis: str = "enrollments",
                metrics: list[Metric] | None = None, signal: ExposureSignal | None = None, slug: str = SLUG,
                segments: list[str] | None = None) -> dict[str, dict]:
    sql = build_metrics_query(
        slug=slug, enrollments_table=enrollments_table, metrics=metrics or [metric()],
        window=AnalysisWindow(AnalysisPeriod.DAY, 1, *window), dates=DATES, basis=basis,
        segment_columns=["heavy_user"] if segments is None else segments, exposure_signal=signal,
    )
    frame = warehouse.query(sql)
    return {row["analysis_id"]: row for row in frame.to_dict("records")}


def values(rows: dict[str, dict], column: str = "active_hours") -> dict[str, float]:
    return {client: row[column] for client, row in rows.items()}


def test_windows_are_relative_to_each_clients_enrollment_date(warehouse, enrollments_table):
    # day 0: c2's enrollment-day row lacks the experiment (day-0 guard); c5 has no telemetry but keeps a 0
    assert values(run_metrics(warehouse, enrollments_table, (0, 0))) == {"c1": 5.0, "c2": 0.0, "c3": 2.0, "c5": 0.0}
    assert values(run_metrics(warehouse, enrollments_table, (1, 1))) == {"c1": 2.0, "c2": 4.0, "c3": 7.0, "c5": 0.0}
    # c1's 2024-01-08 row is day 7: outside [0, 6]
    assert values(run_metrics(warehouse, enrollments_table, (0, 6))) == {"c1": 10.0, "c2": 4.0, "c3": 9.0, "c5": 0.0}


def test_metrics_rows_carry_enrollment_segment_and_window_columns(warehouse, enrollments_table):
    rows = run_metrics(warehouse, enrollments_table, (7, 13))
    c1 = rows["c1"]
    assert (c1["branch"], as_date(c1["enrollment_date"]), c1["num_enrollment_events"]) == ("control", dt.date(2024, 1, 1), 2)
    assert (c1["analysis_window_start"], c1["analysis_window_end"], c1["heavy_user"]) == (7, 13, True)
    assert c1["active_hours"] == 100.0
    assert list(rows["c2"])[:5] == ["analysis_id", "branch", "enrollment_date", "num_enrollment_events", "heavy_user"]


def test_aggregate_without_coalesce_is_null_for_inactive_clients(warehouse, enrollments_table):
    rows = run_metrics(warehouse, enrollments_table, (0, 0), metrics=[metric("raw_sum", "SUM(ds.active_hours_sum)")])
    assert rows["c1"]["raw_sum"] == 5.0
    assert "c5" in rows and pd.isna(rows["c5"]["raw_sum"])  # the client is kept, the value is missing


def test_day_zero_guard_follows_experiments_column_type(warehouse, enrollments_table):
    unguarded = DataSource("clients_daily_all", "telemetry.clients_daily", experiments_column_type="none")
    rows = run_metrics(warehouse, enrollments_table, (0, 0), metrics=[metric(source=unguarded)])
    assert values(rows)["c2"] == 1.0  # counted without the guard


def test_exposures_basis_keeps_exposed_clients_and_anchors_on_exposure_date(warehouse, enrollments_table):
    rows = run_metrics(warehouse, enrollments_table, (0, 0), basis="exposures")
    assert values(rows) == {"c1": 2.0, "c3": 7.0}  # days of first exposure: 2024-01-02 and 2024-01-04
    assert values(run_metrics(warehouse, enrollments_table, (0, 6), basis="exposures")) == {"c1": 105.0, "c3": 7.0}


def test_exposure_signal_basis_redefines_exposure(warehouse, enrollments_table):
    signal = ExposureSignal("active_4h", "LOGICAL_OR(ds.active_hours_sum >= 4)",
                            DataSource("clients_daily", "telemetry.clients_daily"))
    day0 = run_metrics(warehouse, enrollments_table, (0, 0), basis="exposures", signal=signal)
    assert values(day0) == {"c1": 5.0}  # only c1 had a 4-hour day by its day 0
    day1 = run_metrics(warehouse, enrollments_table, (1, 1), basis="exposures", signal=signal)
    # windows stay anchored on the enrollment date; exposure_date comes from the signal
    assert values(day1) == {"c1": 2.0, "c2": 4.0, "c3": 7.0}
    exposure = {c: (as_date(r["exposure_date"]), r["num_exposure_events"]) for c, r in day1.items()}
    assert exposure == {"c1": (dt.date(2024, 1, 1), 1), "c2": (dt.date(2024, 1, 3), 1), "c3": (dt.date(2024, 1, 4), 1)}


def test_several_data_sources_and_metric_names_are_quoted(warehouse, enrollments_table):
    days = DataSource("clients_daily_none", "telemetry.clients_daily", experiments_column_type="none")
    rows = run_metrics(warehouse, enrollments_table, (0, 6), metrics=[
        metric(), metric("days of use", "COUNT(ds.submission_date)", days),
    ])
    assert values(rows, "days of use") == {"c1": 3, "c2": 2, "c3": 2, "c5": 0}
    assert values(rows) == {"c1": 10.0, "c2": 4.0, "c3": 9.0, "c5": 0.0}


def test_unknown_basis_is_rejected():
    with pytest.raises(ValueError, match="unknown analysis basis"):
        build_metrics_query(slug=SLUG, enrollments_table="t", metrics=[metric()],
                            window=AnalysisWindow(AnalysisPeriod.DAY, 1, 0, 0), dates=DATES,
                            basis="clients", segment_columns=[])


# --- translation and quoting ---------------------------------------------------------------------------

def test_mozfun_map_get_key_and_catalogs_translate_to_duckdb(warehouse):
    sql = ("SELECT mozfun.map.get_key(experiments, 'test-exp') AS branch "
           "FROM `moz-fx-data-shared-prod.telemetry.clients_daily` "
           "WHERE client_id = 'c2' ORDER BY submission_date")
    translated = bigquery_to_duckdb(sql)
    assert "mozfun" not in translated and "moz-fx-data-shared-prod" not in translated
    assert translated.replace('"', "").count("FROM telemetry.clients_daily") == 1
    assert warehouse.query(sql)["branch"].tolist()[1] == "treatment"
    frame = warehouse.query("SELECT COUNT(*) AS n FROM mozdata.firefox_desktop.events_stream")
    assert int(frame["n"][0]) == len(EVENTS)


def test_quote_helpers_round_trip_hostile_text(warehouse):
    for text in (HOSTILE, "back\\slash", "new\nline", "tick`tick", 'dq"dq'):
        frame = warehouse.query(f"SELECT {quote_string(text)} AS {quote_identifier(text)}")
        assert list(frame.columns) == [text]
        assert frame.iloc[0, 0] == text


def test_hostile_slug_never_breaks_out_of_its_literal(warehouse):
    config = analysis_config(HOSTILE)
    got = enrollments(warehouse, config, "enrollments_hostile")
    assert sorted(got) == ["h1"]  # the slug matched the event's JSON exactly
    table = warehouse.table_ref("mozanalysis", "enrollments_hostile")
    rows = run_metrics(warehouse, table, (0, 0), slug=HOSTILE, segments=[])
    assert values(rows) == {"h1": 9.0}  # the day-0 guard found the hostile key in the experiments map
    assert warehouse.table_exists("main", "t")
    assert warehouse.query("SELECT COUNT(*) AS n FROM t")["n"][0] == 0


def test_metric_failing_only_at_run_time_is_isolated_and_logged(warehouse, enrollments_table, caplog):
    """A cast that fails on real rows passes a dry run (as BigQuery's "Resources exceeded" would): each
    metric is then run alone, the culprit is logged by name, and the others are computed."""
    from jetstream_assets.analysis.metrics import compute_metrics
    from jetstream_assets.analysis.plan import plan_analysis
    from jetstream_assets.core.periods import AnalysisPeriod

    bad = metric("bad_cast", "SUM(CAST(CONCAT('x', ds.client_id) AS INT64))")
    config = analysis_config(
        segments=(HEAVY_USER,),
        metrics={AnalysisPeriod.WEEK: (metric(), bad)},
    )
    plan = plan_analysis(config, DATES.last_enrollment_date + dt.timedelta(days=6), rerun=False)
    log = logging.getLogger("test.isolation")
    with caplog.at_level(logging.ERROR, logger="test.isolation"):
        tables = compute_metrics(warehouse, config, plan, log)
    assert {(t.basis, tuple(t.metrics), tuple(t.failed_metrics)) for t in tables} == {
        ("enrollments", ("active_hours",), ("bad_cast",)),
        ("exposures", ("active_hours",), ("bad_cast",)),
    }
    assert all("bad_cast" in r.getMessage() for r in caplog.records) and len(caplog.records) == 2
    assert not [t for t in warehouse.list_tables("mozanalysis") if t.endswith("__probe")]
