"""The embedded engine adapters: DuckDB warehouse, local folder bucket, and the logs table handler with the
errors export it feeds."""

from __future__ import annotations

import datetime as dt
import json
import logging
import multiprocessing
import os
import stat
import subprocess
import sys
import threading
import time
import uuid

import duckdb
import pandas as pd
import pytest
from mozilla_nimbus_schemas.jetstream import AnalysisErrors

from jetstream_assets.analysis.exports import errors_records
from jetstream_assets.analysis.logs import LOGS_TABLE, LogsTableHandler, context, log_row
from jetstream_assets.analysis.runnable import EndedException, EnrollmentNotCompleteException
from jetstream_assets.core.schema import LOGS_SCHEMA, Field, column_names
from jetstream_assets.engines.bucket import BucketError, LocalFolderBucket
from jetstream_assets.core.naming import is_period_result
from jetstream_assets.engines.duckdb_warehouse import DuckDBWarehouse
from jetstream_assets.engines.publication import STAGING_PREFIX
from jetstream_assets.engines.warehouse import QueryLabels, WarehouseError
from jetstream_assets.experimenter.models import Branch, BucketConfig, Experiment
from jetstream_assets.experimenter.snapshot import EXPERIMENTER_EXPERIMENTS_SCHEMA, snapshot_rows

DS = "mozanalysis"


@pytest.fixture
def warehouse(tmp_path) -> DuckDBWarehouse:
    """A fresh DuckDB warehouse file with the `mozanalysis` and `monitoring` schemas."""
    return DuckDBWarehouse(str(tmp_path / "w.duckdb"), "p", DS, "monitoring")


def rows_of(warehouse: DuckDBWarehouse, sql: str) -> list[dict]:
    return warehouse.query(sql).to_dict("records")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


# --- DuckDBWarehouse: tables ---------------------------------------------------------------------------

def test_create_table_as_replaces_and_counts_rows(warehouse):
    assert warehouse.create_table_as(DS, "t", "SELECT 1 AS a UNION ALL SELECT 2") == 2
    assert warehouse.create_table_as(DS, "t", "SELECT 'x' AS b") == 1
    assert rows_of(warehouse, "SELECT * FROM mozanalysis.t") == [{"b": "x"}]


@pytest.mark.parametrize("failing_sql", [
    "SELECT no_such_column FROM mozanalysis.t",  # fails while binding
    "SELECT CAST('not a number' AS INT64) AS a",  # fails while running
    "SELECT (1 AS a",  # cannot even be parsed as BigQuery SQL
])
def test_failed_create_table_as_leaves_the_old_table_intact(warehouse, failing_sql):
    warehouse.create_table_as(DS, "t", "SELECT 1 AS a UNION ALL SELECT 2")
    before = warehouse.table_modified(DS, "t")
    with pytest.raises(WarehouseError, match="creating mozanalysis.t failed"):
        warehouse.create_table_as(DS, "t", failing_sql)
    assert rows_of(warehouse, "SELECT a FROM mozanalysis.t ORDER BY a") == [{"a": 1}, {"a": 2}]
    assert warehouse.table_modified(DS, "t") == before


def test_unparseable_sql_is_a_recorded_warehouse_error(warehouse):
    with pytest.raises(WarehouseError, match="query failed .experiment exp-a"):
        warehouse.query("SELECT (1 AS a", QueryLabels(experiment="exp-a"))
    log = warehouse.query_log()
    assert log.iloc[-1]["query"] == "SELECT (1 AS a"
    assert log.iloc[-1]["error_reason"] == "SqlTranslationError"


def snapshot_experiments() -> list[Experiment]:
    features = [{"featureId": "homepage", "enabled": True, "value": {"layout": "grid", "rows": [1, 2]}}]
    first = Experiment(
        slug="exp-one", branches=(Branch("control", 1), Branch("treatment", 2)),
        start_date=dt.date(2024, 1, 1), end_date=None, enrollment_end_date=dt.date(2024, 1, 8),
        proposed_enrollment=7, reference_branch="control", channels=("release", "beta"),
        feature_ids=("homepage",), bucket_config=BucketConfig("normandy_id", "ns-1", 0, 500, 10000),
        raw={"branches": [{"slug": "control", "features": features}]},
    )
    second = Experiment(slug="exp-two", branches=(), start_date=None, end_date=None, enrollment_end_date=None,
                        proposed_enrollment=None, reference_branch=None, is_rollout=True)
    return [first, second]


