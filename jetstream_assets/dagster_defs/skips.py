"""How a per-experiment step that has nothing to publish says so, and the metadata keys the checks read.

A run launched from the UI (Materialize, a backfill) carries no analysis-date tag. There a skip is a
materialization with `skipped: <reason>`: the partition shows the reason instead of "Missing", the next
steps run (and skip in turn), and the backfill daemon, which counts a requested partition that was not
materialized as failed, ends the backfill COMPLETED_SUCCESS. A dated run (the CLI, the daily schedule)
records the skip as an observation instead, so the last real materialization stays the partition's
state (freshness, the CLI's analysed/skipped summary) and the steps after it are skipped, as in Jetstream.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from jetstream_assets.dagster_defs.run_tags import ANALYSIS_DATE_TAG

SKIPPED = "skipped"
ANALYSIS_DATE = "analysis_date"
REFUSED = "refused"  # statistics exports that failed validation and were not published (key -> reason)


def skip_event(context: dg.AssetExecutionContext, reason: str, metadata: dict[str, Any]):
    """The event a step yields when it has nothing to publish (see the module docstring)."""
    context.log.info(f"{context.partition_key}: {context.asset_key.to_user_string()} skipped: {reason}")
    metadata = {SKIPPED: dg.MetadataValue.text(reason), **metadata}
    if ANALYSIS_DATE_TAG in context.run.tags:
        return dg.AssetObservation(asset_key=context.asset_key, partition=context.partition_key, metadata=metadata)
    return dg.MaterializeResult(metadata=metadata)
