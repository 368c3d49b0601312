"""The bucket exports Experimenter reads: statistics, metadata and errors JSON, each validated against
mozilla-nimbus-schemas before it is published (a file that fails validation is not written)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pydantic import ValidationError
from mozilla_nimbus_schemas.jetstream import AnalysisErrors, Metadata, Statistics

from jetstream_assets.analysis.logs import LOGS_TABLE
from jetstream_assets.analysis.runnable import EXPECTED_SKIPS
from jetstream_assets.core.naming import errors_object, metadata_object, statistics_object, statistics_view
from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.engines.bucket import Bucket, BucketError
from jetstream_assets.engines.warehouse import QueryLabels, Warehouse
from jetstream_assets.experimenter.models import Experiment
from jetstream_assets.metric_hub.loader import METRIC_HUB_BLOB_URL
from jetstream_assets.metric_hub.models import AnalysisConfig
from jetstream_assets.sql.dialect import quote_string

SCHEMA_VERSION = 4


class ExportValidationError(ValueError):
    """An export does not match the nimbus schema; names the object and the first problems."""


@dataclass(frozen=True)
class ExportResult:
    key: str
    uri: str
    rows: int
    written: bool  # False when the object was already newer than its source, or was refused
    payload: Any = None
    refused: str = ""  # why the export failed validation and was not published


def _clean(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if hasattr(value, "item"):
        return _clean(value.item())
    return value


def statistics_records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """View rows as Experimenter reads them: NaN/inf as null, NUMERIC parameter as a number,
    window_index as a string (BigQuery's JSON export writes INT64 as strings)."""
    records = []
    for row in frame.to_dict("records"):
        rec = {k: _clean(v) for k, v in row.items()}
        if rec.get("parameter") is not None:
            rec["parameter"] = float(rec["parameter"])
        if rec.get("window_index") is not None:
            rec["window_index"] = str(int(rec["window_index"]))
        records.append(rec)
    return records


def _summary(error: ValidationError) -> str:
    """The count and the first few problems: a statistics file can hold thousands of bad rows."""
    first = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors(include_url=False)[:3]
    )
    return f"{error.error_count()} validation error(s), e.g. {first}"


def _validate(model, payload: Any, key: str) -> None:
    try:
        model.model_validate(payload)
    except ValidationError as e:
        raise ExportValidationError(f"{key} does not validate against {model.__name__}: {_summary(e)}") from e


def published_problem(bucket: Bucket, key: str, model) -> str | None:
    """Why the published object at `key` is unusable (missing, not JSON, or invalid), else None."""
    try:
        payload = bucket.read_json(key)
    except BucketError as e:
        return str(e)
    try:
        model.model_validate(payload)
    except ValidationError as e:
        return f"does not validate against {model.__name__}: {_summary(e)}"
    return None


def export_statistics(warehouse: Warehouse, bucket: Bucket, slug: str, *, force: bool = False) -> list[ExportResult]:
    """One file per statistics view, re-exported when the view changed after the file (Jetstream's rule)
    or when the published file is unusable, so a corrupt file left by an earlier run heals. A view whose
    rows fail validation is not published: the result says why (`refused`)."""
    results = []
    for period in AnalysisPeriod:
        view = statistics_view(slug, period.table_suffix)
        modified = warehouse.table_modified(warehouse.dataset, view)
        if modified is None:
            continue
        key = statistics_object(slug, period.table_suffix)
        updated = bucket.updated(key)
        current = not force and updated is not None and updated >= modified
        if current and published_problem(bucket, key, Statistics) is None:
            results.append(ExportResult(key, bucket.uri(key), -1, written=False))
            continue
        frame = warehouse.query(
            f"SELECT * FROM {warehouse.table_ref(warehouse.dataset, view)} "
            "ORDER BY window_index, analysis_basis, segment, metric, statistic, branch, comparison, "
            "comparison_to_branch, parameter",
            QueryLabels(experiment=slug),
        )
        records = statistics_records(frame)
        try:
            _validate(Statistics, records, key)
        except ExportValidationError as e:
            results.append(ExportResult(key, bucket.uri(key), len(records), written=False, refused=str(e)))
            continue
        results.append(ExportResult(key, bucket.write_json(key, records), len(records), written=True))
    return results


def metadata_payload(config: AnalysisConfig, analysis_start_time: dt.datetime) -> dict[str, Any]:
    metrics = {}
    for name, metric in sorted(config.all_metrics().items()):
        metrics[name] = {
            "friendly_name": metric.friendly_name or name.replace("_", " ").title(),
            "description": metric.description or "",
            "bigger_is_better": metric.bigger_is_better,
            "analysis_bases": list(metric.analysis_bases),
        }
    outcomes = {
        o.slug: {
            "slug": o.slug,
            "friendly_name": o.friendly_name,
            "description": o.description,
            "metrics": list(o.metrics),
            "default_metrics": list(o.default_metrics),
            "commit_hash": o.commit_hash,
        }
        for o in config.outcomes
    }
    return {
        "analysis_start_time": str(analysis_start_time),
        "external_config": external_config(config),
        "metrics": metrics,
        "outcomes": outcomes,
        "version_info": None,
        "version_date": None,
        "schema_version": SCHEMA_VERSION,
    }


