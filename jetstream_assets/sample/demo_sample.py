"""The bundled demo: telemetry in the warehouse plus the matching Experimenter snapshot file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import duckdb

from jetstream_assets.sample.designs import (
    DEMO_BACKGROUND_CLIENTS,
    DEMO_DATA_END,
    DEMO_DATA_START,
    DEMO_DESIGNS,
    DEMO_SEED,
)
from jetstream_assets.sample.experimenter_payload import experimenter_payload
from jetstream_assets.sample.telemetry import SampleTelemetry, generate_telemetry, write_telemetry


def write_demo_sample(
    con: duckdb.DuckDBPyConnection, experimenter_json_path: str | os.PathLike[str]
) -> SampleTelemetry:
    """Write the demo telemetry tables and the Experimenter v8 snapshot; returns the telemetry."""
    telemetry = generate_telemetry(
        DEMO_DESIGNS,
        data_start=DEMO_DATA_START,
        data_end=DEMO_DATA_END,
        background_clients=DEMO_BACKGROUND_CLIENTS,
        seed=DEMO_SEED,
    )
    write_telemetry(con, telemetry)
    write_experimenter_snapshot(experimenter_payload(DEMO_DESIGNS), Path(experimenter_json_path))
    return telemetry


def write_experimenter_snapshot(payload: list[dict], path: Path) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False
    ) as tmp:
        json.dump(payload, tmp, indent=2)
        tmp.write("\n")
    os.replace(tmp.name, path)
