"""BigQueryWarehouse against bqemulator (marker `bigquery_emulator`; needs BQEMULATOR_PYTHON, see
docs/deployment.md): tables, views, loads, replace_day, faults, and the per-experiment pipeline
compared with the DuckDB engine on the same sample.

The emulator runs with strict timeouts and no client retries, so a failure fails fast. What it
cannot answer is tested on the requests the client sends, captured by a proxy (`FaultProxy`):
job labels (not stored), DDL table labels (ignored), bytes of a dry run (always 0), and
`region-<location>.INFORMATION_SCHEMA.JOBS_BY_PROJECT` (rejected): that query is answered from a
recorded JOBS_BY_PROJECT table loaded into the emulator.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import dagster as dg
import pytest

from jetstream_assets.core.schema import LOGS_SCHEMA, QUERY_COST_SCHEMA, STATISTICS_SCHEMA, Field, column_names
from jetstream_assets.dagster_defs.resources import WarehouseResource
from jetstream_assets.engines.bigquery_warehouse import BigQueryError, BigQueryWarehouse
from jetstream_assets.engines.warehouse import QueryLabels
from jetstream_assets_tests.emulators import Answer, FaultProxy, Request, Rule, bigquery_emulator_or_skip, new_project

pytestmark = pytest.mark.bigquery_emulator

RESULTS, MONITORING = "mozanalysis", "monitoring"


@pytest.fixture(scope="module")
def bq_endpoint() -> Iterator[str]:
    with bigquery_emulator_or_skip() as endpoint:
        yield endpoint


def warehouse(project: str, endpoint: str) -> BigQueryWarehouse:
    return WarehouseResource(engine="bigquery", project=project, bigquery_endpoint=endpoint).get_warehouse()


def stats_rows(metric: str, n: int = 2) -> list[dict]:
    return [{"metric": metric, "statistic": "mean", "branch": f"b{i}", "point": i + 0.5, "parameter": 0.25,
             "segment": "all", "analysis_basis": "enrollments"} for i in range(n)]


def test_tables_views_loads_and_metadata(bq_endpoint: str) -> None:
    project = new_project(bq_endpoint, RESULTS, MONITORING)
    wh = warehouse(project, bq_endpoint)
    labels = QueryLabels(experiment="my-exp", extra={"schema_version": "4"})
    assert wh.load_rows(RESULTS, "statistics_my_exp_week_1", stats_rows("a", 3), STATISTICS_SCHEMA,
                        description="my-exp", labels=labels) == 3
    assert wh.load_rows(RESULTS, "statistics_my_exp_week_1", stats_rows("b", 2), STATISTICS_SCHEMA,
                        description="my-exp", labels=labels) == 2  # WRITE_TRUNCATE replaces
    assert wh.create_table_as(RESULTS, "statistics_my_exp_week_2",
                              f"SELECT * FROM {wh.table_ref(RESULTS, 'statistics_my_exp_week_1')}",
                              description="my-exp", labels=labels) == 2
    table = wh._client.get_table(f"{project}.{RESULTS}.statistics_my_exp_week_1")
    assert table.description == "my-exp" and table.labels["schema_version"] == "4"
    assert int(table.labels["last_updated"]) > 1_700_000_000
    assert wh._client.get_table(f"{project}.{RESULTS}.statistics_my_exp_week_2").description == "my-exp"

    wh.create_window_view(RESULTS, "statistics_my_exp_weekly", "statistics_my_exp_week_")
    view = wh.query(f"SELECT * FROM {wh.table_ref(RESULTS, 'statistics_my_exp_weekly')} ORDER BY window_index, branch")
    assert list(view.columns) == column_names(STATISTICS_SCHEMA) + ["window_index"]
    assert view["window_index"].tolist() == [1, 1, 2, 2]
    assert wh.table_schema(RESULTS, "statistics_my_exp_weekly")[-1] == "window_index"
    assert wh.table_modified(RESULTS, "statistics_my_exp_weekly") <= dt.datetime.utcnow() + dt.timedelta(minutes=1)
    assert wh.table_modified(RESULTS, "missing") is None and wh.table_schema(RESULTS, "missing") == []
    assert wh.list_tables(RESULTS, "statistics_my_exp_week") == [
        "statistics_my_exp_week_1", "statistics_my_exp_week_2", "statistics_my_exp_weekly"]
    wh.drop_tables(RESULTS, ["statistics_my_exp_weekly", "statistics_my_exp_week_2", "never_existed"])
    assert wh.list_tables(RESULTS) == ["statistics_my_exp_week_1"]

    assert wh.load_rows(MONITORING, "logs", [], LOGS_SCHEMA) == 0
    row = {"timestamp": dt.datetime(2026, 10, 4, 1), "experiment": "my-exp", "message": "m", "log_level": "ERROR"}
    assert wh.load_rows(MONITORING, "logs", [row], LOGS_SCHEMA, append=True) == 1
    assert wh.load_rows(MONITORING, "logs", [row], LOGS_SCHEMA, append=True) == 2


def test_replace_day_is_idempotent_and_keeps_other_days(bq_endpoint: str) -> None:
    project = new_project(bq_endpoint, RESULTS, MONITORING)
    wh = warehouse(project, bq_endpoint)

    def cost(day: int, n: int) -> list[dict]:
        return [{"submission_timestamp": dt.datetime(2026, 10, day, 3, i), "destination_table": f"{RESULTS}.t{i}",
                 "query": "SELECT 1", "total_bytes_processed": 10, "cost_usd": 0.5} for i in range(n)]

    kw = dict(date_column="submission_timestamp", description="query cost")
    assert wh.replace_day(MONITORING, "query_cost_v1", cost(3, 2), QUERY_COST_SCHEMA, day=dt.date(2026, 10, 3), **kw) == 2
    assert wh.replace_day(MONITORING, "query_cost_v1", cost(4, 3), QUERY_COST_SCHEMA, day=dt.date(2026, 10, 4), **kw) == 3
    assert wh.replace_day(MONITORING, "query_cost_v1", cost(4, 1), QUERY_COST_SCHEMA, day=dt.date(2026, 10, 4), **kw) == 1
    per_day = wh.query(f"SELECT DATE(submission_timestamp) AS d, COUNT(*) AS n FROM "
                       f"{wh.table_ref(MONITORING, 'query_cost_v1')} GROUP BY d ORDER BY d")
    assert per_day["n"].tolist() == [2, 1]
    assert wh.list_tables(MONITORING) == ["query_cost_v1"]  # the staging table is gone


def test_missing_dataset_fails_before_any_work(bq_endpoint: str) -> None:
    project = new_project(bq_endpoint, RESULTS)  # no monitoring dataset
    with pytest.raises(dg.Failure) as failure:
        WarehouseResource(engine="bigquery", project=project, bigquery_endpoint=bq_endpoint).get_warehouse()
    assert f"{project}.{MONITORING} does not exist" in str(failure.value)


def test_job_and_table_labels_as_sent(bq_endpoint: str) -> None:
    """The emulator keeps neither job labels nor DDL labels: check what the client sends."""
    project = new_project(bq_endpoint, RESULTS, MONITORING)
    proxy = FaultProxy(bq_endpoint)
    try:
        wh = warehouse(project, proxy.url)
        wh.create_table_as(RESULTS, "my_exp_enrollments_week_1", "SELECT 1 AS x", description="My-Exp",
                           labels=QueryLabels(experiment="My-Exp", destination=f"{RESULTS}.my_exp_enrollments_week_1"))
    finally:
        proxy.close()
    jobs = [json.loads(r.body) for r in proxy.requests if r.method == "POST" and r.path.endswith("/jobs?prettyPrint=false")]
    ddl = next(j for j in jobs if "CREATE OR REPLACE TABLE" in j["configuration"]["query"]["query"])
    assert ddl["configuration"]["labels"] == {"application": "jetstream-assets", "experiment_slug": "my-exp",
                                              "destination_table": "my_exp_enrollments_week_1"}
    sql = ddl["configuration"]["query"]["query"]
    assert f"`{project}.{RESULTS}.my_exp_enrollments_week_1`" in sql
    assert "description = 'My-Exp'" in sql and "('last_updated', '" in sql


def test_dry_run_returns_the_bytes_estimate(bq_endpoint: str) -> None:
    """The emulator estimates 0 bytes: a recorded dry-run answer carries a real estimate."""
    project = new_project(bq_endpoint, RESULTS, MONITORING)
    recorded = {"kind": "bigquery#job", "jobReference": {"projectId": project, "jobId": "dry", "location": "US"},
                "configuration": {"dryRun": True, "query": {"query": "SELECT 1"}}, "status": {"state": "DONE"},
                "statistics": {"totalBytesProcessed": "1073741824",
                               "query": {"totalBytesProcessed": "1073741824", "statementType": "SELECT"}}}

    def answer_dry_runs(request: Request) -> Answer:
        if request.method == "POST" and b'"dryRun": true' in request.body:
            return Answer("respond", 200, json.dumps(recorded).encode())
        return Answer()

    proxy = FaultProxy(bq_endpoint, answer_dry_runs)
    try:
        assert warehouse(project, proxy.url).dry_run("SELECT 1") == 2**30
    finally:
        proxy.close()
    wh = warehouse(project, bq_endpoint)
    assert wh.dry_run("SELECT 1 AS x") == 0  # the emulator's own answer
    with pytest.raises(BigQueryError, match="dry run"):
        wh.dry_run(f"SELECT no_such_column FROM {wh.table_ref(MONITORING, 'nope')}")


JOBS_SCHEMA = (
    Field("creation_time", "TIMESTAMP"), Field("end_time", "TIMESTAMP"), Field("job_type", "STRING"),
    Field("query", "STRING"), Field("total_bytes_processed", "INT64"), Field("total_slot_ms", "INT64"),
    Field("destination_table", "RECORD", fields=(Field("project_id", "STRING"), Field("dataset_id", "STRING"),
                                                 Field("table_id", "STRING"))),
    Field("labels", "RECORD", mode="REPEATED", fields=(Field("key", "STRING"), Field("value", "STRING"))),
    Field("error_result", "RECORD", fields=(Field("reason", "STRING"), Field("message", "STRING"))),
)


def test_query_costs_from_recorded_jobs_by_project(bq_endpoint: str) -> None:
    """`region-us.INFORMATION_SCHEMA.JOBS_BY_PROJECT` is recorded as a table in the emulator; the proxy
    points the query at it, so the SQL that runs is ours in every other respect."""
    project = new_project(bq_endpoint, RESULTS, MONITORING, "recorded")
    wh = warehouse(project, bq_endpoint)

    def job(hour: int, dataset: str, table: str, tib: float, job_type: str = "QUERY", error: str | None = None):
        return {"creation_time": dt.datetime(2026, 10, 4, hour), "end_time": dt.datetime(2026, 10, 4, hour, 3),
                "job_type": job_type, "query": f"CREATE OR REPLACE TABLE {table}",
                "total_bytes_processed": int(tib * 2**40), "total_slot_ms": 90_000,
                "destination_table": {"project_id": project, "dataset_id": dataset, "table_id": table},
                "labels": [{"key": "experiment_slug", "value": "my-exp"}, {"key": "application", "value": "x"}],
                "error_result": {"reason": error, "message": error} if error else None}

    recorded = [job(1, RESULTS, "my_exp_enrollments_week_1", 0.5), job(2, RESULTS, "enrollments_my_exp", 2.0,
                                                                        error="resourcesExceeded"),
                job(3, MONITORING, "logs", 1.0), job(4, RESULTS, "statistics_my_exp_week_1", 0.0, job_type="LOAD"),
                {**job(5, RESULTS, "x", 1.0), "creation_time": dt.datetime(2026, 10, 5, 5)}]
    wh.load_rows("recorded", "jobs_by_project", recorded, JOBS_SCHEMA)
    region_view = f"`{project}`.`region-us`.INFORMATION_SCHEMA.JOBS_BY_PROJECT"

    def redirect(request: Request) -> Answer:
        if region_view.encode() in request.body:
            return Answer(new_body=request.body.replace(region_view.encode(), f"`{project}.recorded.jobs_by_project`".encode()))
        return Answer()

    proxy = FaultProxy(bq_endpoint, redirect)
    try:
        costs = warehouse(project, proxy.url).query_costs(dt.date(2026, 10, 4))
    finally:
        proxy.close()
    assert any(region_view.encode() in r.body for r in proxy.requests)
    assert list(costs.columns) == column_names(QUERY_COST_SCHEMA)
    assert costs["destination_table"].tolist() == [f"{RESULTS}.my_exp_enrollments_week_1", f"{RESULTS}.enrollments_my_exp"]
    assert costs["cost_usd"].tolist() == pytest.approx([0.5 * 6.25, 2.0 * 6.25])
    assert costs["experiment_slug"].tolist() == ["my-exp", "my-exp"]
    assert costs["total_slot_ms"].tolist() == [90_000, 90_000]
    assert costs["duration_minutes"].tolist() == pytest.approx([3.0, 3.0])
    assert costs["error_reason"].tolist()[1] == "resourcesExceeded"


def forbid(table: str) -> Rule:
    """BigQuery's answer to a job on a table the service account may not write."""
    body = json.dumps({"error": {"code": 403, "status": "PERMISSION_DENIED",
                                 "message": f"Access Denied: Table {table}: User does not have bigquery.tables.create",
                                 "errors": [{"reason": "accessDenied", "domain": "global",
                                             "message": f"Access Denied: Table {table}"}]}}).encode()
    return lambda r: Answer("respond", 403, body) if table.encode() in r.body else Answer()


