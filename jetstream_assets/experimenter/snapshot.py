"""Rows of `monitoring.experimenter_experiments_v1`, bigquery-etl's flattened Experimenter snapshot.

Column names and order are bigquery-etl's (`experimenter_experiments_v1/query.py`); the table is
fully replaced on every load, so the rows are a pure function of the parsed experiments.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from jetstream_assets.core.schema import Field, Schema
from jetstream_assets.experimenter.models import Branch, BucketConfig, Experiment
from jetstream_assets.experimenter.parse import derive_status

EXPERIMENTER_EXPERIMENTS_SCHEMA: Schema = (
    Field("experimenter_slug", "STRING"),
    Field("normandy_slug", "STRING"),
    Field("type", "STRING"),
    Field("status", "STRING"),
    Field("start_date", "DATE"),
    Field("end_date", "DATE"),
    Field("enrollment_end_date", "DATE"),
    Field("proposed_enrollment", "INT64"),
    Field("reference_branch", "STRING"),
    Field("is_high_population", "BOOL"),
    Field(
        "branches",
        "RECORD",
        mode="REPEATED",
        fields=(
            Field("slug", "STRING"),
            Field("ratio", "INT64"),
            Field("features", "JSON"),
        ),
    ),
    Field("app_id", "STRING"),
    Field("app_name", "STRING"),
    Field("channel", "STRING"),
    Field("channels", "STRING", mode="REPEATED"),
    Field("targeting", "STRING"),
    Field("targeted_percent", "FLOAT64", description="bucketConfig count / total"),
    Field("namespace", "STRING"),
    Field("feature_ids", "STRING", mode="REPEATED"),
    Field("is_rollout", "BOOL"),
    Field("outcomes", "STRING", mode="REPEATED"),
    Field("segments", "STRING", mode="REPEATED"),
    Field("randomization_unit", "STRING"),
    Field("is_firefox_labs_opt_in", "BOOL"),
    Field("is_enrollment_paused", "BOOL"),
)


def snapshot_rows(experiments: list[Experiment]) -> list[dict[str, Any]]:
    """One JSON-serialisable row per experiment, keys in schema order, dates as ISO strings."""
    return [_row(experiment) for experiment in experiments]


def _row(e: Experiment) -> dict[str, Any]:
    bucket = e.bucket_config
    return {
        # Nimbus experiments have only the normandy slug; the legacy Experimenter slug stays null.
        "experimenter_slug": None,
        "normandy_slug": e.slug,
        "type": e.experiment_type,
        "status": e.status,
        "start_date": _iso(e.start_date),
        "end_date": _iso(e.end_date),
        "enrollment_end_date": _iso(e.enrollment_end_date),
        "proposed_enrollment": e.proposed_enrollment,
        "reference_branch": e.reference_branch,
        "is_high_population": e.is_high_population,
        "branches": [
            {"slug": b.slug, "ratio": int(b.ratio), "features": _branch_features(e, b.slug)}
            for b in e.branches
        ],
        "app_id": e.app_id,
        "app_name": e.app_name,
        "channel": e.channel,
        "channels": list(e.channels),
        "targeting": e.targeting,
        "targeted_percent": _targeted_fraction(bucket.count, bucket.total),
        "namespace": bucket.namespace,
        "feature_ids": list(e.feature_ids),
        "is_rollout": e.is_rollout,
        "outcomes": list(e.outcomes),
        "segments": list(e.segments),
        "randomization_unit": bucket.randomization_unit,
        "is_firefox_labs_opt_in": e.is_firefox_labs_opt_in,
        "is_enrollment_paused": e.is_enrollment_paused,
    }


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _targeted_fraction(count: int | None, total: int | None) -> float | None:
    if count is None or not total:
        return None
    return count / total


def _branch_features(experiment: Experiment, branch_slug: str) -> Any:
    """The branch's `features` as Experimenter sent them (the typed `Branch` does not keep them)."""
    raw_branches = experiment.raw.get("branches")
    if not isinstance(raw_branches, list):
        return None
    for raw in raw_branches:
        if isinstance(raw, dict) and raw.get("slug") == branch_slug:
            return raw.get("features")
    return None


def experiment_from_row(row: dict[str, Any], *, today: dt.date) -> Experiment:
    """An `Experiment` back from a snapshot row: the analysis reads the snapshot, not the API again.
    Status is derived anew for `today`, as Jetstream derives it at analysis time."""
    end_date = _date(row.get("end_date"))
    return Experiment(
        slug=row["normandy_slug"],
        branches=tuple(Branch(b["slug"], float(b["ratio"])) for b in _seq(row.get("branches"))),
        start_date=_date(row.get("start_date")),
        end_date=end_date,
        enrollment_end_date=_date(row.get("enrollment_end_date")),
        proposed_enrollment=_int(row.get("proposed_enrollment")),
        reference_branch=row.get("reference_branch"),
        app_name=row.get("app_name") or "firefox_desktop",
        app_id=row.get("app_id"),
        channel=row.get("channel"),
        channels=tuple(_seq(row.get("channels"))),
        outcomes=tuple(_seq(row.get("outcomes"))),
        segments=tuple(_seq(row.get("segments"))),
        is_rollout=bool(row.get("is_rollout")),
        is_enrollment_paused=bool(row.get("is_enrollment_paused")),
        is_high_population=bool(row.get("is_high_population")),
        is_firefox_labs_opt_in=bool(row.get("is_firefox_labs_opt_in")),
        status=derive_status(end_date, today),
        experiment_type=row.get("type") or "v6",
        bucket_config=BucketConfig(randomization_unit=row.get("randomization_unit"), namespace=row.get("namespace")),
        feature_ids=tuple(_seq(row.get("feature_ids"))),
        targeting=row.get("targeting"),
    )


def _seq(value: Any) -> list[Any]:
    """A repeated column as a list, whether it arrives as a list, an array or null."""
    if value is None or (isinstance(value, float) and value != value):
        return []
    return list(value)


def _date(value: Any) -> dt.date | None:
    if value is None or value != value:  # None, NaN or NaT
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if hasattr(value, "date"):  # pandas Timestamp
        return value.date()
    return dt.date.fromisoformat(str(value))


def _int(value: Any) -> int | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return int(value)