def test_load_rows_with_nested_schema_and_append(warehouse):
    rows = snapshot_rows(snapshot_experiments())
    table = "experimenter_experiments_v1"
    assert warehouse.load_rows("monitoring", table, rows, EXPERIMENTER_EXPERIMENTS_SCHEMA) == 2
    assert warehouse.table_schema("monitoring", table) == column_names(EXPERIMENTER_EXPERIMENTS_SCHEMA)
    got = rows_of(warehouse, "SELECT normandy_slug, start_date, proposed_enrollment, targeted_percent, "
                             "ARRAY_LENGTH(channels) AS n_channels, branches[OFFSET(1)].ratio AS treatment_ratio, "
                             "JSON_VALUE(branches[OFFSET(0)].features, '$[0].value.layout') AS layout, is_rollout "
                             "FROM monitoring.experimenter_experiments_v1 ORDER BY normandy_slug")
    assert got[0]["normandy_slug"] == "exp-one"
    assert got[0]["start_date"].date() == dt.date(2024, 1, 1)
    assert (got[0]["proposed_enrollment"], got[0]["targeted_percent"], got[0]["n_channels"]) == (7, 0.05, 2)
    assert (got[0]["treatment_ratio"], got[0]["layout"], got[0]["is_rollout"]) == (2, "grid", False)
    assert (got[1]["normandy_slug"], got[1]["n_channels"], got[1]["is_rollout"]) == ("exp-two", 0, True)

    assert warehouse.load_rows("monitoring", table, rows[:1], EXPERIMENTER_EXPERIMENTS_SCHEMA, append=True) == 3
    assert warehouse.load_rows("monitoring", table, rows[:1], EXPERIMENTER_EXPERIMENTS_SCHEMA) == 1  # replaces
    assert warehouse.load_rows("monitoring", table, [], EXPERIMENTER_EXPERIMENTS_SCHEMA) == 0
    assert warehouse.table_schema("monitoring", table) == column_names(EXPERIMENTER_EXPERIMENTS_SCHEMA)


def test_window_view_unions_windows_with_differing_columns(warehouse):
    warehouse.create_table_as(DS, "s_day_1", "SELECT 'a' AS metric, 1.0 AS point")
    warehouse.create_table_as(DS, "s_day_2", "SELECT 'b' AS metric, 2.0 AS point, 'x' AS added_later")
    warehouse.create_table_as(DS, "s_day_10", "SELECT 'c' AS metric, 3.0 AS point")
    warehouse.create_table_as(DS, "s_day_x", "SELECT 'no' AS metric")  # not a window table
    warehouse.create_table_as(DS, "s_days28_1", "SELECT 'no' AS metric")  # another period
    warehouse.create_window_view(DS, "s_daily", "s_day_")
    got = rows_of(warehouse, "SELECT metric, point, added_later, window_index FROM mozanalysis.s_daily "
                             "ORDER BY window_index")
    assert [(r["metric"], r["point"], r["window_index"]) for r in got] == [("a", 1.0, 1), ("b", 2.0, 2), ("c", 3.0, 10)]
    assert [None if pd.isna(r["added_later"]) else r["added_later"] for r in got] == [None, "x", None]
    assert warehouse.table_modified(DS, "s_daily") is not None


def test_window_view_without_tables_is_not_created(warehouse):
    warehouse.create_window_view(DS, "none_daily", "none_day_")
    assert not warehouse.table_exists(DS, "none_daily")


