"""Turn Experimenter v8 records into `Experiment`s, one bad record never spoiling the others.

Field rules follow Jetstream's `experimenter.py` (everything is type "v6"; status "Complete" from
`endDate` on, the end date itself included; app name defaults to Firefox desktop; a missing app id is
the app's id on its channel, see `core.platforms`) and bigquery-etl's
`experimenter_experiments_v1` import (`is_high_population` is always false for Nimbus records).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jetstream_assets.core.platforms import DESKTOP, resolve_app_id
from jetstream_assets.experimenter.models import Branch, BucketConfig, Experiment


class ExperimentParseError(ValueError):
    """One Experimenter record is malformed; `field` is the API path of the offending value."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class ExperimentProblem:
    """Why the record at `index` of the payload was skipped."""

    index: int
    slug: str | None
    field: str
    reason: str

    def __str__(self) -> str:
        who = self.slug if self.slug else f"record #{self.index}"
        return f"experiment {who}: {self.field}: {self.reason}"


@dataclass(frozen=True)
class ParseResult:
    experiments: list[Experiment]
    problems: list[ExperimentProblem]


def derive_status(end_date: dt.date | None, today: dt.date) -> str:
    """Jetstream's status rule: "Live" while the end date is missing or later than `today`.

    Jetstream compares the end date's midnight with the current time, so on the end date itself the
    experiment is already "Complete"."""
    return "Live" if end_date is None or end_date > today else "Complete"


def parse_experiments(payload: list[Any], *, today: dt.date) -> ParseResult:
    """Parse every record; malformed ones and repeated slugs become problems, not exceptions."""
    experiments: list[Experiment] = []
    problems: list[ExperimentProblem] = []
    seen: set[str] = set()
    for index, record in enumerate(payload):
        slug = _slug_hint(record)
        try:
            experiment = parse_experiment(record, today=today)
        except ExperimentParseError as err:
            problems.append(ExperimentProblem(index, slug, err.field, err.reason))
            continue
        if experiment.slug in seen:
            reason = "duplicate slug; first record kept"
            problems.append(ExperimentProblem(index, slug, "slug", reason))
            continue
        seen.add(experiment.slug)
        experiments.append(experiment)
    return ParseResult(experiments, problems)


def parse_experiment(obj: dict[str, Any], *, today: dt.date) -> Experiment:
    """One v8 record as an `Experiment`; raises `ExperimentParseError` naming the bad field."""
    if not isinstance(obj, Mapping):
        raise ExperimentParseError("<record>", f"expected a JSON object, got {type(obj).__name__}")
    slug = _required_str(obj, "slug")
    end_date = _optional_date(obj, "endDate")
    app_name = _optional_str(obj, "appName") or DESKTOP
    channel = _optional_str(obj, "channel")
    return Experiment(
        slug=slug,
        branches=_branches(obj),
        start_date=_optional_date(obj, "startDate"),
        end_date=end_date,
        enrollment_end_date=_optional_date(obj, "enrollmentEndDate"),
        proposed_enrollment=_optional_int(obj, "proposedEnrollment"),
        reference_branch=_optional_str(obj, "referenceBranch"),
        app_name=app_name,
        app_id=resolve_app_id(app_name, _optional_str(obj, "appId"), channel),
        channel=channel,
        channels=_str_list(obj, "channels"),
        outcomes=_slug_list(obj, "outcomes"),
        segments=_slug_list(obj, "segments"),
        is_rollout=_flag(obj, "isRollout"),
        is_enrollment_paused=_flag(obj, "isEnrollmentPaused"),
        # v8 has no such field; bigquery-etl and Jetstream both record False for Nimbus.
        is_high_population=False,
        is_firefox_labs_opt_in=_flag(obj, "isFirefoxLabsOptIn"),
        status=derive_status(end_date, today),
        experiment_type="v6",
        bucket_config=_bucket_config(obj),
        feature_ids=_str_list(obj, "featureIds"),
        targeting=_optional_str(obj, "targeting"),
        raw=dict(obj),
    )


