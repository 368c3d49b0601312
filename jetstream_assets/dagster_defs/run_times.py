"""When a Dagster run started, as `monitoring.logs` stores timestamps (naive UTC)."""

from __future__ import annotations

import datetime as dt

import dagster as dg


def run_started_at(instance: dg.DagsterInstance, run_id: str) -> dt.datetime:
    """The run's start; a run that never started (e.g. a launch failure) cannot have logged anything
    after its creation, so that stands in."""
    record = instance.get_run_record_by_id(run_id)
    if record is not None and record.start_time is not None:
        return dt.datetime.fromtimestamp(record.start_time, dt.timezone.utc).replace(tzinfo=None)
    created = record.create_timestamp if record is not None else dt.datetime.now(dt.timezone.utc)
    return created.astimezone(dt.timezone.utc).replace(tzinfo=None)
