"""The production engines' adapters (BigQuery, GCS) built from the resources' settings, once per process.

Kept apart from `resources` so that a run on the embedded engine never imports the Google Cloud clients."""

from __future__ import annotations

import contextlib
import functools

from dagster_gcp import BigQueryResource, GCSResource
from dagster_gcp.bigquery.utils import setup_gcp_creds

from jetstream_assets.engines.bigquery_warehouse import BigQueryOptions, BigQueryWarehouse
from jetstream_assets.engines.gcp_credentials import (
    CredentialsError,
    check_credentials,
    emulator_bigquery_client,
    emulator_storage_client,
)
from jetstream_assets.engines.gcs_bucket import GCSBucket

__all__ = ["CredentialsError", "bigquery_warehouse", "gcs_bucket"]


@functools.lru_cache(maxsize=8)
def bigquery_warehouse(
    project: str, dataset: str, monitoring_dataset: str, location: str, gcp_credentials: str, endpoint: str
) -> BigQueryWarehouse:
    """Credentials and datasets are checked once per process, before the first query."""
    if endpoint:
        client = emulator_bigquery_client(project, location, endpoint)
        factory = lambda: contextlib.nullcontext(client)  # noqa: E731
        # an emulator answers in seconds; fail fast instead of retrying its errors for minutes
        options = BigQueryOptions(location=location, api_timeout_seconds=30.0, job_timeout_seconds=120.0,
                                  retries=False, storage_read_api=False)
    else:
        check_credentials(gcp_credentials)
        factory = BigQueryResource(project=project, location=location, gcp_credentials=gcp_credentials or None).get_client
        options = BigQueryOptions(location=location)
    warehouse = BigQueryWarehouse(factory, project, dataset, monitoring_dataset, options)
    warehouse.verify_datasets()
    return warehouse


@functools.lru_cache(maxsize=8)
def gcs_bucket(url: str, project: str, gcp_credentials: str, endpoint: str) -> GCSBucket:
    if endpoint:
        return GCSBucket(emulator_storage_client(project, endpoint), url, timeout_seconds=30.0,
                         retry_deadline_seconds=30.0)
    check_credentials(gcp_credentials)
    # the client reads the key when it is built, so dagster-gcp's temporary key file may go afterwards
    with setup_gcp_creds(gcp_credentials) if gcp_credentials else contextlib.nullcontext():
        client = GCSResource(project=project).get_client()
    return GCSBucket(client, url)
