"""Dagster resources: every setting is a `ConfigurableResource` field fed by `EnvVar`.

An unset variable falls back to the contract's default, so a laptop needs no configuration at all.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import dagster as dg

from jetstream_assets.engines.bucket import Bucket, BucketError, LocalFolderBucket
from jetstream_assets.engines.duckdb_warehouse import DuckDBWarehouse
from jetstream_assets.engines.warehouse import Warehouse, WarehouseError
from jetstream_assets.metric_hub.loader import MetricHub
from jetstream_assets.settings import (
    GCP_SETTINGS,
    SETTINGS,
    bundled_experimenter_snapshot,
    bundled_metric_hub,
    default_bucket,
)

# production-only settings (JETSTREAM_ENGINE=bigquery); docs/deployment.md documents them

_DEFAULTS = {s.name: s.default for s in (*SETTINGS, *GCP_SETTINGS)}


def _env(name: str):
    """`EnvVar(name)` when the variable is set (resolved at run time, never stored in run config),
    else the contract's default value."""
    return dg.EnvVar(name) if os.environ.get(name) else _DEFAULTS[name]


@functools.lru_cache(maxsize=8)
def _duckdb_warehouse(
    path: str, project: str, dataset: str, monitoring_dataset: str, memory_limit: str, lock_wait_seconds: float
) -> DuckDBWarehouse:
    # one adapter per file and process: its set-up runs once and its table statistics stay cached
    return DuckDBWarehouse(path, project, dataset, monitoring_dataset, memory_limit or None, lock_wait_seconds)


class WarehouseResource(dg.ConfigurableResource):
    """The results and monitoring warehouse: DuckDB file (embedded) or BigQuery (production)."""

    engine: str = "duckdb"
    home: str = "./.jetstream"
    project: str = "moz-fx-data-experiments"
    dataset: str = "mozanalysis"
    monitoring_dataset: str = "monitoring"
    location: str = "US"
    gcp_credentials: str = ""
    bigquery_endpoint: str = ""
    duckdb_memory_limit: str = ""
    duckdb_lock_wait_seconds: str = "1800"

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # production: missing credentials or datasets fail the run before any step does work
        if self.engine == "bigquery":
            self.get_warehouse()

    def get_warehouse(self) -> Warehouse:
        if self.engine == "duckdb":
            path = str(Path(self.home).expanduser().absolute() / "warehouse.duckdb")
            try:
                lock_wait = float(self.duckdb_lock_wait_seconds)
            except ValueError:
                raise dg.Failure(f"JETSTREAM_DUCKDB_LOCK_WAIT_SECONDS={self.duckdb_lock_wait_seconds!r} is not "
                                 "a number of seconds") from None
            return _duckdb_warehouse(
                path, self.project, self.dataset, self.monitoring_dataset, self.duckdb_memory_limit, lock_wait
            )
        if self.engine == "bigquery":
            # imported here: the Google Cloud clients cost every run process ~0.5 s to import, and the
            # embedded engine never needs them
            from jetstream_assets.dagster_defs.gcp_engines import CredentialsError, bigquery_warehouse

            try:
                return bigquery_warehouse(self.project, self.dataset, self.monitoring_dataset, self.location,
                                           self.gcp_credentials, self.bigquery_endpoint)
            except (CredentialsError, WarehouseError) as e:
                raise dg.Failure(f"JETSTREAM_ENGINE=bigquery: {e}") from None
        raise dg.Failure(f"JETSTREAM_ENGINE={self.engine!r} is unknown: set `duckdb` (embedded) or `bigquery`")


class BucketResource(dg.ConfigurableResource):
    """Where statistics, metadata and errors JSON are published."""

    bucket: str = ""
    home: str = "./.jetstream"
    project: str = "moz-fx-data-experiments"
    gcp_credentials: str = ""
    gcs_endpoint: str = ""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if self.bucket.startswith("gs://"):
            self.get_bucket()

    def get_bucket(self) -> Bucket:
        target = self.bucket or default_bucket(self.home)
        if target.startswith("gs://"):
            from jetstream_assets.dagster_defs.gcp_engines import CredentialsError, gcs_bucket

            try:
                return gcs_bucket(target, self.project, self.gcp_credentials, self.gcs_endpoint)
            except (CredentialsError, BucketError) as e:
                raise dg.Failure(f"JETSTREAM_BUCKET={target}: {e}") from None
        return LocalFolderBucket(str(Path(target).expanduser().absolute()))


class ExperimenterResource(dg.ConfigurableResource):
    """Experimenter API v8 (http/https URL) or a local JSON file with the same body, and the guards
    on what an answer may do to the snapshot."""

    url: str = ""
    fetch_deadline_seconds: str = _DEFAULTS["EXPERIMENTER_FETCH_DEADLINE_SECONDS"]
    max_live_loss: str = _DEFAULTS["JETSTREAM_SNAPSHOT_MAX_LIVE_LOSS"]

    @property
    def source(self) -> str:
        return self.url or bundled_experimenter_snapshot()

    @property
    def deadline_seconds(self) -> float:
        return _number("EXPERIMENTER_FETCH_DEADLINE_SECONDS", self.fetch_deadline_seconds, low=0.0, low_open=True)

    @property
    def live_loss_limit(self) -> float:
        return _number("JETSTREAM_SNAPSHOT_MAX_LIVE_LOSS", self.max_live_loss, low=0.0, high=1.0)


def _number(setting_name: str, text: str, *, low: float, high: float | None = None, low_open: bool = False) -> float:
    """`text` as a float within bounds, or a Failure naming the setting."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > low if low_open else value >= low) or (high is not None and not value <= high):
        bounds = f"{'>' if low_open else '>='} {low:g}" + (f" and <= {high:g}" if high is not None else "")
        raise dg.Failure(f"{setting_name}={text!r} is not a number {bounds}")
    return value


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
            location=_env("JETSTREAM_LOCATION"),
            gcp_credentials=_env("JETSTREAM_GCP_CREDENTIALS"),
            bigquery_endpoint=_env("JETSTREAM_BIGQUERY_ENDPOINT"),
            duckdb_memory_limit=_env("JETSTREAM_DUCKDB_MEMORY_LIMIT"),
            duckdb_lock_wait_seconds=_env("JETSTREAM_DUCKDB_LOCK_WAIT_SECONDS"),
        ),
        "bucket": BucketResource(
            bucket=_env("JETSTREAM_BUCKET"),
            home=home,
            project=_env("JETSTREAM_PROJECT"),
            gcp_credentials=_env("JETSTREAM_GCP_CREDENTIALS"),
            gcs_endpoint=_env("JETSTREAM_GCS_ENDPOINT"),
        ),
        "experimenter": ExperimenterResource(
            url=_env("EXPERIMENTER_URL"),
            fetch_deadline_seconds=_env("EXPERIMENTER_FETCH_DEADLINE_SECONDS"),
            max_live_loss=_env("JETSTREAM_SNAPSHOT_MAX_LIVE_LOSS"),
        ),
        "metric_hub": MetricHubResource(path=_env("METRIC_HUB_PATH")),
        "alerts": AlertSettingsResource(query_cost_alert_usd=_env("JETSTREAM_QUERY_COST_ALERT_USD")),
    }


def initialized_resources() -> dict[str, dg.ConfigurableResource]:
    """The default resources with their EnvVars resolved, for use outside a Dagster run (the CLI)."""
    return {name: r.process_config_and_initialize() for name, r in default_resources().items()}
