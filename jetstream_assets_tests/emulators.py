"""Local Google Cloud emulators for the production engine's tests, and a fault-injecting proxy.

- `gcs_emulator()`: gcp-storage-emulator in this process, on a free port of 127.0.0.1.
- `bigquery_emulator()`: bqemulator as a child process, run by the interpreter named in
  `BQEMULATOR_PYTHON` (a separate venv: bqemulator pins duckdb 1.5 and sqlglot < 30.12, which the
  project's own environment must not inherit). Started through a shim with bqemulator's two offline
  fixes (no `INSTALL spatial` download; accept the official client's `*/*` load uploads).
- `FaultProxy`: a real HTTP proxy on 127.0.0.1 in front of an emulator that can drop a connection,
  answer with a recorded error, or rewrite a request, chosen per request by a rule.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

BQEMULATOR_PYTHON = "BQEMULATOR_PYTHON"
BQEMULATOR_START_SECONDS = 60.0

_BQEMULATOR_SHIM = """
import sys
from bqemulator.storage import engine
from bqemulator.api.routes import upload
engine.DuckDBEngine._load_spatial = lambda self: None  # startup would download DuckDB's spatial extension
upload._PERMITTED_MEDIA_CONTENT_TYPES += ("*/*",)  # the official client sends loads as */*
from bqemulator.cli import main
sys.exit(main())
"""
_LISTENING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:[0-9]+)")


@contextlib.contextmanager
def gcs_emulator() -> Iterator[str]:
    """An in-memory GCS emulator in this process; yields its endpoint URL."""
    from gcp_storage_emulator.server import create_server

    server = create_server("127.0.0.1", 0, in_memory=True)
    server.start()
    try:
        port = server._api._httpd.server_address[1]  # the emulator exposes its bound port nowhere else
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@contextlib.contextmanager
def bigquery_emulator(python: str) -> Iterator[str]:
    """bqemulator in a child process on free ports of 127.0.0.1; yields its REST endpoint URL."""
    process = subprocess.Popen(
        [python, "-c", _BQEMULATOR_SHIM, "start", "--rest-host", "127.0.0.1", "--rest-port", "0",
         "--grpc-host", "127.0.0.1", "--grpc-port", "0", "--ephemeral", "--log-format", "console"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        yield _wait_for_listening(process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_for_listening(process: subprocess.Popen) -> str:
    found: list[str] = []
    seen: list[str] = []

    def read() -> None:
        for line in process.stdout:  # keeps draining so the child never blocks on a full pipe
            seen.append(line)
            match = _LISTENING.search(line)
            if match and not found:
                found.append(match.group(1))

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + BQEMULATOR_START_SECONDS
    while not found and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    if not found:
        raise RuntimeError("bqemulator did not start:\n" + "".join(seen[-30:]))
    return found[0]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes


@dataclass(frozen=True)
class Answer:
    """What the proxy does with one request: forward it (optionally with a new body), drop the
    connection before or after forwarding, or answer with `status`/`body` itself."""

    action: str = "forward"  # forward | drop | drop_after_forward | respond
    status: int = 200
    body: bytes = b""
    new_body: bytes | None = None


Rule = Callable[[Request], Answer]


@dataclass
class FaultProxy:
    """An HTTP proxy on 127.0.0.1 in front of `upstream`; `rule` decides per request. Every request
    is recorded in `requests` (the BigQuery job configurations the emulator would not keep)."""

    upstream: str
    rule: Rule = lambda request: Answer()
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        target = urlsplit(self.upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, body)
                proxy.requests.append(request)
                answer = proxy.rule(request)
                if answer.action == "drop":
                    self._drop()
                    return
                if answer.action == "respond":
                    self._reply(answer.status, {"Content-Type": "application/json"}, answer.body)
                    return
                status, headers, payload = proxy._forward(target, self, answer.new_body if answer.new_body
                                                          is not None else body)
                if answer.action == "drop_after_forward":
                    self._drop()
                    return
                self._reply(status, headers, payload)

            def _drop(self) -> None:
                self.close_connection = True
                self.connection.shutdown(2)

            def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @staticmethod
    def _forward(target, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("host", "content-length")}
            headers["Content-Length"] = str(len(body))
            connection.request(handler.command, handler.path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            keep = {k: v for k, v in response.getheaders()
                    if k.lower() not in ("content-length", "transfer-encoding", "connection")}
            return response.status, keep, payload
        finally:
            connection.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def bigquery_python() -> str | None:
    """The interpreter of the bqemulator venv, if this environment has one."""
    python = os.environ.get(BQEMULATOR_PYTHON, "")
    return python if python and os.path.exists(python) else None


def in_ci() -> bool:
    """Whether `CI` is set (as CI services and `.ci/run` do)."""
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def bigquery_emulator_or_skip() -> Iterator[str]:
    """`bigquery_emulator()`, or a skipped test when BQEMULATOR_PYTHON names no interpreter. In CI a
    selected emulator test fails instead: a tier that skips everything must not pass (CI deselects the
    tier with `-m "not bigquery_emulator"` where it has no emulator)."""
    python = bigquery_python()
    if python is None:
        reason = "BQEMULATOR_PYTHON is not set to a venv with bqemulator (docs/deployment.md, 'Test tiers')"
        if in_ci():
            pytest.fail(f"CI: {reason}", pytrace=False)
        pytest.skip(reason)
    with bigquery_emulator(python) as endpoint:
        yield endpoint


def new_project(endpoint: str, *datasets: str) -> str:
    """A fresh project in a shared emulator, so tests never see each other's tables."""
    from jetstream_assets.engines.gcp_credentials import emulator_bigquery_client

    project = f"test-{uuid.uuid4().hex[:10]}"
    client = emulator_bigquery_client(project, "US", endpoint)
    for dataset in datasets:
        client.create_dataset(f"{project}.{dataset}", timeout=20)
    return project


def without_default_credentials(monkeypatch, config_dir: str) -> None:
    """No Application Default Credentials, and no probe of the GCE metadata server (google-auth
    reads its opt-out at import time, so the module flag is set directly)."""
    from google.auth.compute_engine import _metadata

    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", config_dir)  # an empty gcloud config: no user ADC file
    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", True)