def test_table_modified_and_list_tables(warehouse):
    assert warehouse.table_modified(DS, "t") is None
    before = utcnow()
    warehouse.create_table_as(DS, "t_day_1", "SELECT 1 AS a")
    first = warehouse.table_modified(DS, "t_day_1")
    assert before <= first <= utcnow()
    time.sleep(0.01)
    warehouse.create_table_as(DS, "t_day_1", "SELECT 2 AS a")
    assert warehouse.table_modified(DS, "t_day_1") > first
    warehouse.create_table_as(DS, "u", "SELECT 1 AS a")
    warehouse.create_window_view(DS, "t_daily", "t_day_")
    assert warehouse.list_tables(DS) == ["t_daily", "t_day_1", "u"]
    assert warehouse.list_tables(DS, prefix="t_") == ["t_daily", "t_day_1"]
    warehouse.drop_tables(DS, ["t_daily", "u", "missing"])
    assert warehouse.list_tables(DS) == ["t_day_1"]
    assert warehouse.table_modified(DS, "u") is None


def test_table_written_by_someone_else_counts_as_old(tmp_path):
    path = str(tmp_path / "w.duckdb")
    with duckdb.connect(path) as con:
        con.execute("CREATE SCHEMA telemetry; CREATE TABLE telemetry.clients_daily (client_id VARCHAR)")
    warehouse = DuckDBWarehouse(path, "p", DS, "monitoring")
    assert warehouse.table_modified("telemetry", "clients_daily") == dt.datetime(1970, 1, 1)
    assert warehouse.list_tables("telemetry") == ["clients_daily"]


def test_dry_run_catches_unknown_columns_and_tables(warehouse):
    warehouse.create_table_as(DS, "t", "SELECT 1 AS a")
    assert warehouse.dry_run("SELECT a FROM `p.mozanalysis.t`") is None
    with pytest.raises(WarehouseError, match="no_such_column"):
        warehouse.dry_run("SELECT no_such_column FROM mozanalysis.t", QueryLabels(experiment="e"))
    with pytest.raises(WarehouseError, match="experiment e"):
        warehouse.dry_run("SELECT a FROM mozanalysis.missing", QueryLabels(experiment="e"))
    with pytest.raises(WarehouseError, match="dry run failed"):
        warehouse.dry_run("SELECT FROM WHERE (")


def test_query_log_records_every_query_with_labels(warehouse):
    start = utcnow()
    warehouse.create_table_as(DS, "t", "SELECT 1 AS a",
                              labels=QueryLabels(experiment="exp-a", destination="mozanalysis.t"))
    warehouse.query("SELECT a FROM mozanalysis.t", QueryLabels(experiment="exp-b"))
    with pytest.raises(WarehouseError, match=r"query failed \(experiment exp-c\)"):
        warehouse.query("SELECT nope FROM mozanalysis.t", QueryLabels(experiment="exp-c"))
    log = warehouse.query_log(since=start).sort_values("submission_timestamp").to_dict("records")
    assert [(r["experiment_slug"], r["query"]) for r in log] == [
        ("exp-a", "SELECT 1 AS a"), ("exp-b", "SELECT a FROM mozanalysis.t"), ("exp-c", "SELECT nope FROM mozanalysis.t"),
    ]
    assert log[0]["destination_table"] == "mozanalysis.t"
    assert log[0]["error_reason"] is None and log[1]["error_reason"] is None
    assert log[2]["error_reason"] and "nope" in log[2]["error_message"]
    assert all(r["duration_ms"] >= 0 for r in log)


# --- DuckDBWarehouse: publication (one step's tables swapped in together) -------------------------------

def names_of(warehouse: DuckDBWarehouse) -> list[str]:
    return warehouse.list_tables(DS)


def publish_windows(warehouse: DuckDBWarehouse, values: dict[int, int]) -> None:
    with warehouse.publication(DS, "exp") as pub:
        for index, value in values.items():
            pub.create_table_as(f"statistics_exp_week_{index}", f"SELECT {value} AS point", description="exp")
        pub.create_window_view("statistics_exp_weekly", "statistics_exp_week_")


