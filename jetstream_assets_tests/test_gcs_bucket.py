"""GCSBucket against gcp-storage-emulator (in-process, free port): atomic JSON writes, retries on
network errors with no partial object, `updated` for the re-export rule, and resource selection."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator

import dagster as dg
import pytest

from jetstream_assets.dagster_defs.resources import BucketResource
from jetstream_assets.engines.bucket import BucketError
from jetstream_assets.engines.gcp_credentials import emulator_storage_client
from jetstream_assets.engines.gcs_bucket import GCSBucket, parse_gcs_url
from jetstream_assets_tests.emulators import Answer, FaultProxy, Request, gcs_emulator, without_default_credentials

pytest.importorskip("gcp_storage_emulator")

BUCKET = "exp-results"
KEY = "statistics/statistics_my_exp_weekly.json"
PAYLOAD = [{"metric": "active_hours", "statistic": "mean", "branch": "control", "point": 1.5, "window_index": "1"}]


@pytest.fixture
def gcs_endpoint() -> Iterator[str]:
    with gcs_emulator() as endpoint:
        emulator_storage_client("test-proj", endpoint).create_bucket(BUCKET)
        yield endpoint


def _objects(endpoint: str) -> dict[str, bytes]:
    client = emulator_storage_client("test-proj", endpoint)
    return {b.name: b.download_as_bytes() for b in client.list_blobs(BUCKET)}


def _bucket(endpoint: str, url: str = f"gs://{BUCKET}", **kw) -> GCSBucket:
    return GCSBucket(emulator_storage_client("test-proj", endpoint), url, **kw)


def _is_upload(request: Request) -> bool:
    return request.method == "POST" and "/upload/" in request.path


def test_parse_gcs_url() -> None:
    assert parse_gcs_url("gs://mozanalysis") == ("mozanalysis", "")
    assert parse_gcs_url("gs://mozanalysis/staging/") == ("mozanalysis", "staging")
    with pytest.raises(BucketError):
        parse_gcs_url("s3://mozanalysis")


def test_write_read_and_updated(gcs_endpoint: str) -> None:
    bucket = _bucket(gcs_endpoint)
    assert bucket.updated(KEY) is None
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=5)
    assert bucket.write_json(KEY, PAYLOAD) == f"gs://{BUCKET}/{KEY}"
    assert bucket.read_json(KEY) == PAYLOAD
    updated = bucket.updated(KEY)
    assert updated is not None and updated.tzinfo is None and updated >= before
    blob = emulator_storage_client("test-proj", gcs_endpoint).bucket(BUCKET).get_blob(KEY)
    assert blob.content_type == "application/json"
    with pytest.raises(BucketError, match="does not exist"):
        bucket.read_json("statistics/missing.json")


def test_overwrite_replaces_whole_object_and_leaves_no_temporary_object(gcs_endpoint: str) -> None:
    bucket = _bucket(gcs_endpoint, f"gs://{BUCKET}/v1")
    bucket.write_json(KEY, PAYLOAD)
    bucket.write_json(KEY, PAYLOAD * 3)
    assert _objects(gcs_endpoint) == {f"v1/{KEY}": json.dumps(PAYLOAD * 3, indent=1).encode()}


def test_rejects_keys_outside_the_prefix(gcs_endpoint: str) -> None:
    with pytest.raises(BucketError):
        _bucket(gcs_endpoint).write_json("../escape.json", PAYLOAD)


def test_connection_reset_during_upload_is_retried_without_partial_object(gcs_endpoint: str) -> None:
    resets = []

    def reset_first_upload(request: Request) -> Answer:
        if _is_upload(request) and not resets:
            resets.append(request)
            return Answer("drop")
        return Answer()

    proxy = FaultProxy(gcs_endpoint, reset_first_upload)
    try:
        _bucket(proxy.url).write_json(KEY, PAYLOAD)
    finally:
        proxy.close()
    assert len(resets) == 1 and sum(_is_upload(r) for r in proxy.requests) == 2
    assert _objects(gcs_endpoint) == {KEY: json.dumps(PAYLOAD, indent=1).encode()}


def test_lost_response_after_upload_landed_counts_as_success(gcs_endpoint: str) -> None:
    """The first upload reaches the server but its answer is lost; the retry (same precondition)
    must not fail nor duplicate anything."""
    bucket = _bucket(gcs_endpoint)
    bucket.write_json(KEY, PAYLOAD)
    lost = []

    def lose_first_answer(request: Request) -> Answer:
        if _is_upload(request) and not lost:
            lost.append(request)
            return Answer("drop_after_forward")
        return Answer()

    proxy = FaultProxy(gcs_endpoint, lose_first_answer)
    try:
        _bucket(proxy.url).write_json(KEY, PAYLOAD * 2)
    finally:
        proxy.close()
    assert lost and _objects(gcs_endpoint) == {KEY: json.dumps(PAYLOAD * 2, indent=1).encode()}


def test_persistent_network_failure_keeps_previous_version(gcs_endpoint: str) -> None:
    _bucket(gcs_endpoint).write_json(KEY, PAYLOAD)
    proxy = FaultProxy(gcs_endpoint, lambda r: Answer("drop") if _is_upload(r) else Answer())
    try:
        with pytest.raises(BucketError, match="previous version is unchanged"):
            _bucket(proxy.url, retry_deadline_seconds=1.5).write_json(KEY, PAYLOAD * 5)
    finally:
        proxy.close()
    assert sum(_is_upload(r) for r in proxy.requests) >= 2  # it did retry
    assert _objects(gcs_endpoint) == {KEY: json.dumps(PAYLOAD, indent=1).encode()}


def test_bucket_resource_selects_gcs_for_gs_urls(gcs_endpoint: str) -> None:
    resource = BucketResource(bucket=f"gs://{BUCKET}/exports", project="test-proj", gcs_endpoint=gcs_endpoint)
    bucket = resource.get_bucket()
    assert isinstance(bucket, GCSBucket)
    bucket.write_json("metadata/metadata_x.json", {"schema_version": 4})
    assert set(_objects(gcs_endpoint)) == {"exports/metadata/metadata_x.json"}


def test_missing_credentials_fail_before_any_work(monkeypatch, tmp_path) -> None:
    without_default_credentials(monkeypatch, str(tmp_path))
    with pytest.raises(dg.Failure) as failure:
        BucketResource(bucket="gs://no-creds-bucket").get_bucket()
    message = str(failure.value)
    assert "Application Default Credentials" in message and "GOOGLE_APPLICATION_CREDENTIALS" in message


def test_bad_key_is_reported_without_its_content(monkeypatch, tmp_path) -> None:
    without_default_credentials(monkeypatch, str(tmp_path))
    secret = base64.b64encode(json.dumps({"private_key": "SECRET-MATERIAL"}).encode()).decode()
    with pytest.raises(dg.Failure) as failure:
        BucketResource(bucket="gs://bad-key-bucket", gcp_credentials=secret).get_bucket()
    assert "JETSTREAM_GCP_CREDENTIALS" in str(failure.value)
    assert "SECRET-MATERIAL" not in str(failure.value) and secret not in str(failure.value)
