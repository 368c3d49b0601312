"""Google Cloud credentials for the production engine, checked before any work starts.

Production authenticates with Application Default Credentials (ADC) or a base64 service-account key
(dagster-gcp's `gcp_credentials`). An emulator endpoint (tests, laptops) uses anonymous credentials
only, so a real key can never be sent to a local server. No function here puts a key's content, or
any part of it, into a message.
"""

from __future__ import annotations

import base64
import binascii
import json
import os

import google.auth
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import DefaultCredentialsError
from google.cloud import bigquery, storage

MISSING_CREDENTIALS_HELP = (
    "no Google Cloud credentials found for JETSTREAM_ENGINE=bigquery. Use Application Default Credentials "
    "(ADC): run `gcloud auth application-default login` on a laptop, set GOOGLE_APPLICATION_CREDENTIALS to "
    "a service-account key file, or run on GKE with Workload Identity; or set JETSTREAM_GCP_CREDENTIALS to a "
    "base64-encoded service-account key"
)


class CredentialsError(RuntimeError):
    """Credentials are missing or unusable; the message says what to set, never what was set."""


def decode_service_account_key(encoded: str) -> dict:
    """The service-account key inside a base64 setting (dagster-gcp's format)."""
    try:
        key = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        raise CredentialsError(
            "JETSTREAM_GCP_CREDENTIALS is not a base64-encoded JSON key (encode it with `base64 -w0 key.json`)"
        ) from None
    if not isinstance(key, dict) or key.get("type") not in ("service_account", "authorized_user",
                                                              "external_account"):
        raise CredentialsError("JETSTREAM_GCP_CREDENTIALS does not hold a Google credentials JSON (no known `type`)")
    return key


def check_credentials(encoded_key: str = "") -> str:
    """Raises CredentialsError unless credentials are usable; returns where they come from (no secret)."""
    if encoded_key:
        decode_service_account_key(encoded_key)
        if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
            # dagster-gcp refuses the combination at the first query; say so before any work starts
            raise CredentialsError(
                "both JETSTREAM_GCP_CREDENTIALS and GOOGLE_APPLICATION_CREDENTIALS are set: unset one of them"
            )
        return "service-account key from JETSTREAM_GCP_CREDENTIALS"
    try:
        google.auth.default()
    except DefaultCredentialsError:
        raise CredentialsError(MISSING_CREDENTIALS_HELP) from None
    if os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
        return "Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS)"
    return "Application Default Credentials"


def emulator_bigquery_client(project: str, location: str, endpoint: str) -> bigquery.Client:
    """A BigQuery client for a local emulator: anonymous credentials, the given API endpoint."""
    return bigquery.Client(
        project=project, location=location, credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=endpoint),
    )


def emulator_storage_client(project: str, endpoint: str) -> storage.Client:
    """A Cloud Storage client for a local emulator: anonymous credentials, the given API endpoint."""
    return storage.Client(
        project=project, credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=endpoint)
    )