def test_publication_swaps_tables_and_views_in_together(warehouse):
    publish_windows(warehouse, {1: 10, 2: 20})
    with warehouse.publication(DS, "exp") as pub:  # a rerun: everything is replaced, window 2 is stale
        pub.drop(["statistics_exp_week_1", "statistics_exp_week_2", "statistics_exp_weekly"])
        assert pub.create_table_as("statistics_exp_week_1", "SELECT 11 AS point UNION ALL SELECT 12") == 2
        pub.create_window_view("statistics_exp_weekly", "statistics_exp_week_")
        staging = [n for n in names_of(warehouse) if n.startswith(STAGING_PREFIX)]
        assert len(staging) == 1 and not is_period_result("exp", staging[0])
        # nothing published changed while the step runs
        assert rows_of(warehouse, "SELECT point, window_index FROM mozanalysis.statistics_exp_weekly "
                                  "ORDER BY window_index") == [{"point": 10, "window_index": 1},
                                                                {"point": 20, "window_index": 2}]
    assert names_of(warehouse) == ["statistics_exp_week_1", "statistics_exp_weekly"]
    assert rows_of(warehouse, "SELECT point, window_index FROM mozanalysis.statistics_exp_weekly ORDER BY point") == [
        {"point": 11, "window_index": 1}, {"point": 12, "window_index": 1}]
    assert warehouse.table_modified(DS, "statistics_exp_week_1") > dt.datetime(2000, 1, 1)


def test_publication_that_fails_leaves_the_published_state_and_its_error(warehouse):
    publish_windows(warehouse, {1: 10})
    before = warehouse.table_modified(DS, "statistics_exp_week_1")
    with pytest.raises(ZeroDivisionError):
        with warehouse.publication(DS, "exp") as pub:
            pub.drop(["statistics_exp_week_1", "statistics_exp_weekly"])
            pub.create_table_as("statistics_exp_week_1", "SELECT 99 AS point")
            1 / 0
    assert names_of(warehouse) == ["statistics_exp_week_1", "statistics_exp_weekly"]
    assert rows_of(warehouse, "SELECT point FROM mozanalysis.statistics_exp_weekly") == [{"point": 10}]
    assert warehouse.table_modified(DS, "statistics_exp_week_1") == before
    with warehouse.publication(DS, "exp") as pub:
        pub.create_table_as("statistics_exp_week_2", "SELECT 20 AS point")
        pub.cancel()  # e.g. every window failed: nothing is published
    assert names_of(warehouse) == ["statistics_exp_week_1", "statistics_exp_weekly"]


_STAGING_WRITER = """
import os, sys
from jetstream_assets.core.naming import is_period_result
from jetstream_assets.engines.duckdb_warehouse import DuckDBWarehouse
from jetstream_assets.engines.publication import STAGING_PREFIX
path, slug, mode = sys.argv[1:]
warehouse = DuckDBWarehouse(path, "p", "mozanalysis", "monitoring")
with warehouse.publication("mozanalysis", slug) as pub:
    pub.create_table_as(f"statistics_{slug}_week_1", "SELECT 1 AS point")
    print("staged", flush=True)
    if mode == "die":
        os._exit(9)  # as after kill -9: no cleanup runs
    sys.stdin.readline()  # a live writer: waits until told to finish
"""


