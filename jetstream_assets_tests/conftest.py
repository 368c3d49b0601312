"""Shared pytest fixtures. Keep one fixture per concern, each with a docstring."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jetstream_assets_tests.http_server import StubHttpServer


@pytest.fixture
def experimenter_server() -> Iterator[StubHttpServer]:
    """A real Experimenter stand-in on 127.0.0.1; `.url` ends in `/api/v8/experiments/`.

    Serves `[]` until told otherwise: `respond(payload)`, `respond_raw(status, body)`,
    `queue_raw(status, body)` for one-shot answers; `.requests` counts GETs.
    """
    server = StubHttpServer()
    try:
        yield server
    finally:
        server.close()

pytest_plugins = ["jetstream_assets_tests.fixtures_sample", "jetstream_assets_tests.browser_fixtures"]
