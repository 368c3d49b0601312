"""Query cost: the BigQuery billed-bytes estimator, the DuckDB query log's bytes, and the
`monitoring/query_cost_v1` asset with its cost alert check."""

from __future__ import annotations

import datetime as dt
import math

import dagster as dg
import duckdb
import pytest

from jetstream_assets.engines.query_bytes import MIB, TableStats, estimate_query_bytes
from jetstream_assets.dagster_defs.query_cost import (
    COST_CHECK_NAME,
    QUERY_COST_KEY,
    query_cost_job,
    query_cost_schedule,
    query_cost_v1,
)
from jetstream_assets.dagster_defs.resources import AlertSettingsResource, WarehouseResource
from jetstream_assets.engines.duckdb_table_stats import measure_table
from jetstream_assets.engines.duckdb_warehouse import DuckDBWarehouse
from jetstream_assets.engines.warehouse import QueryLabels, WarehouseError

# ---------------------------------------------------------------- the estimator, on known column sizes

CLIENTS = TableStats(
    rows=1000,
    column_bytes={"client_id": 40 * MIB, "submission_date": 8 * MIB, "experiments": 30 * MIB, "search_count": 8 * MIB},
)
EVENTS = TableStats(rows=500, column_bytes={"client_id": 20 * MIB, "event_extra": 50 * MIB, "sample_id": 4 * MIB})
TINY = TableStats(rows=3, column_bytes={"a": 24, "b": 3})
TABLES = {"telemetry.clients_daily": CLIENTS, "telemetry.events_stream": EVENTS, "mozanalysis.tiny": TINY}


def billed(sql: str) -> int:
    return estimate_query_bytes(sql, TABLES.get).billed


def test_select_star_reads_every_column_whatever_the_filter() -> None:
    assert billed("SELECT * FROM `moz-fx-data-shared-prod.telemetry.clients_daily` WHERE search_count > 3 LIMIT 1") \
        == 86 * MIB


def test_only_referenced_columns_are_billed() -> None:
    assert billed("SELECT client_id, SUM(search_count) FROM telemetry.clients_daily GROUP BY client_id") == 48 * MIB
    assert billed("SELECT client_id FROM telemetry.clients_daily WHERE submission_date = '2026-01-01'") == 48 * MIB


def test_star_except_bills_the_remaining_columns() -> None:
    assert billed("SELECT * EXCEPT (experiments, client_id) FROM telemetry.clients_daily") == 16 * MIB


def test_cte_chain_resolves_to_the_columns_finally_used() -> None:
    sql = """
    WITH everything AS (SELECT * FROM telemetry.clients_daily),
         narrowed AS (SELECT client_id, search_count FROM everything WHERE submission_date > '2026-01-01')
    SELECT client_id FROM narrowed"""
    estimate = estimate_query_bytes(sql, TABLES.get)
    assert estimate.columns == {"telemetry.clients_daily": frozenset({"client_id", "submission_date"})}
    assert estimate.billed == 48 * MIB


def test_join_with_aliases_and_alias_star() -> None:
    sql = """SELECT e.*, d.search_count FROM telemetry.events_stream AS e
             JOIN telemetry.clients_daily d ON d.client_id = e.client_id"""
    estimate = estimate_query_bytes(sql, TABLES.get)
    assert estimate.columns == {
        "telemetry.events_stream": frozenset({"client_id", "event_extra", "sample_id"}),
        "telemetry.clients_daily": frozenset({"client_id", "search_count"}),
    }
    assert estimate.billed == (74 + 48) * MIB


def test_a_column_is_billed_once_however_often_a_table_is_read() -> None:
    sql = """SELECT a.client_id FROM telemetry.clients_daily a
             JOIN telemetry.clients_daily b USING (client_id)
             WHERE a.client_id IN (SELECT client_id FROM telemetry.clients_daily)"""
    assert billed(sql) == 40 * MIB


def test_correlated_subquery_columns_resolve_to_the_outer_table() -> None:
    sql = """SELECT d.client_id FROM telemetry.clients_daily d
             WHERE EXISTS (SELECT 1 FROM telemetry.events_stream e WHERE e.client_id = d.client_id
                           AND d.search_count > 0)"""
    assert billed(sql) == (48 + 20) * MIB


