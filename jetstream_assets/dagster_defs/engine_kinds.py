"""The storage kinds the UI shows on each asset, from the configured engine."""

from __future__ import annotations

from jetstream_assets.settings import setting


def warehouse_kinds() -> set[str]:
    return {"bigquery"} if setting("JETSTREAM_ENGINE") == "bigquery" else {"duckdb"}


def bucket_kinds() -> set[str]:
    return {"gcs", "json"} if setting("JETSTREAM_BUCKET").startswith("gs://") else {"file", "json"}
