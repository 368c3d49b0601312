"""A real HTTP server on 127.0.0.1 that stands in for Experimenter in tests.

`StubHttpServer` answers GETs on one path with a configurable response (404 elsewhere) and counts
requests; `serve_json` is the context-manager form for code outside pytest fixtures.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

EXPERIMENTS_PATH = "/api/v8/experiments/"


@dataclass(frozen=True)
class CannedResponse:
    status: int
    body: bytes
    content_type: str


class StubHttpServer:
    """Serves the standing response set by `respond*`, after one-shots queued by `queue_raw`."""

    def __init__(self, path: str = EXPERIMENTS_PATH):
        self.path = path
        self._lock = threading.Lock()
        self._standing = CannedResponse(200, b"[]", "application/json")
        self._queued: list[CannedResponse] = []
        self._requests = 0
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def requests(self) -> int:
        """Number of GETs received on any path."""
        with self._lock:
            return self._requests

    def respond(self, payload: Any, status: int = 200) -> None:
        """Answer every later request with `payload` as JSON."""
        self.respond_raw(status, json.dumps(payload), content_type="application/json")

    def respond_raw(self, status: int, body: bytes | str, content_type: str = "text/plain") -> None:
        """Answer every later request with exactly this status and body."""
        with self._lock:
            self._standing = CannedResponse(status, _as_bytes(body), content_type)

    def queue_raw(self, status: int, body: bytes | str, content_type: str = "text/plain") -> None:
        """Answer the next not-yet-answered request once with this, before the standing response."""
        with self._lock:
            self._queued.append(CannedResponse(status, _as_bytes(body), content_type))

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _next_response(self, request_path: str) -> CannedResponse:
        with self._lock:
            self._requests += 1
            if urlsplit(request_path).path != self.path:
                return CannedResponse(404, b"not found", "text/plain")
            return self._queued.pop(0) if self._queued else self._standing

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                response = server._next_response(self.path)
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)

            def log_message(self, format: str, *args: Any) -> None:
                # Keep test output clean.
                pass

        return Handler


@contextmanager
def serve_json(payload: Any, *, path: str = EXPERIMENTS_PATH) -> Iterator[StubHttpServer]:
    """A running server answering `path` with `payload` as JSON; shut down on exit."""
    server = StubHttpServer(path)
    try:
        server.respond(payload)
        yield server
    finally:
        server.close()


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body
