"""Jetstream's table, view and bucket-object names (contract §2)."""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^a-zA-Z0-9_]")
VALID_SLUG = re.compile(r"^[A-Za-z0-9_-]+$")


def table_slug(slug: str) -> str:
    """The slug as it appears in table names: every char outside [A-Za-z0-9_] becomes `_`."""
    return _UNSAFE.sub("_", slug)


def is_valid_slug(slug: str) -> bool:
    return bool(VALID_SLUG.match(slug or ""))


def enrollments_table(slug: str) -> str:
    return f"enrollments_{table_slug(slug)}"


def metrics_table_prefix(slug: str, basis: str, period: str) -> str:
    return f"{table_slug(slug)}_{basis}_{period}_"


def metrics_table(slug: str, basis: str, period: str, window_index: int) -> str:
    return f"{metrics_table_prefix(slug, basis, period)}{window_index}"


def metrics_view(slug: str, basis: str, suffix: str) -> str:
    return f"{table_slug(slug)}_{basis}_{suffix}"


def statistics_table_prefix(slug: str, period: str) -> str:
    return f"statistics_{table_slug(slug)}_{period}_"


def statistics_table(slug: str, period: str, window_index: int) -> str:
    return f"{statistics_table_prefix(slug, period)}{window_index}"


def statistics_view(slug: str, suffix: str) -> str:
    return f"statistics_{table_slug(slug)}_{suffix}"


def statistics_object(slug: str, suffix: str) -> str:
    return f"statistics/{statistics_view(slug, suffix)}.json"


def metadata_object(slug: str) -> str:
    return f"metadata/metadata_{table_slug(slug)}.json"


def errors_object(slug: str) -> str:
    return f"errors/errors_{table_slug(slug)}.json"


_PERIODS = "day|week|days28|overall|preenrollment_week|preenrollment_days28"
_SUFFIXES = "daily|weekly|days28|overall|preenrollment_weekly|preenrollment_days28"


def is_period_result(slug: str, name: str) -> bool:
    """Whether `name` is one of the experiment's metrics/statistics tables or views (what a rerun replaces)."""
    s = re.escape(table_slug(slug))
    pattern = (
        rf"^(?:{s}_(?:enrollments|exposures)_(?:(?:{_PERIODS})_[0-9]+|{_SUFFIXES})"
        rf"|statistics_{s}_(?:(?:{_PERIODS})_[0-9]+|{_SUFFIXES}))$"
    )
    return re.match(pattern, name) is not None