def test_unresolved_column_bills_every_column_of_its_scope() -> None:
    assert billed("SELECT client_id, no_such_column FROM telemetry.clients_daily") == 86 * MIB


def test_ten_mib_minimum_per_table_and_rounding_up_to_whole_mib() -> None:
    assert billed("SELECT a FROM mozanalysis.tiny") == 10 * MIB
    assert billed("SELECT COUNT(*) FROM mozanalysis.tiny") == 10 * MIB
    assert billed("SELECT t.a, c.sample_id FROM mozanalysis.tiny t CROSS JOIN telemetry.events_stream c") == 20 * MIB
    odd = {"d.t": TableStats(rows=1, column_bytes={"x": 11 * MIB + 1})}
    assert estimate_query_bytes("SELECT x FROM d.t", odd.get).billed == 12 * MIB
    assert estimate_query_bytes("SELECT x FROM d.t", odd.get).processed == 11 * MIB + 1


def test_queries_reading_no_table_or_not_parsing_are_free() -> None:
    assert billed("SELECT 1 AS one") == 0
    assert billed("SELECT FROM WHERE (") == 0
    assert billed("SELECT * FROM mozanalysis.not_a_table") == 0


# ---------------------------------------------------------------- the DuckDB query log


@pytest.fixture
def warehouse(tmp_path) -> DuckDBWarehouse:
    return DuckDBWarehouse(str(tmp_path / "warehouse.duckdb"), "p", "mozanalysis", "monitoring")


def _execute(wh: DuckDBWarehouse, *statements: str) -> None:
    """Change the warehouse behind the adapter's back, as a user or another tool would."""
    with duckdb.connect(wh.path) as con:
        for statement in statements:
            con.execute(statement)


def _logged_bytes(wh: DuckDBWarehouse) -> list[int | None]:
    return [None if math.isnan(b) else int(b) for b in wh.query_log()["total_bytes_processed"]]


def test_column_sizes_follow_bigquerys_data_size_calculation(warehouse: DuckDBWarehouse) -> None:
    _execute(
        warehouse,
        "CREATE SCHEMA telemetry",
        """CREATE TABLE telemetry.sizes (s VARCHAR, i INTEGER, f DOUBLE, b BOOLEAN, d DATE, ts TIMESTAMP,
             n DECIMAL(10, 2), j JSON, l BIGINT[], m MAP(VARCHAR, VARCHAR), r STRUCT(x BIGINT, y VARCHAR))""",
        """INSERT INTO telemetry.sizes VALUES
             ('é', 1, 1.5, TRUE, DATE '2026-01-01', TIMESTAMP '2026-01-01 00:00:00', 1.25, '{"a": 1, "b": [1, 2]}',
              [1, NULL, 3], MAP {'k': 'vv', 'key': NULL}, {'x': 1, 'y': 'abc'}),
             (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
             ('', 2, 2.5, FALSE, DATE '2026-01-02', TIMESTAMP '2026-01-02 00:00:00', 2.5, '"x"',
              [], MAP {}, {'x': NULL, 'y': NULL})""",
    )
    with duckdb.connect(warehouse.path) as con:
        stats = measure_table(con, "telemetry", "sizes")
    assert stats.rows == 3
    assert stats.column_bytes == {
        "s": (2 + 2) + 0 + (2 + 0),  # 2 + UTF-8 bytes; NULL is free
        "i": 16, "f": 16, "d": 16, "ts": 16,  # INT64 / FLOAT64 / DATE / TIMESTAMP: 8 each
        "b": 2,  # BOOL: 1
        "n": 32,  # NUMERIC: 16
        "j": len('{"a":1,"b":[1,2]}') + len('"x"'),  # canonical JSON text
        "l": 16,  # ARRAY: its non-NULL elements
        "m": (2 + 1) + (2 + 2) + (2 + 3),  # ARRAY<STRUCT<key, value>>
        "r": (8 + 2 + 3) + 0,  # STRUCT: its fields
    }


