"""The BigQuery engine's pure parts and its start-up checks (no emulator needed): label rules,
Jetstream's error categories, load-job rows, credentials and engine selection."""

from __future__ import annotations

import base64
import datetime as dt
import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from google.api_core import exceptions as gexc

from jetstream_assets.core.schema import LOGS_SCHEMA, STATISTICS_SCHEMA
from jetstream_assets.dagster_defs.resources import WarehouseResource, default_resources
from jetstream_assets.engines.bigquery_warehouse import (
    bigquery_schema,
    error_category,
    job_labels,
    label_value,
    ndjson,
    table_labels,
)
from jetstream_assets.engines.gcp_credentials import CredentialsError, check_credentials, decode_service_account_key
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
