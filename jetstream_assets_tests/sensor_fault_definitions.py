"""The code location the sensor fault tests tick through Dagster's daemon: the project's assets, the
analysis job and ONE sensor per `Definitions` (both sensors run by default, so one location each),
with resources pointed at a test's home and metric-hub folder through environment variables.

`SENSOR_FAULT_WAREHOUSE_CALL=n` / `SENSOR_FAULT_FINGERPRINT_CALL=n` make the n-th warehouse call /
metric-hub fingerprint of a tick raise, as a tick cut off half-way by the code server's deadline.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from jetstream_assets.dagster_defs.jobs import experiment_analysis_job
from jetstream_assets.dagster_defs.resources import MetricHubResource, WarehouseResource
from jetstream_assets.dagster_defs.sensors import config_change_sensor, experiment_discovery_sensor
from jetstream_assets.definitions import defs as project
from jetstream_assets.engines.warehouse import Warehouse
from jetstream_assets.metric_hub.loader import MetricHub

HOME = "SENSOR_FAULT_HOME"
METRIC_HUB = "SENSOR_FAULT_METRIC_HUB"
WAREHOUSE_CALL = "SENSOR_FAULT_WAREHOUSE_CALL"
FINGERPRINT_CALL = "SENSOR_FAULT_FINGERPRINT_CALL"


class SensorDeadlineExceeded(Exception):
    """Stands in for the code server abandoning a tick after 60 s (Dagster never sees its result)."""


def _failing_call() -> int:
    return int(os.environ.get(WAREHOUSE_CALL) or 0)


class _FailingOnCall:
    """A real warehouse whose `fail_on_call`-th method call raises."""

    def __init__(self, inner: Warehouse, fail_on_call: int):
        self._inner = inner
        self._fail_on_call = fail_on_call
        self._calls = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self._calls += 1
            if self._calls == self._fail_on_call:
                raise SensorDeadlineExceeded(f"deadline exceeded during {name}")
            return attribute(*args, **kwargs)

        return counted


class FaultyWarehouse(WarehouseResource):
    def get_warehouse(self) -> Warehouse:
        return _FailingOnCall(super().get_warehouse(), _failing_call())  # type: ignore[return-value]


class _HubFailingOnFingerprint(MetricHub):
    def __init__(self, path: str, fail_on_call: int):
        super().__init__(path)
        self._fail_on_call = fail_on_call
        self._calls = 0

    def config_fingerprint(self, slug: str, platform: str, outcomes: tuple[str, ...] = ()) -> str:
        self._calls += 1
        if self._calls == self._fail_on_call:
            raise SensorDeadlineExceeded(f"deadline exceeded while reading {slug}'s configuration")
        return super().config_fingerprint(slug, platform, outcomes)


class FaultyMetricHub(MetricHubResource):
    def get_metric_hub(self) -> MetricHub:
        return _HubFailingOnFingerprint(self.path, int(os.environ.get(FINGERPRINT_CALL) or 0))


def _location(sensor: dg.SensorDefinition) -> dg.Definitions:
    return dg.Definitions(
        assets=project.assets,
        jobs=[experiment_analysis_job],
        sensors=[sensor],
        resources={
            **project.resources,
            "warehouse": FaultyWarehouse(home=dg.EnvVar(HOME)),
            "metric_hub": FaultyMetricHub(path=dg.EnvVar(METRIC_HUB)),
        },
    )


discovery = _location(experiment_discovery_sensor)
config_change = _location(config_change_sensor)