def test_query_log_records_billed_bytes_of_real_queries(warehouse: DuckDBWarehouse) -> None:
    rows = 1_500_000
    _execute(
        warehouse,
        "CREATE SCHEMA telemetry",
        "CREATE TABLE telemetry.big AS "
        f"SELECT range AS id, repeat('é', 3) AS s, NULL::VARCHAR AS n FROM range({rows})",
    )
    warehouse.query("SELECT s FROM telemetry.big")  # (2 + 6) bytes a row: 12,000,000 -> 12 MiB
    warehouse.query("SELECT id, s, n FROM `proj.telemetry.big` WHERE id < 10")  # 24,000,000 -> 23 MiB
    warehouse.query("SELECT COUNT(*) AS n FROM telemetry.big")  # the 10 MiB minimum
    warehouse.query("SELECT 1 AS one")  # no table: free
    assert _logged_bytes(warehouse) == [
        math.ceil(rows * 8 / MIB) * MIB,
        math.ceil(rows * 16 / MIB) * MIB,
        10 * MIB,
        0,
    ]


def test_statistics_follow_changes_to_a_table(warehouse: DuckDBWarehouse) -> None:
    _execute(warehouse, "CREATE SCHEMA telemetry",
             "CREATE TABLE telemetry.t AS SELECT range AS id FROM range(1500000)")
    warehouse.query("SELECT id FROM telemetry.t")
    _execute(warehouse, "INSERT INTO telemetry.t SELECT range FROM range(1500000)")
    warehouse.query("SELECT id FROM telemetry.t")
    assert _logged_bytes(warehouse) == [math.ceil(12_000_000 / MIB) * MIB, math.ceil(24_000_000 / MIB) * MIB]


def test_failed_queries_are_logged_as_free(warehouse: DuckDBWarehouse) -> None:
    with pytest.raises(WarehouseError):
        warehouse.query("SELECT no_such_column FROM monitoring.nothing_here")
    assert _logged_bytes(warehouse) == [0]


def test_query_costs_price_the_results_dataset_writes(warehouse: DuckDBWarehouse) -> None:
    _execute(warehouse, "CREATE SCHEMA telemetry",
             "CREATE TABLE telemetry.big AS SELECT range AS id FROM range(2000000)")
    labels = QueryLabels(experiment="my-exp", destination="mozanalysis.enrollments_my_exp")
    warehouse.create_table_as("mozanalysis", "enrollments_my_exp", "SELECT id FROM telemetry.big", labels=labels)
    warehouse.query("SELECT id FROM telemetry.big")  # writes nowhere: not a results-dataset job
    costs = warehouse.query_costs(dt.datetime.now(dt.timezone.utc).date())
    assert list(costs["destination_table"]) == ["mozanalysis.enrollments_my_exp"]
    assert list(costs["experiment_slug"]) == ["my-exp"]
    expected = math.ceil(16_000_000 / MIB) * MIB
    assert int(costs["total_bytes_processed"][0]) == expected
    assert costs["cost_usd"][0] == pytest.approx(expected / 2**40 * 6.25)


# ---------------------------------------------------------------- the asset and its check

DAY = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=2)).isoformat()  # inside the partitions


@pytest.fixture
def logged_day(tmp_path) -> WarehouseResource:
    """A warehouse whose query log holds, on DAY, two experiments' writes to the results dataset and one
    query that wrote nowhere."""
    resource = WarehouseResource(home=str(tmp_path))
    wh = resource.get_warehouse()
    _execute(wh, "CREATE SCHEMA telemetry", "CREATE TABLE telemetry.big AS SELECT range AS id FROM range(2000000)")
    for slug in ("exp-a", "exp-b"):
        table = f"enrollments_{slug.replace('-', '_')}"
        wh.create_table_as("mozanalysis", table, f"SELECT id FROM telemetry.big WHERE id % 2 = {slug == 'exp-a':d}",
                           labels=QueryLabels(experiment=slug, destination=f"mozanalysis.{table}"))
    wh.query("SELECT COUNT(*) AS n FROM telemetry.big")
    # the runs happened on DAY (the log stamps wall-clock time)
    _execute(wh, f"UPDATE _jetstream.query_log SET submission_timestamp = TIMESTAMP '{DAY} 04:00:00'")
    return resource


def _materialize(
    resource: WarehouseResource, threshold: str, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [query_cost_v1],
        partition_key=DAY,
        resources={"warehouse": resource, "alerts": AlertSettingsResource(query_cost_alert_usd=threshold)},
        instance=instance,
    )


