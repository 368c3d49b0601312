"""The production bucket: Google Cloud Storage, through a client from dagster-gcp's `GCSResource`.

Atomicity: a GCS object write is atomic by itself: a new generation becomes visible only when its
upload is finalised, and a failed or interrupted upload leaves the previous generation (or nothing)
in place. So each JSON file is one upload of the complete bytes, with no temporary object to copy
and clean up (the temp-name-and-move the local folder needs). The upload carries a generation
precondition (the generation it replaces, or "must not exist"), which makes retrying it after a
network error safe: a retry can never overwrite a newer file written by someone else in between,
and a retry whose first attempt did land is recognised by its checksum.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from jetstream_assets.engines.bucket import Bucket, BucketError

JSON_CONTENT_TYPE = "application/json"


def parse_gcs_url(url: str) -> tuple[str, str]:
    """`gs://NAME[/prefix]` -> (bucket name, object prefix without trailing slash)."""
    if not url.startswith("gs://") or len(url) <= len("gs://"):
        raise BucketError(f"{url!r} is not a gs://BUCKET[/PREFIX] URL")
    name, _, prefix = url[len("gs://"):].partition("/")
    return name, prefix.strip("/")


def _md5_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


class GCSBucket(Bucket):
    def __init__(self, client: storage.Client, url: str, *, timeout_seconds: float = 60.0,
                 retry_deadline_seconds: float = 120.0):
        self.name, self.prefix = parse_gcs_url(url)
        self._bucket = client.bucket(self.name)
        self._timeout = timeout_seconds
        # transient errors (connection resets, 429, 5xx) are retried; the precondition keeps it idempotent
        self._retry: Retry = DEFAULT_RETRY.with_timeout(retry_deadline_seconds).with_delay(initial=0.2, maximum=5.0)

    def _object(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise BucketError(f"object key {key!r} is not a relative object name")
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"gs://{self.name}/{self._object(key)}"

    def _current(self, key: str) -> storage.Blob | None:
        try:
            return self._bucket.get_blob(self._object(key), timeout=self._timeout, retry=self._retry)
        except gexc.GoogleAPIError as e:
            raise BucketError(f"reading metadata of {self.uri(key)} failed: {e}") from e

    def write_json(self, key: str, payload: Any) -> str:
        return self.write_text(key, json.dumps(payload, indent=1, sort_keys=False, allow_nan=False),
                               JSON_CONTENT_TYPE)

    def write_text(self, key: str, text: str, content_type: str) -> str:
        data = text.encode()
        current = self._current(key)
        generation = current.generation if current is not None else 0
        blob = self._bucket.blob(self._object(key))
        try:
            blob.upload_from_string(data, content_type=content_type, if_generation_match=generation,
                                    timeout=self._timeout, retry=self._retry)
        except gexc.PreconditionFailed as e:
            # a retried upload whose first attempt already landed finds its own bytes: that is success
            landed = self._current(key)
            if landed is None or landed.md5_hash != _md5_base64(data):
                raise BucketError(f"{self.uri(key)} was changed by another writer during the upload") from e
        except (gexc.GoogleAPIError, ConnectionError, OSError) as e:
            raise BucketError(f"uploading {self.uri(key)} failed (the previous version is unchanged): {e}") from e
        return self.uri(key)

    def read_json(self, key: str) -> Any:
        try:
            data = self._bucket.blob(self._object(key)).download_as_bytes(timeout=self._timeout, retry=self._retry)
        except gexc.NotFound:
            raise BucketError(f"{self.uri(key)} does not exist") from None
        except gexc.GoogleAPIError as e:
            raise BucketError(f"reading {self.uri(key)} failed: {e}") from e
        try:
            return json.loads(data)
        except json.JSONDecodeError as e:
            raise BucketError(f"{self.uri(key)} is not valid JSON: {e}") from e

    def updated(self, key: str) -> dt.datetime | None:
        blob = self._current(key)
        if blob is None or blob.updated is None:
            return None
        return blob.updated.astimezone(dt.timezone.utc).replace(tzinfo=None)
