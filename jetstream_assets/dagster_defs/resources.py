"""Dagster resources: every setting is a `ConfigurableResource` field fed by `EnvVar`.

An unset variable falls back to the contract's default, so a laptop needs no configuration at all.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import dagster as dg

from jetstream_assets.engines.bucket import Bucket, LocalFolderBucket
from jetstream_assets.engines.duckdb_warehouse import DuckDBWarehouse
from jetstream_assets.engines.warehouse import Warehouse
from jetstream_assets.metric_hub.loader import MetricHub
from jetstream_assets.settings import (
    SETTINGS,
    bundled_experimenter_snapshot,
    bundled_metric_hub,
    default_bucket,
)

_DEFAULTS = {s.name: s.default for s in SETTINGS}


def _env(name: str):
    """`EnvVar(name)` when the variable is set (resolved at run time, never stored in run config),
    else the contract's default value."""
    return dg.EnvVar(name) if os.environ.get(name) else _DEFAULTS[name]


@functools.lru_cache(maxsize=8)
def _duckdb_warehouse(path: str, project: str, dataset: str, monitoring_dataset: str) -> DuckDBWarehouse:
    # one adapter per file and process: its set-up runs once and steps can share a pinned session
    return DuckDBWarehouse(path, project, dataset, monitoring_dataset)


class WarehouseResource(dg.ConfigurableResource):
    """The results and monitoring warehouse: DuckDB file (embedded) or BigQuery (production)."""

    engine: str = "duckdb"
    home: str = "./.jetstream"
    project: str = "moz-fx-data-experiments"
    dataset: str = "mozanalysis"
    monitoring_dataset: str = "monitoring"

    def get_warehouse(self) -> Warehouse:
        if self.engine == "duckdb":
            path = str(Path(self.home).expanduser().absolute() / "warehouse.duckdb")
            return _duckdb_warehouse(path, self.project, self.dataset, self.monitoring_dataset)
        raise dg.Failure(
            f"JETSTREAM_ENGINE={self.engine!r} is not available: this build ships the embedded engine "
            "(`duckdb`); set JETSTREAM_ENGINE=duckdb"
        )


class BucketResource(dg.ConfigurableResource):
    """Where statistics, metadata and errors JSON are published."""

    bucket: str = ""
    home: str = "./.jetstream"

    def get_bucket(self) -> Bucket:
        target = self.bucket or default_bucket(self.home)
        if target.startswith("gs://"):
            raise dg.Failure(f"JETSTREAM_BUCKET={target!r}: GCS export is not available in this build")
        return LocalFolderBucket(str(Path(target).expanduser().absolute()))


class ExperimenterResource(dg.ConfigurableResource):
    """Experimenter API v8 (http/https URL) or a local JSON file with the same body."""

    url: str = ""

    @property
    def source(self) -> str:
        return self.url or bundled_experimenter_snapshot()


class MetricHubResource(dg.ConfigurableResource):
    """A local folder in metric-hub layout."""

    path: str = ""

    def get_metric_hub(self) -> MetricHub:
        return MetricHub(self.path or bundled_metric_hub())


class AlertSettingsResource(dg.ConfigurableResource):
    """Alert thresholds of the asset checks."""

    query_cost_alert_usd: str = "1.0"

    @property
    def query_cost_threshold_usd(self) -> float:
        return float(self.query_cost_alert_usd)


def default_resources() -> dict[str, dg.ConfigurableResource]:
    home = _env("JETSTREAM_HOME")
    return {
        "warehouse": WarehouseResource(
            engine=_env("JETSTREAM_ENGINE"),
            home=home,
            project=_env("JETSTREAM_PROJECT"),
            dataset=_env("JETSTREAM_DATASET"),
            monitoring_dataset=_env("JETSTREAM_MONITORING_DATASET"),
        ),
        "bucket": BucketResource(bucket=_env("JETSTREAM_BUCKET"), home=home),
        "experimenter": ExperimenterResource(url=_env("EXPERIMENTER_URL")),
        "metric_hub": MetricHubResource(path=_env("METRIC_HUB_PATH")),
        "alerts": AlertSettingsResource(query_cost_alert_usd=_env("JETSTREAM_QUERY_COST_ALERT_USD")),
    }


def initialized_resources() -> dict[str, dg.ConfigurableResource]:
    """The default resources with their EnvVars resolved, for use outside a Dagster run (the CLI)."""
    return {name: r.process_config_and_initialize() for name, r in default_resources().items()}