def _table(resource: WarehouseResource) -> list[tuple]:
    with duckdb.connect(resource.get_warehouse().path) as con:
        return con.execute(
            "SELECT submission_timestamp, destination_table, experiment_slug, total_bytes_processed, cost_usd "
            "FROM monitoring.query_cost_v1 ORDER BY destination_table"
        ).fetchall()


def test_materializing_a_day_twice_gives_the_same_rows(
    logged_day: WarehouseResource, instance: dg.DagsterInstance
) -> None:
    first = _materialize(logged_day, "1.0", instance)
    rows = _table(logged_day)
    second = _materialize(logged_day, "1.0", instance)
    assert first.success and second.success
    assert _table(logged_day) == rows
    assert [(r[1], r[2]) for r in rows] == [
        ("mozanalysis.enrollments_exp_a", "exp-a"),
        ("mozanalysis.enrollments_exp_b", "exp-b"),
    ]
    assert all(r[0].date() == dt.date.fromisoformat(DAY) and r[3] == 16 * MIB for r in rows)
    metadata = second.asset_materializations_for_node("monitoring__query_cost_v1")[0].metadata
    assert metadata["dagster/row_count"].value == 2
    assert metadata["total_cost_usd"].value == pytest.approx(2 * 16 * MIB / 2**40 * 6.25)
    assert "exp-a" in metadata["per_experiment"].value and "exp-b" in metadata["per_experiment"].value


def test_cost_check_passes_below_the_threshold(logged_day: WarehouseResource, instance: dg.DagsterInstance) -> None:
    (evaluation,) = _materialize(logged_day, "1.0", instance).get_asset_check_evaluations()
    assert evaluation.check_name == COST_CHECK_NAME and evaluation.asset_key == QUERY_COST_KEY
    assert evaluation.passed
    assert evaluation.metadata["offending_queries"].value == 0


def test_cost_check_warns_with_the_offending_queries_above_the_threshold(
    logged_day: WarehouseResource, instance: dg.DagsterInstance
) -> None:
    result = _materialize(logged_day, "0.0000001", instance)
    assert result.success  # a WARN check does not fail the run
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.WARN
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert metadata["offending_queries"] == 2
    assert metadata["experiment_slugs"] == ["exp-a", "exp-b"]
    assert metadata["destination_tables"] == ["mozanalysis.enrollments_exp_a", "mozanalysis.enrollments_exp_b"]
    assert "FROM telemetry.big" in metadata["costliest_query"]
    assert metadata["max_query_cost_usd"] == pytest.approx(16 * MIB / 2**40 * 6.25)


def test_schedule_materializes_the_previous_utc_day_after_midnight(tmp_path, instance: dg.DagsterInstance) -> None:
    defs = dg.Definitions(
        assets=[query_cost_v1], jobs=[query_cost_job], schedules=[query_cost_schedule],
        resources={"warehouse": WarehouseResource(home=str(tmp_path)), "alerts": AlertSettingsResource()},
    )
    schedule = defs.resolve_schedule_def("query_cost_daily_schedule")
    assert schedule.cron_schedule == "30 0 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=dt.datetime.combine(
            dt.date.fromisoformat(DAY) + dt.timedelta(days=1), dt.time(0, 30), tzinfo=dt.timezone.utc),
        repository_def=defs.get_repository_def(),
    )
    (request,) = schedule.evaluate_tick(context).run_requests
    assert request.partition_key == DAY


def test_partitions_start_where_the_data_can_start(monkeypatch: pytest.MonkeyPatch) -> None:
    from jetstream_assets.dagster_defs.query_cost import query_cost_partitions, query_cost_start

    today = dt.datetime.now(dt.timezone.utc).date()
    first = dt.date.fromisoformat(query_cost_partitions.get_first_partition_key())
    assert first == today - dt.timedelta(days=30)  # a rolling month, not hundreds of days no query ran on
    monkeypatch.setenv("JETSTREAM_QUERY_COST_START_DATE", "2026-11-20")
    assert query_cost_start() == dt.date(2026, 11, 20)
    monkeypatch.setenv("JETSTREAM_QUERY_COST_START_DATE", "20th November")
    with pytest.raises(ValueError, match="JETSTREAM_QUERY_COST_START_DATE='20th November' is not a YYYY-MM-DD"):
        query_cost_start()
