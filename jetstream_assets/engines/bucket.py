"""The export bucket interface, and its embedded implementation: a local folder."""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import json
import os
import tempfile
from typing import Any

from jetstream_assets.engines.processes import process_alive


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


def _pid_of_temp(name: str) -> int | None:
    """The writer's pid in a temporary file's name `.<name>.<pid>.<random>.tmp`; None for other files."""
    parts = name.split(".")
    if name.startswith(".") and len(parts) >= 5 and parts[-1] == "tmp" and parts[-3].isdigit():
        return int(parts[-3])
    return None


class LocalFolderBucket(Bucket):
    """Files are written to `.<name>.<pid>.<random>.tmp` (never `*.json`, so globs of published files never
    see one) and moved over the published name; a killed writer's temporary files are removed by the next
    write into the same folder. Published files are readable by everyone (0644), as GCS objects are."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)

    def _path(self, key: str) -> str:
        path = os.path.abspath(os.path.join(self.root, key))
        if not path.startswith(self.root + os.sep):
            raise BucketError(f"object key {key!r} escapes the bucket folder {self.root}")
        return path

    def uri(self, key: str) -> str:
        return "file://" + self._path(key)

    @staticmethod
    def _remove_dead_writers_files(folder: str) -> None:
        for name in os.listdir(folder):
            pid = _pid_of_temp(name)
            if pid is not None and pid != os.getpid() and not process_alive(pid):
                with contextlib.suppress(FileNotFoundError):  # another writer removed it first
                    os.unlink(os.path.join(folder, name))

    def write_json(self, key: str, payload: Any) -> str:
        return self.write_text(key, json.dumps(payload, indent=1, sort_keys=False, allow_nan=False),
                               "application/json")

    def write_text(self, key: str, text: str, content_type: str) -> str:
        path = self._path(key)
        folder, name = os.path.split(path)
        os.makedirs(folder, exist_ok=True)
        self._remove_dead_writers_files(folder)
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fchmod(fh.fileno(), 0o644)  # mkstemp creates 0600
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
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
