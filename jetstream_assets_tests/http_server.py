"""A real HTTP server on 127.0.0.1 that stands in for Experimenter in tests.

`StubHttpServer` answers GETs on one path with a configurable response (404 elsewhere) and counts
requests; it can also trickle a body a byte at a time, as a stalled proxy does. `serve_json` is the
context-manager form for code outside pytest fixtures.
"""

from __future__ import annotations

import json
import threading
import time
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
    trickle_interval: float = 0.0  # > 0: one byte of the body per interval


class StubHttpServer:
    """Serves the standing response set by `respond*`, after one-shots queued by `queue_raw`."""

    def __init__(self, path: str = EXPERIMENTS_PATH):
        self.path = path
        self._lock = threading.Lock()
        self._standing = CannedResponse(200, b"[]", "application/json")
        self._queued: list[CannedResponse] = []
        self._requests = 0
        self._body_bytes_sent = 0
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

    @property
    def body_bytes_sent(self) -> int:
        """Body bytes written to clients so far, over all requests."""
        with self._lock:
            return self._body_bytes_sent

    def respond(self, payload: Any, status: int = 200) -> None:
        """Answer every later request with `payload` as JSON."""
        self.respond_raw(status, json.dumps(payload), content_type="application/json")

    def respond_raw(self, status: int, body: bytes | str, content_type: str = "text/plain") -> None:
        """Answer every later request with exactly this status and body."""
        with self._lock:
            self._standing = CannedResponse(status, _as_bytes(body), content_type)

    def respond_trickle(self, payload: Any, interval: float) -> None:
        """Answer every later request with `payload` as JSON, sending one byte per `interval` seconds."""
        with self._lock:
            self._standing = CannedResponse(200, _as_bytes(json.dumps(payload)), "application/json", interval)

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

    def _count_sent(self, n: int) -> None:
        with self._lock:
            self._body_bytes_sent += n

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                response = server._next_response(self.path)
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                self.end_headers()
                if response.trickle_interval <= 0:
                    self.wfile.write(response.body)
                    server._count_sent(len(response.body))
                    return
                for offset in range(len(response.body)):
                    try:
                        self.wfile.write(response.body[offset:offset + 1])
                        self.wfile.flush()
                    except (BrokenPipeError, ConnectionResetError):
                        return  # the client gave up
                    server._count_sent(1)
                    time.sleep(response.trickle_interval)

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
