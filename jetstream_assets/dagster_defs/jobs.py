"""Asset jobs: the per-experiment analysis, the Experimenter snapshot, and daily monitoring."""

from __future__ import annotations

import dagster as dg

from jetstream_assets.dagster_defs.analysis_assets import ENROLLMENTS_KEY, METRICS_KEY, STATISTICS_KEY
from jetstream_assets.dagster_defs.monitoring_assets import LOGS_KEY, SNAPSHOT_KEY

ANALYSIS_KEYS = [
    ENROLLMENTS_KEY,
    METRICS_KEY,
    STATISTICS_KEY,
    dg.AssetKey(["bucket", "statistics_json"]),
    dg.AssetKey(["bucket", "metadata_json"]),
    dg.AssetKey(["bucket", "results_html"]),
]

experiment_analysis_job = dg.define_asset_job(
    "experiment_analysis",
    selection=dg.AssetSelection.assets(*ANALYSIS_KEYS),
    description="Analyse one experiment (partition) for the date in the `jetstream/analysis_date` tag; without "
    "the tag (e.g. a backfill from the UI) it re-analyses every date up to yesterday.",
)

experimenter_snapshot_job = dg.define_asset_job(
    "experimenter_snapshot", selection=dg.AssetSelection.assets(SNAPSHOT_KEY),
    description="Refresh monitoring.experimenter_experiments_v1 from Experimenter.",
)

monitoring_job = dg.define_asset_job(
    "monitoring_daily", selection=dg.AssetSelection.assets(LOGS_KEY),
    description="Daily monitoring tables.",
)