def test_permission_error_on_one_table_names_it(bq_endpoint: str) -> None:
    project = new_project(bq_endpoint, RESULTS, MONITORING)
    proxy = FaultProxy(bq_endpoint, forbid("statistics_locked_week_1"))
    try:
        wh = warehouse(project, proxy.url)
        with pytest.raises(BigQueryError) as error:
            wh.create_table_as(RESULTS, "statistics_locked_week_1", "SELECT 1 AS x", labels=QueryLabels(experiment="locked"))
        assert wh.create_table_as(RESULTS, "statistics_open_week_1", "SELECT 1 AS x") == 1
    finally:
        proxy.close()
    assert error.value.category == "Permission denied"
    assert "creating mozanalysis.statistics_locked_week_1 (experiment locked) failed: [Permission denied]" in str(error.value)


def test_hostile_names_never_reach_sql_unquoted(bq_endpoint: str) -> None:
    project = new_project(bq_endpoint, RESULTS, MONITORING)
    wh = warehouse(project, bq_endpoint)
    wh.create_table_as(RESULTS, "keep", "SELECT 1 AS x")
    hostile = "x'); DROP TABLE `keep`; --\\"
    wh.create_table_as(RESULTS, "described", "SELECT 1 AS x", description=hostile,
                       labels=QueryLabels(experiment=hostile, extra={hostile: hostile}))
    assert wh._client.get_table(f"{project}.{RESULTS}.described").description == hostile
    with pytest.raises(BigQueryError):
        wh.create_table_as(RESULTS, "x`; DROP TABLE keep; --", "SELECT 1 AS x")
    assert "keep" in wh.list_tables(RESULTS)
