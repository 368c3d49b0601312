"""Smoke test on real Google Cloud, skipped unless JETSTREAM_LIVE_GCP_PROJECT is set (with ADC).

JETSTREAM_LIVE_GCP_DATASET (default `jetstream_assets_ci`) must exist in that project, as must the
monitoring dataset JETSTREAM_LIVE_GCP_MONITORING (default the same dataset); the test writes and
drops its own uniquely named tables only. JETSTREAM_LIVE_GCS_BUCKET (gs://…) adds a bucket round trip.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from google.cloud import storage

from jetstream_assets.core.schema import STATISTICS_SCHEMA
from jetstream_assets.dagster_defs.resources import BucketResource, WarehouseResource
from jetstream_assets.engines.gcs_bucket import parse_gcs_url
from jetstream_assets.engines.warehouse import QueryLabels

PROJECT = os.environ.get("JETSTREAM_LIVE_GCP_PROJECT", "")
DATASET = os.environ.get("JETSTREAM_LIVE_GCP_DATASET", "jetstream_assets_ci")
MONITORING = os.environ.get("JETSTREAM_LIVE_GCP_MONITORING", DATASET)
BUCKET = os.environ.get("JETSTREAM_LIVE_GCS_BUCKET", "")

pytestmark = pytest.mark.skipif(not PROJECT, reason="JETSTREAM_LIVE_GCP_PROJECT is not set (live GCP smoke test)")


def test_live_bigquery_round_trip() -> None:
    wh = WarehouseResource(engine="bigquery", project=PROJECT, dataset=DATASET, monitoring_dataset=MONITORING,
                           location=os.environ.get("JETSTREAM_LOCATION", "US")).get_warehouse()
    prefix = f"statistics_live_{uuid.uuid4().hex[:8]}_week_"
    labels = QueryLabels(experiment="live-smoke", extra={"schema_version": "4"})
    rows = [{"metric": "m", "statistic": "mean", "branch": "control", "point": 1.0, "segment": "all",
             "analysis_basis": "enrollments"}]
    try:
        assert wh.load_rows(DATASET, prefix + "1", rows, STATISTICS_SCHEMA, description="live-smoke", labels=labels) == 1
        sql = f"SELECT * FROM {wh.table_ref(DATASET, prefix + '1')}"
        assert wh.create_table_as(DATASET, prefix + "2", sql, description="live-smoke", labels=labels) == 1
        assert wh.dry_run(sql) > 0
        wh.create_window_view(DATASET, prefix + "view", prefix)
        view = wh.query(f"SELECT window_index FROM {wh.table_ref(DATASET, prefix + 'view')} ORDER BY 1")
        assert view["window_index"].tolist() == [1, 2]
        table = wh._client.get_table(f"{PROJECT}.{DATASET}.{prefix}2")
        assert table.description == "live-smoke" and table.labels["schema_version"] == "4"
        costs = wh.query_costs(dt.datetime.now(dt.timezone.utc).date())
        assert list(costs.columns)[:3] == ["submission_timestamp", "destination_table", "query"]
    finally:
        wh.drop_tables(DATASET, [prefix + "view", prefix + "1", prefix + "2"])
    assert not wh.list_tables(DATASET, prefix)


@pytest.mark.skipif(not BUCKET, reason="JETSTREAM_LIVE_GCS_BUCKET is not set")
def test_live_gcs_round_trip() -> None:
    bucket = BucketResource(bucket=BUCKET, project=PROJECT).get_bucket()
    key = f"ci/smoke_{uuid.uuid4().hex[:8]}.json"
    try:
        bucket.write_json(key, {"ok": True})
        assert bucket.read_json(key) == {"ok": True} and bucket.updated(key) is not None
    finally:
        name, prefix = parse_gcs_url(BUCKET)
        storage.Client(project=PROJECT).bucket(name).blob(f"{prefix}/{key}" if prefix else key).delete()
