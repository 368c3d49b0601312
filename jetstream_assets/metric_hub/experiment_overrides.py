"""The `[experiment]` table of a config: values that override the Experimenter record (ExperimentSpec)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jetstream_assets.core.windows import resolve_enrollment_period
from jetstream_assets.experimenter.models import Experiment
from jetstream_assets.metric_hub.spec import Entry

_DATE_KEYS = ("start_date", "end_date")
# metric-config-parser's ExperimentSpec: any other key is dropped by it, and reported by us
KNOWN_KEYS = frozenset({
    "enrollment_query", "enrollment_period", "reference_branch", "start_date", "end_date", "segments",
    "outcomes", "skip", "exposure_signal", "is_private", "dataset_id", "sample_size", "analysis_unit",
    "enrollments_query_type",
})
ANALYSIS_UNITS = ("client_id", "profile_group_id")
ENROLLMENTS_QUERY_TYPES = ("normandy", "glean-event", "fenix-fallback", "cirrus", "background-update")

Fail = Callable[[str, str], Exception]  # (reason, key) -> the located error to raise


@dataclass(frozen=True)
class ExperimentOverrides:
    experiment: Experiment  # the Experimenter record with overrides applied
    enrollment_period: int | None  # config -> (enrollment end - start) + 1 -> proposed enrollment
    overrides: dict[str, Any] = field(default_factory=dict)  # every key the config set, normalised
    skip: bool = False
    sample_size: int | None = None
    enrollment_query: str | None = None  # raw Jinja
    outcomes: tuple[str, ...] = ()  # Experimenter's outcomes, then the config's
    exposure_signal: dict[str, Any] | None = None  # raw table
    analysis_unit: str = "client_id"
    warnings: tuple[str, ...] = ()  # keys set but not acted on: "<file>:<line>: experiment.<key>: why"


def apply_overrides(experiment: Experiment, entry: Entry | None) -> ExperimentOverrides:
    fields = dict(entry.fields) if entry else {}
    slug = experiment.slug

    def fail(reason: str, key: str) -> Exception:
        assert entry is not None  # only keys read from the entry can fail
        return entry.error(reason, key, slug)

    overrides: dict[str, Any] = {}
    changes: dict[str, Any] = {}
    for key in _DATE_KEYS:
        if key in fields:
            overrides[key] = changes[key] = _parse_date(fields[key], key, fail)
    if "end_date" in changes:
        changes["status"] = "Complete"  # an explicit end date lets the overall window run

    configured_period = _optional(fields, "enrollment_period", int, fail)
    if configured_period is not None:
        if configured_period < 0:
            raise fail("must not be negative", "enrollment_period")
        overrides["enrollment_period"] = changes["proposed_enrollment"] = configured_period

    reference_branch = _optional(fields, "reference_branch", str, fail)
    if reference_branch is not None:
        if experiment.branches and reference_branch not in experiment.branch_slugs:
            raise fail(
                f"{reference_branch!r} is not one of the branches {list(experiment.branch_slugs)}",
                "reference_branch",
            )
        overrides["reference_branch"] = changes["reference_branch"] = reference_branch

    segments = _string_list(fields, "segments", fail)
    if segments:
        overrides["segments"] = list(segments)
        changes["segments"] = tuple(dict.fromkeys(segments + experiment.segments))
    config_outcomes = _string_list(fields, "outcomes", fail)
    if config_outcomes:
        overrides["outcomes"] = list(config_outcomes)

    sample_size = fields.get("sample_size")
    if isinstance(sample_size, float) and sample_size.is_integer():
        sample_size = int(sample_size)  # `sample_size = 3.0` is the whole number metric-config-parser reads
    sample_size = _optional({"sample_size": sample_size}, "sample_size", int, fail)
    if sample_size is not None and not 0 < sample_size <= 100:
        raise fail("must be a percentage of clients in 1..100 (sample_id < sample_size)", "sample_size")
    skip = _optional(fields, "skip", bool, fail) or False
    enrollment_query = _optional(fields, "enrollment_query", str, fail)
    exposure_signal = fields.get("exposure_signal")
    if exposure_signal is not None and not isinstance(exposure_signal, dict):
        raise fail("expected a table", "exposure_signal")
    analysis_unit = _optional(fields, "analysis_unit", str, fail)
    if analysis_unit is not None and analysis_unit not in ANALYSIS_UNITS:
        raise fail(f"expected one of {list(ANALYSIS_UNITS)}", "analysis_unit")
    if analysis_unit is None:
        # Jetstream: profile groups when Experimenter randomises by group_id, else clients
        group = experiment.bucket_config.randomization_unit == "group_id"
        analysis_unit = "profile_group_id" if group else "client_id"
    warnings = _unused_keys(fields, entry)
    for key, value in fields.items():
        overrides.setdefault(key, value)

    updated = experiment.with_overrides(**changes) if changes else experiment
    return ExperimentOverrides(
        experiment=updated,
        enrollment_period=resolve_enrollment_period(
            configured_period, updated.start_date, updated.enrollment_end_date, experiment.proposed_enrollment
        ),
        overrides=overrides,
        skip=skip,
        sample_size=sample_size,
        enrollment_query=enrollment_query,
        outcomes=tuple(dict.fromkeys(experiment.outcomes + config_outcomes)),
        exposure_signal=exposure_signal,
        analysis_unit=analysis_unit,
        warnings=warnings,
    )


def _unused_keys(fields: dict[str, Any], entry: Entry | None) -> tuple[str, ...]:
    """A WARNING line per key the config sets that our pipeline does not act on (never silently dropped)."""
    if entry is None:
        return ()
    found = []
    for key, value in fields.items():
        if key not in KNOWN_KEYS:
            reason = "not a key Jetstream reads (metric-config-parser drops it); ignored"
        elif key == "enrollments_query_type":
            if value not in ENROLLMENTS_QUERY_TYPES:
                raise entry.error(f"expected one of {list(ENROLLMENTS_QUERY_TYPES)}", key)
            if value == "glean-event":
                continue  # what we do for every app: enrollments from its Glean events_stream
            reason = f"{value!r} enrollments are not implemented; enrollments are read from the app's events_stream"
        elif key in ("is_private", "dataset_id") and fields.get("is_private"):
            reason = "private experiments are not implemented; results go to the usual dataset"
        else:
            continue
        found.append(str(entry.error(reason, key)))
    return tuple(found)


def _parse_date(value: Any, key: str, fail: Fail) -> dt.date:
    if isinstance(value, dt.datetime):
        raise fail(f"expected a date YYYY-MM-DD, got the date-time {value.isoformat()}", key)
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.strptime(value, "%Y-%m-%d").date()
        except ValueError:
            pass
    raise fail(f"expected a date YYYY-MM-DD, got {value!r}", key)


def _optional(fields: dict[str, Any], key: str, kind: type, fail: Fail) -> Any:
    value = fields.get(key)
    if value is None:
        return None
    # bool is an int in Python; a TOML `true` is not a number of days
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise fail(f"expected {kind.__name__}, got {value!r}", key)
    return value


def _string_list(fields: dict[str, Any], key: str, fail: Fail) -> tuple[str, ...]:
    value = fields.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail("expected a list of names", key)
    return tuple(value)
