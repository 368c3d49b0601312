"""Every setting of the project (contract §1), its default and its meaning: the README's table is this one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SAMPLE_DATA = Path(__file__).parent / "sample" / "data"


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    meaning: str


SETTINGS = (
    Setting("JETSTREAM_HOME", "./.jetstream", "embedded engine's home: `warehouse.duckdb` and the bucket folder `bucket/`"),
    Setting("JETSTREAM_ENGINE", "duckdb", "`duckdb` (embedded) or `bigquery` (production: BigQuery + GCS via dagster-gcp)"),
    Setting("JETSTREAM_PROJECT", "moz-fx-data-experiments", "BigQuery project of the results and monitoring datasets"),
    Setting("JETSTREAM_DATASET", "mozanalysis", "results dataset (DuckDB: a schema of that name)"),
    Setting("JETSTREAM_MONITORING_DATASET", "monitoring", "monitoring dataset (DuckDB: a schema)"),
    Setting("JETSTREAM_BUCKET", "", "export target: a folder, or `gs://NAME` (empty: `$JETSTREAM_HOME/bucket`)"),
    Setting("EXPERIMENTER_URL", "", "Experimenter API v8 `.../api/v8/experiments/` or a local JSON file (empty: the bundled sample snapshot)"),
    Setting("EXPERIMENTER_FETCH_DEADLINE_SECONDS", "120", "wall-clock limit of one Experimenter fetch, retries "
            "included; a server still sending after it fails the snapshot step"),
    Setting("JETSTREAM_SNAPSHOT_MAX_LIVE_LOSS", "0.5", "largest share (0..1) of the snapshot's live experiments an "
            "Experimenter answer may lack; beyond it (or with no usable experiment) the last good snapshot is kept "
            "and the snapshot step fails"),
    Setting("METRIC_HUB_PATH", "", "a local folder in metric-hub layout (empty: the bundled sample configs)"),
    Setting("JETSTREAM_QUERY_COST_ALERT_USD", "1.0", "a single query above this cost fails the cost check (severity WARN)"),
    Setting("JETSTREAM_QUERY_COST_START_DATE", "", "first daily partition of `monitoring/query_cost_v1`, YYYY-MM-DD "
            "(e.g. the deployment's first day); empty: 30 days before today"),
    Setting("JETSTREAM_DUCKDB_MEMORY_LIMIT", "", "embedded engine: DuckDB's `memory_limit` (e.g. `2GB`; it spills to disk "
            "beyond it); empty: DuckDB's default, 80% of RAM"),
    Setting("JETSTREAM_DUCKDB_LOCK_WAIT_SECONDS", "1800", "embedded engine: how long an operation waits for "
            "another process to release the DuckDB file's lock before it fails (a run of this project steps aside "
            "after its current statement)"),
)

# production only: how the BigQuery and GCS engines reach Google Cloud
GCP_SETTINGS = (
    Setting("JETSTREAM_LOCATION", "US", "BigQuery location of the datasets and jobs (`region-<location>` of "
            "INFORMATION_SCHEMA.JOBS_BY_PROJECT for query cost)"),
    Setting("JETSTREAM_GCP_CREDENTIALS", "", "a base64 service-account key (dagster-gcp `gcp_credentials`); "
            "empty: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud, Workload Identity)"),
    Setting("JETSTREAM_BIGQUERY_ENDPOINT", "", "BigQuery API endpoint of an emulator (anonymous credentials, "
            "strict timeouts, no retries); empty: Google's"),
    Setting("JETSTREAM_GCS_ENDPOINT", "", "Cloud Storage API endpoint of an emulator (anonymous credentials); "
            "empty: Google's"),
)

_BY_NAME = {s.name: s for s in (*SETTINGS, *GCP_SETTINGS)}


def setting(name: str) -> str:
    """The value in the environment, else the default (used outside Dagster, e.g. by the CLI)."""
    return os.environ.get(name) or _BY_NAME[name].default


def default_bucket(home: str) -> str:
    return str(Path(home) / "bucket")


def bundled_experimenter_snapshot() -> str:
    return str(SAMPLE_DATA / "experimenter_v8.json")


def bundled_metric_hub() -> str:
    return str(SAMPLE_DATA / "metric-hub")
