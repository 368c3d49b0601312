"""The export bucket interface, and its embedded implementation: a local folder."""

from __future__ import annotations

import abc
import datetime as dt
import json
import os
import tempfile
from typing import Any


class BucketError(RuntimeError):
    pass


class Bucket(abc.ABC):
    @abc.abstractmethod
    def uri(self, key: str) -> str: ...

    @abc.abstractmethod
    def write_json(self, key: str, payload: Any) -> str:
        """Publish `payload` at `key` atomically (readers see the old or the new object, never half)."""

    @abc.abstractmethod
    def write_text(self, key: str, text: str, content_type: str) -> str:
        """Publish `text` at `key` atomically, served as `content_type` (e.g. an HTML results page)."""

    @abc.abstractmethod
    def read_json(self, key: str) -> Any:
        """The object's JSON; raises BucketError if it is missing or not valid JSON."""

    @abc.abstractmethod
    def updated(self, key: str) -> dt.datetime | None:
        """When the object was last written (naive UTC), or None if it does not exist."""


class LocalFolderBucket(Bucket):
    def __init__(self, root: str):
        self.root = os.path.abspath(root)

    def _path(self, key: str) -> str:
        path = os.path.abspath(os.path.join(self.root, key))
        if not path.startswith(self.root + os.sep):
            raise BucketError(f"object key {key!r} escapes the bucket folder {self.root}")
        return path

    def uri(self, key: str) -> str:
        return "file://" + self._path(key)

    def write_json(self, key: str, payload: Any) -> str:
        return self.write_text(key, json.dumps(payload, indent=1, sort_keys=False, allow_nan=False),
                               "application/json")

    def write_text(self, key: str, text: str, content_type: str) -> str:
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(key)[1], dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return self.uri(key)

    def read_json(self, key: str) -> Any:
        path = self._path(key)
        try:
            with open(path) as fh:
                return json.load(fh)
        except FileNotFoundError:
            raise BucketError(f"{self.uri(key)} does not exist") from None
        except json.JSONDecodeError as e:
            raise BucketError(f"{self.uri(key)} is not valid JSON: {e}") from e

    def updated(self, key: str) -> dt.datetime | None:
        try:
            mtime = os.path.getmtime(self._path(key))
        except FileNotFoundError:
            return None
        return dt.datetime.fromtimestamp(mtime, dt.timezone.utc).replace(tzinfo=None)
