"""The per-experiment pipeline (snapshot → enrollments → metrics → statistics → exports) through Dagster
on BigQuery + GCS emulators, compared with the DuckDB engine on the same sample (marker
`bigquery_emulator`; needs BQEMULATOR_PYTHON and gcp-storage-emulator).

Emulator limits, so both engines analyse a copy of the bundled metric-hub configs with two edits:
bqemulator resolves a persistent UDF only when called by its whole back-quoted name, so
`mozfun.map.get_key(...)` (the day-zero guard of `experiments_column_type = "simple"`) cannot run
there: the guard is off (`"none"`); and its parser rejects the unquoted dashed project names that
BigQuery accepts in FROM (`moz-fx-data-shared-prod.telemetry.clients_daily`): they are back-quoted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from mozilla_nimbus_schemas.jetstream import AnalysisErrors, Statistics

from jetstream_assets.core.schema import Field
from jetstream_assets.dagster_defs.resources import (
    BucketResource,
    ExperimenterResource,
    MetricHubResource,
    WarehouseResource,
)
from jetstream_assets.engines.bigquery_warehouse import BigQueryOptions, BigQueryWarehouse
from jetstream_assets.engines.gcp_credentials import emulator_bigquery_client, emulator_storage_client
from jetstream_assets.sample.experimenter_payload import experimenter_payload
from jetstream_assets.sample.telemetry import SampleTelemetry, generate_telemetry, write_telemetry
from jetstream_assets.settings import bundled_metric_hub
from jetstream_assets_tests.emulators import Answer, FaultProxy, Request, bigquery_emulator_or_skip, gcs_emulator, new_project
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.run_tags import daily_tags
from jetstream_assets_tests.fixtures_sample import ANALYSIS_ASSETS, analyse, load_snapshot
from jetstream_assets_tests.small_sample import DATA_END, DATA_START, SEED, analysis_resources, like_tab_groups

pytestmark = pytest.mark.bigquery_emulator

SLUG = "bq-parity"
SLUG_TABLE = "bq_parity"
DATE = dt.date(2026, 10, 4)  # the first weekly window of a tab-groups-like design is ready
DESIGN = like_tab_groups(SLUG, clients=300)
SHARED_PROJECT = "moz-fx-data-shared-prod"  # the project the bundled configs' data sources name
BUCKET = "mozanalysis-test"
RESULTS, MONITORING = "mozanalysis", "monitoring"
KEY_COLUMNS = ["metric", "statistic", "parameter", "branch", "comparison", "comparison_to_branch", "segment",
               "analysis_basis"]
VALUE_COLUMNS = ["point", "lower", "upper", "ci_width"]

EVENTS_SCHEMA = (
    Field("client_id", "STRING"), Field("submission_timestamp", "TIMESTAMP"), Field("sample_id", "INT64"),
    Field("event_category", "STRING"), Field("event_name", "STRING"), Field("event_extra", "JSON"),
)
CLIENTS_DAILY_SCHEMA = (
    Field("client_id", "STRING"), Field("submission_date", "DATE"), Field("sample_id", "INT64"),
    Field("active_hours_sum", "FLOAT64"), Field("subsession_hours_sum", "FLOAT64"),
    Field("scalar_parent_browser_engagement_total_uri_count_sum", "INT64"), Field("search_count_all", "INT64"),
    Field("ad_clicks_count_all", "INT64"),
    Field("experiments", "RECORD", mode="REPEATED", fields=(Field("key", "STRING"), Field("value", "STRING"))),
)


def load_telemetry(endpoint: str, project: str, telemetry: SampleTelemetry) -> None:
    """The sample's tables with BigQuery's shapes (JSON extras, `experiments` as key/value records)."""
    events = [{**r, "event_extra": json.loads(r["event_extra"])} for r in telemetry.events.to_dict("records")]
    clients_daily = [
        {**r, "submission_date": pd.Timestamp(r["submission_date"]).date(),
         "experiments": [{"key": r["experiment_slug"], "value": r["experiment_branch"]}] if r["experiment_slug"] else []}
        for r in telemetry.clients_daily.to_dict("records")
    ]
    client = emulator_bigquery_client(project, "US", endpoint)
    for dataset in ("telemetry", "firefox_desktop"):
        client.create_dataset(f"{project}.{dataset}", exists_ok=True, timeout=20)
    options = BigQueryOptions(api_timeout_seconds=30, job_timeout_seconds=120, retries=False, storage_read_api=False)
    loader = BigQueryWarehouse(lambda: contextlib.nullcontext(client), project, "telemetry", "telemetry", options)
    loader.load_rows("firefox_desktop", "events_stream", events, EVENTS_SCHEMA)
    for start in range(0, len(clients_daily), 10_000):  # single-request loads stay under 5 MiB each
        loader.load_rows("telemetry", "clients_daily", clients_daily[start:start + 10_000], CLIENTS_DAILY_SCHEMA,
                         append=start > 0)


def metric_hub_without_udf_guard(folder: Path) -> str:
    shutil.copytree(bundled_metric_hub(), folder)
    for toml in (folder / "definitions").glob("*.toml"):
        text = toml.read_text().replace('experiments_column_type = "simple"', 'experiments_column_type = "none"')
        toml.write_text(re.sub(r'from_expression = "([a-z0-9-]+\.[a-z0-9_]+\.[a-z0-9_]+)"', r'from_expression = "`\1`"', text))
    return str(folder)


@dataclass(frozen=True)
class Sample:
    telemetry: SampleTelemetry
    experimenter_json: str
    metric_hub: str
    duckdb_home: Path


@pytest.fixture(scope="module")
def bq_endpoint() -> Iterator[str]:
    with bigquery_emulator_or_skip() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def sample(tmp_path_factory, bq_endpoint: str) -> Sample:
    """The sample in both engines' telemetry, and the DuckDB engine's analysis of it (the reference)."""
    root = tmp_path_factory.mktemp("bq_pipeline")
    telemetry = generate_telemetry([DESIGN], data_start=DATA_START, data_end=DATA_END, background_clients=50, seed=SEED)
    experimenter_json = root / "experimenter_v8.json"
    experimenter_json.write_text(json.dumps(experimenter_payload([DESIGN])))
    home = root / "duckdb_home"
    home.mkdir()
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        write_telemetry(con, telemetry)
    result = Sample(telemetry, str(experimenter_json), metric_hub_without_udf_guard(root / "metric-hub"), home)
    load_telemetry(bq_endpoint, SHARED_PROJECT, telemetry)
    resources = analysis_resources(home, experimenter_url=result.experimenter_json, metric_hub_path=result.metric_hub)
    with dg.instance_for_test() as instance:
        load_snapshot(instance, resources)
        analyse(instance, resources, SLUG, DATE)
    return result


@contextlib.contextmanager
def bigquery_run(sample: Sample, endpoint: str, warehouse_endpoint: str | None = None) -> Iterator[tuple]:
    """A fresh project and bucket; yields (resources, project, gcs endpoint)."""
    project = new_project(endpoint, RESULTS, MONITORING)
    load_telemetry(endpoint, project, sample.telemetry)  # the enrollments query reads the job project's `telemetry`
    with gcs_emulator() as gcs:
        emulator_storage_client(project, gcs).create_bucket(BUCKET)
        resources = {
            "warehouse": WarehouseResource(engine="bigquery", project=project,
                                           bigquery_endpoint=warehouse_endpoint or endpoint),
            "bucket": BucketResource(bucket=f"gs://{BUCKET}", project=project, gcs_endpoint=gcs),
            "experimenter": ExperimenterResource(url=sample.experimenter_json),
            "metric_hub": MetricHubResource(path=sample.metric_hub),
        }
        yield resources, project, gcs


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["parameter"] = [float(v) if isinstance(v, Decimal) else v for v in frame["parameter"]]
    frame = frame.astype({c: "float64" for c in VALUE_COLUMNS + ["parameter"]})
    return frame.sort_values(KEY_COLUMNS, na_position="first", kind="stable").reset_index(drop=True)


def duckdb_statistics(home: Path) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        names = [n for (n,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = ? AND table_name LIKE ?",
            [RESULTS, f"statistics_{SLUG_TABLE}_%"]).fetchall()]
        return {n: canonical(con.execute(f'SELECT * FROM {RESULTS}."{n}"').df()) for n in names}


def bigquery_statistics(warehouse) -> dict[str, pd.DataFrame]:
    names = [n for n in warehouse.list_tables(RESULTS, f"statistics_{SLUG_TABLE}_") if n[-1].isdigit()]
    return {n: canonical(warehouse.query(f"SELECT * FROM {warehouse.table_ref(RESULTS, n)}")) for n in names}


def assert_same_statistics(expected: pd.DataFrame, actual: pd.DataFrame) -> None:
    assert len(actual) == len(expected)
    pd.testing.assert_frame_equal(actual[KEY_COLUMNS], expected[KEY_COLUMNS], check_dtype=False)
    for column in VALUE_COLUMNS:  # sums run in another order on each engine: float noise only
        pd.testing.assert_series_equal(actual[column], expected[column], check_exact=False, rtol=1e-7, atol=1e-9)


def test_pipeline_on_emulators_matches_duckdb(sample: Sample, bq_endpoint: str) -> None:
    with bigquery_run(sample, bq_endpoint) as (resources, project, gcs), dg.instance_for_test() as instance:
        assert load_snapshot(instance, resources).success
        result = analyse(instance, resources, SLUG, DATE)
        assert result.success
        warehouse = resources["warehouse"].get_warehouse()
        expected, actual = duckdb_statistics(sample.duckdb_home), bigquery_statistics(warehouse)
        assert sorted(actual) == sorted(expected) and f"statistics_{SLUG_TABLE}_week_1" in actual
        for name in expected:
            assert_same_statistics(expected[name], actual[name])
        assert f"enrollments_{SLUG_TABLE}" in warehouse.list_tables(RESULTS)
        table = warehouse._client.get_table(f"{project}.{RESULTS}.statistics_{SLUG_TABLE}_week_1")
        assert table.description == SLUG and table.labels["schema_version"] == "4"

        bucket = resources["bucket"].get_bucket()
        weekly = bucket.read_json(f"statistics/statistics_{SLUG_TABLE}_weekly.json")
        Statistics.model_validate(weekly)
        local = json.loads((sample.duckdb_home / "bucket" / "statistics" / f"statistics_{SLUG_TABLE}_weekly.json").read_text())
        assert len(weekly) == len(local) and {r["window_index"] for r in weekly} == {"1"}
        AnalysisErrors.model_validate(bucket.read_json(f"errors/errors_{SLUG_TABLE}.json"))
        assert bucket.read_json(f"metadata/metadata_{SLUG_TABLE}.json")["schema_version"] == 4
        objects = {b.name for b in emulator_storage_client(project, gcs).list_blobs(BUCKET)}
        assert objects == {p.relative_to(sample.duckdb_home / "bucket").as_posix()
                           for p in (sample.duckdb_home / "bucket").rglob("*") if p.is_file()}


def test_resources_exceeded_on_one_metrics_query_is_logged_and_the_rest_continues(
    sample: Sample, bq_endpoint: str
) -> None:
    """BigQuery refuses the week-1 `enrollments` metrics query ("Resources exceeded"); the failure is
    logged with Jetstream's category and the experiment, and the other metrics tables, statistics and
    files are still produced."""
    poisoned = f'"destination_table": "{SLUG_TABLE}_enrollments_week_1"'.encode()
    refusal = json.dumps({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message":
                          "Resources exceeded during query execution: Not enough resources for query planning",
                          "errors": [{"reason": "resourcesExceeded", "domain": "global",
                                      "message": "Resources exceeded during query execution"}]}}).encode()

    def refuse(request: Request) -> Answer:
        if poisoned in request.body and b'"dryRun": true' not in request.body:
            return Answer("respond", 400, refusal)
        return Answer()

    proxy = FaultProxy(bq_endpoint, refuse)
    try:
        with bigquery_run(sample, bq_endpoint, proxy.url) as (resources, project, gcs), \
                dg.instance_for_test() as instance:
            load_snapshot(instance, resources)
            instance.add_dynamic_partitions(experiments_partitions.name, [SLUG])
            dg.materialize(ANALYSIS_ASSETS, partition_key=SLUG, tags=daily_tags(DATE), resources=resources,
                                 instance=instance, raise_on_error=False)
            warehouse = resources["warehouse"].get_warehouse()
            tables = warehouse.list_tables(RESULTS)
            logs = warehouse.query(f"SELECT * FROM {warehouse.table_ref(MONITORING, 'logs')}")
            errors = resources["bucket"].get_bucket().read_json(f"errors/errors_{SLUG_TABLE}.json")
    finally:
        proxy.close()
    assert f"{SLUG_TABLE}_enrollments_week_1" not in tables
    assert f"{SLUG_TABLE}_exposures_week_1" in tables and f"statistics_{SLUG_TABLE}_week_1" in tables
    refused = logs[logs["message"].str.contains("Resources exceeded", regex=False)]
    assert len(refused) >= 1 and set(refused["experiment"]) == {SLUG}
    assert set(refused["exception_type"]) == {"BigQueryError"}
    assert any("[Resources exceeded]" in e["message"] for e in errors)
