"""The production engine's `latest_date` against bqemulator: a day-partitioned table answers from
INFORMATION_SCHEMA.PARTITIONS, an unpartitioned one (or a view) from MAX over its date column."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from google.cloud import bigquery

from jetstream_assets.dagster_defs.resources import WarehouseResource
from jetstream_assets_tests.emulators import bigquery_emulator_or_skip, new_project

pytestmark = pytest.mark.bigquery_emulator

SINCE = dt.date(2026, 10, 1)


@pytest.fixture(scope="module")
def bq_endpoint() -> Iterator[str]:
    with bigquery_emulator_or_skip() as endpoint:
        yield endpoint


def _table(client: bigquery.Client, table_id: str, days: list[dt.date], partitioned: bool) -> None:
    table = bigquery.Table(table_id, schema=[bigquery.SchemaField("submission_date", "DATE"),
                                             bigquery.SchemaField("client_id", "STRING")])
    if partitioned:
        table.time_partitioning = bigquery.TimePartitioning(field="submission_date")
    client.create_table(table)
    rows = [{"submission_date": d.isoformat(), "client_id": "c"} for d in days]
    client.load_table_from_json(rows, table_id, job_config=bigquery.LoadJobConfig(schema=table.schema)).result()


@pytest.mark.parametrize("partitioned", [True, False])
def test_latest_date_of_a_source_table(bq_endpoint: str, partitioned: bool) -> None:
    project = new_project(bq_endpoint, "mozanalysis", "monitoring", "telemetry")
    wh = WarehouseResource(engine="bigquery", project=project, bigquery_endpoint=bq_endpoint).get_warehouse()
    _table(wh._client, f"{project}.telemetry.clients_daily", [dt.date(2026, 9, 30), dt.date(2026, 10, 7)], partitioned)
    assert wh.latest_date(f"{project}.telemetry.clients_daily", "submission_date", since=SINCE) == dt.date(2026, 10, 7)
    assert wh.latest_date("telemetry.clients_daily", "submission_date", since=SINCE) == dt.date(2026, 10, 7)
    assert wh.latest_date(f"`{project}.telemetry.clients_daily`", "submission_date",
                          since=dt.date(2026, 10, 8)) is None