def external_config(config: AnalysisConfig) -> dict[str, Any] | None:
    """Jetstream's `external_config`: null unless the config's values differ from Experimenter's; then
    every key, each value only where it differs (`skip` always), the url of the experiment's config.

    As in metric-config-parser, the enrollment period is compared with Experimenter's proposed enrollment
    (so a resolved period that differs from it is reported once anything is overridden)."""
    exp, experimenter = config.experiment, config.experiment.as_experimenter()
    configured_period = config.overrides.get("enrollment_period") or experimenter.proposed_enrollment or 0
    overridden = (
        exp.reference_branch != experimenter.reference_branch
        or exp.start_date != experimenter.start_date
        or exp.end_date != experimenter.end_date
        or configured_period != (experimenter.proposed_enrollment or 0)
    )
    if not overridden:
        return None

    def changed(ours: Any, theirs: Any) -> Any:
        return ours if ours is not None and ours != theirs else None

    start, end = changed(exp.start_date, experimenter.start_date), changed(exp.end_date, experimenter.end_date)
    return {
        "reference_branch": changed(exp.reference_branch, experimenter.reference_branch),
        "end_date": end.isoformat() if end else None,
        "start_date": start.isoformat() if start else None,
        "enrollment_period": changed(config.enrollment_period, experimenter.proposed_enrollment),
        "skip": config.skip,
        "url": config.config_url or f"{METRIC_HUB_BLOB_URL}/jetstream/{exp.slug}.toml",
    }


def export_metadata(bucket: Bucket, config: AnalysisConfig, analysis_start_time: dt.datetime) -> ExportResult:
    key = metadata_object(config.experiment.slug)
    payload = metadata_payload(config, analysis_start_time)
    _validate(Metadata, payload, key)
    return ExportResult(key, bucket.write_json(key, payload), len(payload["metrics"]), written=True)


def errors_records(warehouse: Warehouse, slug: str, since: dt.datetime) -> list[dict[str, Any]]:
    """The experiment's log rows since `since`, without the expected skips. Unlike Jetstream, warnings
    without an exception type are kept (Jetstream's `!=` filter drops NULLs by accident)."""
    if not warehouse.table_exists(warehouse.monitoring_dataset, LOGS_TABLE):
        return []
    skips = ", ".join(quote_string(s) for s in sorted(EXPECTED_SKIPS))
    frame = warehouse.query(
        f"SELECT timestamp, experiment, message, log_level, exception, filename, func_name, exception_type, "
        f"source, metric, statistic, analysis_basis, segment "
        f"FROM {warehouse.table_ref(warehouse.monitoring_dataset, LOGS_TABLE)} "
        f"WHERE experiment = {quote_string(slug)} AND timestamp >= TIMESTAMP {quote_string(since.isoformat(sep=' '))} "
        f"AND (exception_type IS NULL OR exception_type NOT IN ({skips})) ORDER BY timestamp",
        QueryLabels(experiment=slug),
    )
    records = []
    for row in frame.to_dict("records"):
        rec = {k: _clean(v) for k, v in row.items()}
        rec["timestamp"] = pd.Timestamp(rec["timestamp"]).isoformat()
        # Experimenter's schema wants strings: a row written without a Python frame (e.g. a run that died) has none
        rec["filename"], rec["func_name"] = rec["filename"] or "", rec["func_name"] or ""
        records.append(rec)
    return records


def export_errors(warehouse: Warehouse, bucket: Bucket, slug: str, since: dt.datetime) -> ExportResult:
    """Always rewritten (errors change with every step), so a corrupt file heals on the next step."""
    key = errors_object(slug)
    records = errors_records(warehouse, slug, since)
    _validate(AnalysisErrors, records, key)
    return ExportResult(key, bucket.write_json(key, records), len(records), written=True, payload=records)


def errors_window_start(experiment: Experiment | None, analysis_start_time: dt.datetime) -> dt.datetime:
    """Jetstream's errors window for a step started at `analysis_start_time`: the experiment's current
    weekly cycle (the latest enrollment end + 1 + 7k days strictly before the start), or, without an
    enrollment end date or before the first cycle, the start itself. Floored to the minute."""
    end = experiment.enrollment_end_date if experiment is not None else None
    since = analysis_start_time
    if end is not None:
        cycle = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), tzinfo=analysis_start_time.tzinfo)
        if cycle < analysis_start_time:
            # Jetstream steps a week at a time while the cycle start is still before the analysis start
            weeks = (analysis_start_time - cycle - dt.timedelta.resolution) // dt.timedelta(weeks=1)
            since = cycle + dt.timedelta(weeks=weeks)
    return since.replace(second=0, microsecond=0)
