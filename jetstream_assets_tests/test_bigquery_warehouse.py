"""The BigQuery engine's pure parts and its start-up checks (no emulator needed): label rules,
Jetstream's error categories, load-job rows, credentials, engine selection, and the order of a
publication's swap (on a recording stand-in for the client)."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import re
from types import SimpleNamespace

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from google.api_core import exceptions as gexc
from google.cloud import bigquery

from jetstream_assets.core.schema import LOGS_SCHEMA, STATISTICS_SCHEMA
from jetstream_assets.dagster_defs.resources import WarehouseResource, default_resources
from jetstream_assets.engines.bigquery_warehouse import (
    BigQueryError,
    BigQueryOptions,
    BigQueryWarehouse,
    bigquery_schema,
    error_category,
    job_labels,
    label_value,
    ndjson,
    table_labels,
)
from jetstream_assets.engines.gcp_credentials import CredentialsError, check_credentials, decode_service_account_key
from jetstream_assets.engines.publication import STAGING_PREFIX
from jetstream_assets.engines.warehouse import QueryLabels
from jetstream_assets_tests.emulators import without_default_credentials


def test_labels_follow_bigquery_rules() -> None:
    assert label_value("My-Exp.Slug 2026!") == "my-exp_slug_2026_"
    assert len(label_value("x" * 100)) == 63
    labels = job_labels(QueryLabels(experiment="Tab-Groups'; DROP", destination="mozanalysis.statistics_a_week_1",
                                    extra={"schema_version": "4"}))
    assert labels == {"application": "jetstream-assets", "experiment_slug": "tab-groups___drop",
                      "destination_table": "statistics_a_week_1", "schema_version": "4"}
    assert table_labels(QueryLabels(extra={"schema_version": "4"}), now=1_700_000_000.7) == {
        "last_updated": "1700000000", "schema_version": "4"}


@pytest.mark.parametrize(
    ("error", "category"),
    [
        (gexc.BadRequest("Resources exceeded during query execution: The query could not be executed in the "
                         "allotted memory.", errors=[{"reason": "resourcesExceeded"}]), "Resources exceeded"),
        (gexc.Forbidden("Quota exceeded: Your project exceeded quota for concurrent queries.",
                        errors=[{"reason": "quotaExceeded"}]), "Quota exceeded"),
        (gexc.Forbidden("Access Denied: Table p:d.t: User does not have permission",
                        errors=[{"reason": "accessDenied"}]), "Permission denied"),
        (gexc.NotFound("Not found: Table p:d.t"), "Not found"),
        (TimeoutError("job did not finish"), "Operation timed out"),
        (gexc.BadRequest("Syntax error: Unexpected keyword"), None),
    ],
)
def test_error_categories_are_jetstreams(error: Exception, category: str | None) -> None:
    assert error_category(error) == category


def test_load_rows_become_ndjson_with_nulls_for_missing_values() -> None:
    rows = [
        {"metric": "m", "parameter": np.float64(0.5), "point": float("nan"), "lower": np.inf, "branch": pd.NA},
        {"metric": "n", "point": np.int64(3)},
    ]
    data, count = ndjson(rows, STATISTICS_SCHEMA)
    lines = [json.loads(line) for line in data.decode().splitlines()]
    assert count == 2 and lines[0]["parameter"] == 0.5 and lines[1]["point"] == 3
    assert lines[0]["point"] is None and lines[0]["lower"] is None and lines[0]["branch"] is None
    assert list(lines[0]) == [f.name for f in STATISTICS_SCHEMA]
    data, _ = ndjson([{"timestamp": dt.datetime(2026, 10, 4, 5, 6, 7), "message": "m"}], LOGS_SCHEMA)
    assert json.loads(data)["timestamp"] == "2026-10-04T05:06:07"


def test_schema_maps_to_bigquery_fields() -> None:
    fields = bigquery_schema(STATISTICS_SCHEMA)
    assert [(f.name, f.field_type) for f in fields][:3] == [("metric", "STRING"), ("statistic", "STRING"),
                                                             ("parameter", "NUMERIC")]


def test_missing_credentials_name_adc_and_the_variable(monkeypatch, tmp_path) -> None:
    without_default_credentials(monkeypatch, str(tmp_path))
    with pytest.raises(CredentialsError) as error:
        check_credentials("")
    assert "Application Default Credentials" in str(error.value)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(error.value)
    with pytest.raises(dg.Failure) as failure:
        WarehouseResource(engine="bigquery", project="p").get_warehouse()
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(failure.value)


def test_missing_credentials_fail_the_run_at_resource_init(monkeypatch, tmp_path) -> None:
    without_default_credentials(monkeypatch, str(tmp_path))

    @dg.asset
    def needs_warehouse(warehouse: WarehouseResource) -> None:
        raise AssertionError("the step must not start without credentials")

    result = dg.materialize([needs_warehouse], resources={"warehouse": WarehouseResource(engine="bigquery")},
                            raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_failure)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in str(failure.event_specific_data)


def test_key_content_never_appears_in_messages(monkeypatch) -> None:
    secret_key = {"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----SECRET"}
    encoded = base64.b64encode(json.dumps(secret_key).encode()).decode()
    assert decode_service_account_key(encoded)["type"] == "service_account"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/elsewhere/key.json")
    with pytest.raises(CredentialsError) as error:
        check_credentials(encoded)
    assert "SECRET" not in str(error.value) and encoded not in str(error.value)
    with pytest.raises(CredentialsError) as error:
        check_credentials("not base64 at all!")
    assert "JETSTREAM_GCP_CREDENTIALS" in str(error.value) and "at all" not in str(error.value)


def test_credentials_come_through_envvars_not_config(monkeypatch) -> None:
    monkeypatch.setenv("JETSTREAM_ENGINE", "bigquery")
    monkeypatch.setenv("JETSTREAM_GCP_CREDENTIALS", "c2VjcmV0")
    warehouse = default_resources()["warehouse"]
    assert isinstance(warehouse.gcp_credentials, dg.EnvVar)
    assert warehouse.location == "US" and warehouse.bigquery_endpoint == ""


def test_unknown_engine_is_named() -> None:
    with pytest.raises(dg.Failure, match="'oracle' is unknown"):
        WarehouseResource(engine="oracle").get_warehouse()


# --- publication on BigQuery: the order of the swap ------------------------------------------------------

class RecordingBigQuery:
    """Stands in for `google.cloud.bigquery.Client` in the publication tests: neither BigQuery nor the emulator
    runs here (the emulator tier needs BQEMULATOR_PYTHON). Tables live in a dict; every change is recorded."""

    _DDL = re.compile(r"^(CREATE OR REPLACE TABLE|CREATE OR REPLACE VIEW|DROP TABLE IF EXISTS|DROP VIEW IF EXISTS) `([^`]+)`")

    def __init__(self) -> None:
        self.tables: dict[str, SimpleNamespace] = {}
        self.changes: list[tuple[str, str]] = []
        self.failing_copy_to: str | None = None

    def _add(self, table_id: str, kind: str, description: str = "") -> None:
        self.tables[table_id] = SimpleNamespace(
            table_id=table_id.rsplit(".", 1)[-1], table_type=kind, description=description, num_rows=1,
            created=dt.datetime.now(dt.timezone.utc), schema=[bigquery.SchemaField("point", "FLOAT64")], labels={})

    def query(self, sql: str, **_) -> SimpleNamespace:
        action, table_id = self._DDL.match(sql).groups()
        if action.startswith("DROP"):
            self.tables.pop(table_id, None)
        else:
            description = re.search(r"description = '([^']*)'", sql).group(1)
            self._add(table_id, "VIEW" if "VIEW" in action else "TABLE", description)
        self.changes.append((action.split()[0].lower() + (" view" if "VIEW" in action else ""), table_id))
        return SimpleNamespace(result=lambda **_: None)

    def copy_table(self, source: str, destination: str, **_) -> SimpleNamespace:
        if destination == self.failing_copy_to:
            raise gexc.InternalServerError("backend error")
        self.tables[destination] = SimpleNamespace(**vars(self.tables[source]) | {"table_id": destination.rsplit(".", 1)[-1]})
        self.changes.append(("copy", destination))
        return SimpleNamespace(result=lambda **_: None)

    def get_table(self, table_id: str, **_) -> SimpleNamespace:
        if table_id not in self.tables:
            raise gexc.NotFound(table_id)
        return self.tables[table_id]

    def list_tables(self, dataset: str, **_) -> list[SimpleNamespace]:
        return [t for table_id, t in self.tables.items() if table_id.startswith(dataset + ".")]

    def update_table(self, table: SimpleNamespace, fields: list[str], **_) -> SimpleNamespace:
        return table


def recording_warehouse() -> tuple[BigQueryWarehouse, RecordingBigQuery]:
    client = RecordingBigQuery()
    options = BigQueryOptions(retries=False, storage_read_api=False)
    return BigQueryWarehouse(lambda: contextlib.nullcontext(client), "p", "d", "m", options), client


def published(client: RecordingBigQuery) -> list[str]:
    return sorted(t.table_id for t in client.tables.values() if not t.table_id.startswith(STAGING_PREFIX))


def test_bigquery_publication_copies_every_table_before_dropping_or_recreating_views() -> None:
    warehouse, client = recording_warehouse()
    with warehouse.publication("d", "exp") as pub:
        for window in (1, 2):
            pub.create_table_as(f"statistics_exp_week_{window}", "SELECT 1.0 AS point", description="exp")
        pub.create_window_view("statistics_exp_weekly", "statistics_exp_week_")
    client.changes.clear()
    with warehouse.publication("d", "exp") as pub:  # a rerun: window 2 is no longer configured
        pub.drop(["statistics_exp_week_1", "statistics_exp_week_2", "statistics_exp_weekly"])
        pub.create_table_as("statistics_exp_week_1", "SELECT 2.0 AS point", description="exp")
        pub.create_window_view("statistics_exp_weekly", "statistics_exp_week_")
    kinds = [kind for kind, _ in client.changes]
    assert kinds == ["create", "copy", "drop", "create view", "drop"]  # staging, swap, stale, view, staging
    assert client.changes[1] == ("copy", "p.d.statistics_exp_week_1")
    assert client.changes[2] == ("drop", "p.d.statistics_exp_week_2")
    assert published(client) == ["statistics_exp_week_1", "statistics_exp_weekly"]
    assert not [t for t in client.tables.values() if t.table_id.startswith(STAGING_PREFIX)]


def test_bigquery_publication_that_fails_to_copy_drops_nothing_published() -> None:
    warehouse, client = recording_warehouse()
    with warehouse.publication("d", "exp") as pub:
        pub.create_table_as("statistics_exp_week_1", "SELECT 1.0 AS point", description="exp")
    client.failing_copy_to = "p.d.statistics_exp_week_1"
    with pytest.raises(BigQueryError, match="publishing d.statistics_exp_week_1"):
        with warehouse.publication("d", "exp") as pub:
            pub.drop(["statistics_exp_week_1"])
            pub.create_table_as("statistics_exp_week_1", "SELECT 2.0 AS point", description="exp")
    assert published(client) == ["statistics_exp_week_1"]
    assert list(client.tables) == ["p.d.statistics_exp_week_1"]  # the staging table is gone too
