"""`monitoring.experimenter_experiments_v1` in the warehouse: replaced whole, read back as records."""

from __future__ import annotations

import datetime as dt

from jetstream_assets.engines.warehouse import QueryLabels, Warehouse
from jetstream_assets.experimenter.models import Experiment
from jetstream_assets.experimenter.snapshot import EXPERIMENTER_EXPERIMENTS_SCHEMA, experiment_from_row, snapshot_rows

SNAPSHOT_TABLE = "experimenter_experiments_v1"


def write_snapshot(warehouse: Warehouse, experiments: list[Experiment]) -> int:
    return warehouse.load_rows(
        warehouse.monitoring_dataset,
        SNAPSHOT_TABLE,
        snapshot_rows(experiments),
        EXPERIMENTER_EXPERIMENTS_SCHEMA,
        description="Experimenter API v8 experiments, replaced every 10 minutes",
        labels=QueryLabels(destination=f"{warehouse.monitoring_dataset}.{SNAPSHOT_TABLE}"),
    )


def read_snapshot(warehouse: Warehouse, *, today: dt.date) -> dict[str, Experiment]:
    """Experiments by slug; empty when the snapshot has never been loaded."""
    if not warehouse.table_exists(warehouse.monitoring_dataset, SNAPSHOT_TABLE):
        return {}
    frame = warehouse.query(
        f"SELECT * FROM {warehouse.table_ref(warehouse.monitoring_dataset, SNAPSHOT_TABLE)} ORDER BY normandy_slug"
    )
    return {
        row["normandy_slug"]: experiment_from_row(row, today=today) for row in frame.to_dict("records")
    }
