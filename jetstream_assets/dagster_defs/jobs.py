"""Asset jobs: the per-experiment analysis, the Experimenter snapshot, and daily monitoring."""

from __future__ import annotations

import dagster as dg

from jetstream_assets.dagster_defs.analysis_assets import ENROLLMENTS_KEY, METRICS_KEY, STATISTICS_KEY
from jetstream_assets.dagster_defs.errors_export import ERRORS_JSON_KEY
from jetstream_assets.dagster_defs.export_assets import METADATA_JSON_KEY, STATISTICS_JSON_KEY
from jetstream_assets.dagster_defs.monitoring_assets import LOGS_KEY, SNAPSHOT_KEY
from jetstream_assets.dagster_defs.results_page_asset import RESULTS_HTML_KEY

ANALYSIS_KEYS = [ENROLLMENTS_KEY, METRICS_KEY, STATISTICS_KEY, STATISTICS_JSON_KEY, METADATA_JSON_KEY, ERRORS_JSON_KEY,
                 RESULTS_HTML_KEY]

experiment_analysis_job = dg.define_asset_job(
    "experiment_analysis",
    # the selection includes the assets' partitioned checks, each evaluated after its asset
    selection=dg.AssetSelection.assets(*ANALYSIS_KEYS),
    description="Analyse one experiment (partition) for the date in the `jetstream/analysis_date` tag; without "
    "the tag (e.g. a backfill from the UI) it re-analyses every date up to the last day of complete data.",
)

experimenter_snapshot_job = dg.define_asset_job(
    "experimenter_snapshot", selection=dg.AssetSelection.assets(SNAPSHOT_KEY),
    description="Refresh monitoring.experimenter_experiments_v1 from Experimenter.",
)

monitoring_job = dg.define_asset_job(
    "monitoring_daily", selection=dg.AssetSelection.assets(LOGS_KEY),
    description="Daily monitoring tables.",
)