def _slug_hint(record: Any) -> str | None:
    """The record's slug for problem reports, if it has a usable one."""
    if isinstance(record, Mapping) and isinstance(record.get("slug"), str) and record["slug"]:
        return record["slug"]
    return None


def _required_str(obj: Mapping[str, Any], key: str, path: str | None = None) -> str:
    value = obj.get(key)
    if value is None:
        raise ExperimentParseError(path or key, "missing")
    if not isinstance(value, str) or not value:
        raise ExperimentParseError(path or key, f"expected a non-empty string, got {value!r}")
    return value


def _optional_str(obj: Mapping[str, Any], key: str, path: str | None = None) -> str | None:
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ExperimentParseError(path or key, f"expected a string, got {value!r}")


def _optional_int(obj: Mapping[str, Any], key: str, path: str | None = None) -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    # bool is an int subclass in Python but never a valid count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExperimentParseError(path or key, f"expected an integer, got {value!r}")
    return value


def _flag(obj: Mapping[str, Any], key: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ExperimentParseError(key, f"expected true/false, got {value!r}")
    return value


def _optional_date(obj: Mapping[str, Any], key: str) -> dt.date | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
        # Accept a full ISO timestamp too (bigquery-etl's import does), keeping its date.
        try:
            return dt.datetime.fromisoformat(value).date()
        except ValueError:
            pass
    raise ExperimentParseError(key, f"expected a YYYY-MM-DD date, got {value!r}")


def _list(obj: Mapping[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ExperimentParseError(key, f"expected a list, got {type(value).__name__}")
    return value


def _str_list(obj: Mapping[str, Any], key: str) -> tuple[str, ...]:
    items = _list(obj, key)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ExperimentParseError(f"{key}[{i}]", f"expected a string, got {item!r}")
    return tuple(items)


def _slug_list(obj: Mapping[str, Any], key: str) -> tuple[str, ...]:
    """Slugs of a `[{"slug": ...}, ...]` list such as `outcomes` or `segments`."""
    slugs = []
    for i, item in enumerate(_list(obj, key)):
        if not isinstance(item, Mapping):
            raise ExperimentParseError(f"{key}[{i}]", "expected an object with a slug")
        slugs.append(_required_str(item, "slug", f"{key}[{i}].slug"))
    return tuple(slugs)


def _branches(obj: Mapping[str, Any]) -> tuple[Branch, ...]:
    branches: list[Branch] = []
    for i, item in enumerate(_list(obj, "branches")):
        path = f"branches[{i}]"
        if not isinstance(item, Mapping):
            raise ExperimentParseError(path, "expected an object")
        slug = _required_str(item, "slug", f"{path}.slug")
        if any(b.slug == slug for b in branches):
            raise ExperimentParseError(f"{path}.slug", f"duplicate branch slug {slug!r}")
        branches.append(Branch(slug=slug, ratio=_ratio(item.get("ratio"), f"{path}.ratio")))
    return tuple(branches)


def _ratio(value: Any, path: str) -> float:
    if value is None:
        raise ExperimentParseError(path, "missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ExperimentParseError(path, f"expected a number, got {value!r}")
    # The monitoring table stores ratios as INT64, as Experimenter issues them.
    if value < 0 or not float(value).is_integer():
        raise ExperimentParseError(path, f"expected a non-negative whole number, got {value!r}")
    return float(value)


def _bucket_config(obj: Mapping[str, Any]) -> BucketConfig:
    value = obj.get("bucketConfig")
    if value is None:
        return BucketConfig()
    if not isinstance(value, Mapping):
        got = type(value).__name__
        raise ExperimentParseError("bucketConfig", f"expected an object, got {got}")
    path = "bucketConfig."
    return BucketConfig(
        randomization_unit=_optional_str(value, "randomizationUnit", path + "randomizationUnit"),
        namespace=_optional_str(value, "namespace", path + "namespace"),
        start=_optional_int(value, "start", path + "start"),
        count=_optional_int(value, "count", path + "count"),
        total=_optional_int(value, "total", path + "total"),
    )