def start_staging_writer(path: str, slug: str, mode: str) -> subprocess.Popen:
    writer = subprocess.Popen([sys.executable, "-c", _STAGING_WRITER, path, slug, mode], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "staged"
    return writer


def test_next_publication_drops_only_dead_writers_staging_of_its_experiment(warehouse):
    live = start_staging_writer(warehouse.path, "a", "wait")
    try:
        dead = start_staging_writer(warehouse.path, "a", "die")
        assert dead.wait(timeout=30) == 9
        other_experiment = start_staging_writer(warehouse.path, "b", "die")
        assert other_experiment.wait(timeout=30) == 9
        staging = {n for n in names_of(warehouse) if n.startswith(STAGING_PREFIX)}
        assert len(staging) == 3
        with warehouse.publication(DS, "a") as pub:
            pub.create_table_as("statistics_a_week_1", "SELECT 2 AS point")
        left = {n for n in names_of(warehouse) if n.startswith(STAGING_PREFIX)}
        # the dead writer's of `a` is gone; `b`'s waits for b's next step; the live writer's is untouched
        assert len(left) == 2 and left < staging
        assert rows_of(warehouse, "SELECT point FROM mozanalysis.statistics_a_week_1") == [{"point": 2}]
    finally:
        live.communicate("done\n", timeout=30)
    assert live.returncode == 0
    assert {n for n in names_of(warehouse) if n.startswith(STAGING_PREFIX)} == {n for n in left if "statistics_b" in n}
    assert rows_of(warehouse, "SELECT point FROM mozanalysis.statistics_a_week_1") == [{"point": 1}]


def test_failed_statement_reports_its_own_error(warehouse):
    """The real DuckDB error, not `TransactionContext Error` from restoring settings in an aborted transaction."""
    with pytest.raises(WarehouseError, match="Conversion Error") as failure:
        warehouse.create_table_as(DS, "t", "SELECT CAST('not a number' AS INT64) AS a")
    assert "TransactionContext" not in str(failure.value)
    assert isinstance(failure.value.__cause__, duckdb.ConversionException)
    assert warehouse.create_table_as(DS, "t", "SELECT 1 AS a") == 1  # the connection state is clean again


# --- DuckDBWarehouse: two processes at once ------------------------------------------------------------

def _write_many(path: str, name: str, barrier) -> None:
    warehouse = DuckDBWarehouse(path, "p", DS, "monitoring")
    barrier.wait()
    with warehouse.session():  # a whole step: it keeps the file open only while the other does not wait
        for i in range(15):
            warehouse.create_table_as(DS, f"table_{name}", f"SELECT i FROM UNNEST(GENERATE_ARRAY(0, {i})) AS i")
            warehouse.load_rows(DS, "shared", [{"writer": name, "at": time.time()}],
                                (Field("writer", "STRING"), Field("at", "FLOAT64")), append=True)


def test_two_long_steps_at_once_take_turns_on_the_lock(tmp_path):
    path = str(tmp_path / "w.duckdb")
    DuckDBWarehouse(path, "p", DS, "monitoring")
    # fork is safe here: this process holds no DuckDB connection (every call opens and closes its own)
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(2)
    workers = [ctx.Process(target=_write_many, args=(path, n, barrier)) for n in ("a", "b")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]

    warehouse = DuckDBWarehouse(path, "p", DS, "monitoring")
    writers = [r["writer"] for r in rows_of(warehouse, "SELECT writer FROM mozanalysis.shared ORDER BY at")]
    assert sorted(writers) == ["a"] * 15 + ["b"] * 15
    turns = sum(1 for before, after in zip(writers, writers[1:]) if before != after)
    assert turns >= 3  # neither step held the file for its whole duration
    for name in ("a", "b"):
        assert rows_of(warehouse, f"SELECT COUNT(*) AS n FROM mozanalysis.table_{name}") == [{"n": 15}]


_LONG_STEP = """
import sys, time
from jetstream_assets.engines.duckdb_warehouse import DuckDBWarehouse
warehouse = DuckDBWarehouse(sys.argv[1], "p", "mozanalysis", "monitoring")
with warehouse.session():
    warehouse.query("SELECT 1 AS x")
    print("in a step", flush=True)
    end = time.monotonic() + 8
    while time.monotonic() < end:  # a step longer than the other process's lock wait
        warehouse.query("SELECT 1 AS x")
        time.sleep(0.05)
"""


def test_a_long_step_never_makes_another_process_fail_on_the_lock(tmp_path):
    path = str(tmp_path / "w.duckdb")
    DuckDBWarehouse(path, "p", DS, "monitoring")
    step = subprocess.Popen([sys.executable, "-c", _LONG_STEP, path], stdout=subprocess.PIPE, text=True)
    try:
        assert step.stdout.readline().strip() == "in a step"
        patient_for_3_seconds = DuckDBWarehouse(path, "p", DS, "monitoring", lock_wait_seconds=3)
        patient_for_3_seconds.create_table_as(DS, "meanwhile", "SELECT 1 AS x")
        assert step.poll() is None  # the other step was still running
    finally:
        step.wait(timeout=60)
    assert step.returncode == 0
    assert rows_of(patient_for_3_seconds, "SELECT x FROM mozanalysis.meanwhile") == [{"x": 1}]


_LOCK_HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("BEGIN TRANSACTION")
con.execute("CREATE TABLE mozanalysis.held AS SELECT 1 AS x")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))  # a long step of another process
con.execute("COMMIT")
"""


def hold_the_lock(path: str, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", _LOCK_HOLDER, path, str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_lock_wait_longer_than_the_setting_fails_naming_it(tmp_path):
    path = str(tmp_path / "w.duckdb")
    DuckDBWarehouse(path, "p", DS, "monitoring")
    holder = hold_the_lock(path, 20)
    try:
        with pytest.raises(WarehouseError, match="lock for more than 0.5 s .JETSTREAM_DUCKDB_LOCK_WAIT_SECONDS"):
            DuckDBWarehouse(path, "p", DS, "monitoring", lock_wait_seconds=0.5)
    finally:
        holder.kill()
        holder.wait()


def test_lock_wait_within_the_setting_succeeds(tmp_path):
    path = str(tmp_path / "w.duckdb")
    warehouse = DuckDBWarehouse(path, "p", DS, "monitoring", lock_wait_seconds=60)
    holder = hold_the_lock(path, 1.5)
    try:
        assert rows_of(warehouse, "SELECT x FROM mozanalysis.held") == [{"x": 1}]  # after the holder committed
    finally:
        holder.wait(timeout=60)
    assert holder.returncode == 0


# --- LocalFolderBucket ---------------------------------------------------------------------------------

def test_bucket_write_is_atomic_and_leaves_no_temp_files(tmp_path):
    bucket = LocalFolderBucket(str(tmp_path / "bucket"))
    uri = bucket.write_json("statistics/statistics_x_daily.json", [{"a": 1}])
    assert uri == "file://" + str(tmp_path / "bucket" / "statistics" / "statistics_x_daily.json")
    bucket.write_json("statistics/statistics_x_daily.json", [{"a": 2}])
    assert os.listdir(tmp_path / "bucket" / "statistics") == ["statistics_x_daily.json"]
    assert bucket.read_json("statistics/statistics_x_daily.json") == [{"a": 2}]
    with pytest.raises(ValueError):
        bucket.write_json("statistics/statistics_x_daily.json", [float("nan")])  # not JSON: nothing published
    assert os.listdir(tmp_path / "bucket" / "statistics") == ["statistics_x_daily.json"]
    assert bucket.read_json("statistics/statistics_x_daily.json") == [{"a": 2}]


def test_bucket_files_are_0644_and_dead_writers_temp_files_go(tmp_path):
    folder = tmp_path / "statistics"
    folder.mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    (folder / f".statistics_x_daily.json.{dead_pid}.k3j_9a2b.tmp").write_text('[{"half": ')  # a killed writer's
    live = folder / f".statistics_x_weekly.json.{os.getppid()}.q8w7e6r5.tmp"  # a running writer's
    live.write_text("[")
    bucket = LocalFolderBucket(str(tmp_path))
    bucket.write_json("statistics/statistics_x_daily.json", [{"a": 1}])
    assert sorted(os.listdir(folder)) == [live.name, "statistics_x_daily.json"]
    assert stat.S_IMODE(os.stat(folder / "statistics_x_daily.json").st_mode) == 0o644
    assert not [n for n in os.listdir(folder) if n.endswith(".json") and n.startswith(".")]


def test_bucket_temp_file_never_looks_published(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def replace(source, target):  # look at the folder just before the move
        seen.extend(os.listdir(os.path.dirname(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    LocalFolderBucket(str(tmp_path)).write_json("a.json", {})
    temp = [n for n in seen if n != "a.json"]
    assert len(temp) == 1 and temp[0].startswith(f".a.json.{os.getpid()}.") and temp[0].endswith(".tmp")


def test_bucket_reader_never_sees_a_partial_file(tmp_path):
    bucket = LocalFolderBucket(str(tmp_path))
    payloads = [[{"i": i, "text": "x" * 50} for i in range(2000)], [{"j": "y" * 80}] * 1000]
    bucket.write_json("f.json", payloads[0])
    done, seen, errors = threading.Event(), [], []

    def read_until_done() -> None:
        while not done.is_set():
            try:
                seen.append(payloads.index(bucket.read_json("f.json")))
            except (BucketError, ValueError) as e:
                errors.append(e)

    reader = threading.Thread(target=read_until_done)
    reader.start()
    for n in range(20):
        bucket.write_json("f.json", payloads[n % 2])
    done.set()
    reader.join()
    assert errors == [] and len(seen) > 0
    assert os.listdir(tmp_path) == ["f.json"]


def test_bucket_read_of_missing_or_corrupt_file_names_the_path(tmp_path):
    bucket = LocalFolderBucket(str(tmp_path))
    with pytest.raises(BucketError, match="missing.json does not exist"):
        bucket.read_json("missing.json")
    (tmp_path / "errors").mkdir()
    (tmp_path / "errors" / "bad.json").write_text('[{"half": ')
    with pytest.raises(BucketError, match=f"{tmp_path}/errors/bad.json is not valid JSON"):
        bucket.read_json("errors/bad.json")


def test_bucket_updated(tmp_path):
    bucket = LocalFolderBucket(str(tmp_path))
    assert bucket.updated("a.json") is None
    before = utcnow() - dt.timedelta(seconds=1)
    bucket.write_json("a.json", {})
    assert before <= bucket.updated("a.json") <= utcnow() + dt.timedelta(seconds=1)


@pytest.mark.parametrize("key", ["../outside.json", "/etc/passwd", "a/../../outside.json", "", "."])
def test_bucket_rejects_keys_escaping_its_folder(tmp_path, key):
    bucket = LocalFolderBucket(str(tmp_path / "bucket"))
    with pytest.raises(BucketError, match="escapes the bucket folder"):
        bucket.write_json(key, {})
    assert not (tmp_path / "outside.json").exists()


# --- logs ----------------------------------------------------------------------------------------------

@pytest.fixture
def logger() -> logging.Logger:
    """A fresh, non-propagating logger."""
    log = logging.getLogger(f"jetstream_assets_tests.{uuid.uuid4().hex}")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    return log


def _compute_statistic() -> None:
    raise ValueError("statistic exploded")


def _check_dates(exception: type[Exception]) -> None:
    raise exception("exp-a", "skipped")


def log_exception(log: logging.Logger, fail, message: str, **where) -> None:
    try:
        fail()
    except Exception:
        log.exception(message, extra=context(**where))


def logs_rows(warehouse) -> list[dict]:
    return rows_of(warehouse, "SELECT * FROM monitoring.logs ORDER BY timestamp, message")


def test_logs_handler_writes_contract_columns_and_where_the_exception_was_raised(warehouse, logger):
    handler = LogsTableHandler(warehouse)
    logger.addHandler(handler)
    log_exception(logger, _compute_statistic, "statistic failed", experiment="exp-a", metric="active_hours",
                  statistic="bootstrap_mean", analysis_basis="enrollments", segment="all", analysis_period="week")
    logger.warning("low enrollment", extra=context(experiment="exp-a"))
    logger.info("not recorded")
    handler.flush()

    assert warehouse.table_schema("monitoring", LOGS_TABLE) == [
        "timestamp", "experiment", "message", "log_level", "exception", "filename", "func_name", "exception_type",
        "source", "metric", "statistic", "analysis_basis", "segment", "analysis_period",
    ]
    error, warning = sorted(logs_rows(warehouse), key=lambda r: r["log_level"])
    assert (error["log_level"], error["message"], error["exception_type"]) == ("ERROR", "statistic failed", "ValueError")
    assert (error["filename"], error["func_name"]) == ("test_engines.py", "_compute_statistic")
    assert "statistic exploded" in error["exception"]
    assert (error["source"], error["experiment"], error["metric"], error["statistic"]) == (
        "jetstream", "exp-a", "active_hours", "bootstrap_mean")
    assert (error["analysis_basis"], error["segment"], error["analysis_period"]) == ("enrollments", "all", "week")
    assert (warning["log_level"], warning["exception_type"], warning["exception"], warning["metric"]) == (
        "WARNING", None, None, None)
    assert warning["func_name"] == "test_logs_handler_writes_contract_columns_and_where_the_exception_was_raised"
    assert handler.rows_written == 2 and handler.buffer == []


def test_logs_handler_keeps_rows_while_the_warehouse_fails(warehouse, logger, capsys):
    warehouse.create_table_as("monitoring", LOGS_TABLE, "SELECT 1 AS unrelated")  # appending to it fails
    handler = LogsTableHandler(warehouse)
    logger.addHandler(handler)
    logger.error("first", extra=context(experiment="exp-a"))
    logger.warning("second", extra=context(experiment="exp-a"))
    handler.flush()
    assert len(handler.buffer) == 2 and handler.rows_written == 0
    assert "could not write 2 log rows" in capsys.readouterr().err

    warehouse.drop_tables("monitoring", [LOGS_TABLE])
    handler.flush()
    assert [r["message"] for r in logs_rows(warehouse)] == ["first", "second"]
    assert handler.buffer == [] and handler.rows_written == 2


def test_logs_handler_flushes_when_its_buffer_is_full(warehouse, logger):
    handler = LogsTableHandler(warehouse, capacity=2, source="jetstream-testing")
    logger.addHandler(handler)
    logger.warning("one")
    assert not warehouse.table_exists("monitoring", LOGS_TABLE)
    logger.warning("two")
    assert [(r["message"], r["source"]) for r in logs_rows(warehouse)] == [
        ("one", "jetstream-testing"), ("two", "jetstream-testing")]


def test_log_context_rejects_unknown_fields():
    with pytest.raises(ValueError, match="branch"):
        context(branch="control")


def test_errors_records_drop_expected_skips_and_validate(warehouse, logger):
    handler = LogsTableHandler(warehouse)
    logger.addHandler(handler)
    since = utcnow() - dt.timedelta(seconds=1)
    log_exception(logger, lambda: _check_dates(EndedException), "ended", experiment="exp-a")
    log_exception(logger, lambda: _check_dates(EnrollmentNotCompleteException), "enrolling", experiment="exp-a")
    log_exception(logger, _compute_statistic, "statistic failed", experiment="exp-a", metric="m",
                  statistic="bootstrap_mean", analysis_basis="exposures", segment="all")
    logger.warning("unknown branch", extra=context(experiment="exp-a"))
    logger.error("other experiment", extra=context(experiment="exp-b"))
    handler.flush()
    old = logging.LogRecord("x", logging.ERROR, "x.py", 1, "long ago", None, None)
    old.created = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc).timestamp()
    old.jetstream = {"experiment": "exp-a"}
    warehouse.load_rows("monitoring", LOGS_TABLE, [log_row(old)], LOGS_SCHEMA, append=True)

    records = errors_records(warehouse, "exp-a", since)
    assert sorted((r["message"], r["exception_type"]) for r in records) == [
        ("statistic failed", "ValueError"), ("unknown branch", None)]
    failed = next(r for r in records if r["message"] == "statistic failed")
    assert (failed["metric"], failed["analysis_basis"], failed["func_name"]) == ("m", "exposures", "_compute_statistic")
    validated = AnalysisErrors.model_validate(records)
    assert len(validated.root) == 2
    assert json.loads(json.dumps(records)) == records  # the payload is plain JSON


def test_errors_records_without_a_logs_table_is_empty(warehouse):
    assert errors_records(warehouse, "exp-a", utcnow()) == []
