"""Sensor ticks evaluated by Dagster's own sensor daemon: one `execute_sensor_iteration` over an
in-process code location (`sensor_fault_definitions`), on an instance whose runs only queue. What a
tick commits (the stored cursor, partitions, runs, the tick's status and error) is what production
commits; nothing here decides it.

Dagster's private test helpers (`dagster._core.test_utils`, `dagster._daemon.sensor`) are the only
way to run the daemon's tick in process; they are pinned with dagster itself (pyproject).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.scheduler.instigation import InstigatorTick, TickStatus
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget, create_test_daemon_workspace_context, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.sensor import execute_sensor_iteration

from jetstream_assets_tests import sensor_fault_definitions

LOCATION = "sensor_faults"
# runs only queue; one event-log database instead of one per run (creating a run's own file costs seconds)
_QUEUED_RUNS = {
    "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "QueuedRunCoordinator"},
    "event_log_storage": {"module": "dagster._core.storage.event_log", "class": "ConsolidatedSqliteEventLogStorage",
                          "config": {"base_dir": {"env": "DAGSTER_HOME"}}},
}
_TMPFS = "/dev/shm"


@contextmanager
def queued_instance() -> Iterator[dg.DagsterInstance]:
    """A test instance whose runs only queue (the tests look at what ticks launch, not at running it),
    stored on tmpfs where there is one: the daemon writes a dozen events for every run it creates."""
    with (
        tempfile.TemporaryDirectory(dir=_TMPFS if os.path.isdir(_TMPFS) else None) as temp_dir,
        dg.instance_for_test(overrides=_QUEUED_RUNS, temp_dir=temp_dir) as instance,
    ):
        yield instance


@dataclass(frozen=True)
class Tick:
    status: TickStatus
    error: str  # the exception's text when the tick failed
    skip_reason: str
    runs: list[dg.DagsterRun]  # the runs this tick created

    @property
    def partitions(self) -> list[str]:
        return sorted(r.tags["dagster/partition"] for r in self.runs)


class SensorDaemon:
    """Ticks one sensor of the code location, each tick past the sensor's minimum interval."""

    def __init__(self, instance: dg.DagsterInstance, workspace: WorkspaceProcessContext, sensor_name: str):
        self.instance = instance
        self._workspace = workspace
        location = workspace.create_request_context().get_code_location(LOCATION)
        [repository] = location.get_repositories().values()
        self._sensor = repository.get_sensor(sensor_name)
        self._interval = self._sensor.min_interval_seconds
        self._clock = dt.datetime.now(dt.timezone.utc)

    def tick(self) -> Tick:
        self._clock += dt.timedelta(seconds=self._interval + 1)
        with freeze_time(self._clock):
            list(execute_sensor_iteration(self._workspace, logging.getLogger(__name__), None, None))
        [tick] = self._ticks(limit=1)
        assert tick.timestamp == self._clock.timestamp(), "the daemon did not tick"
        return Tick(
            status=tick.status,
            error=tick.error.to_string() if tick.error else "",
            skip_reason=tick.skip_reason or "",
            runs=[self.instance.get_run_by_id(run_id) for run_id in tick.run_ids],
        )

    @property
    def cursor(self) -> str | None:
        """The cursor Dagster stored for the sensor."""
        state = self.instance.get_instigator_state(self._sensor.get_remote_origin_id(), self._sensor.selector_id)
        return state.instigator_data.cursor if state and state.instigator_data else None

    def all_runs(self) -> list[dg.DagsterRun]:
        return list(self.instance.get_runs())

    def _ticks(self, limit: int) -> list[InstigatorTick]:
        return list(self.instance.get_ticks(self._sensor.get_remote_origin_id(), self._sensor.selector_id, limit=limit))


@contextmanager
def sensor_daemon(instance: dg.DagsterInstance, attribute: str, sensor_name: str) -> Iterator[SensorDaemon]:
    """A daemon ticking `sensor_name` of `sensor_fault_definitions.<attribute>`."""
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name=sensor_fault_definitions.__name__, attribute=attribute,
                             working_directory=str(Path(__file__).parents[1])),
        location_name=LOCATION,
    )
    with create_test_daemon_workspace_context(InProcessTestWorkspaceLoadTarget(origin), instance) as workspace:
        yield SensorDaemon(instance, workspace, sensor_name)
