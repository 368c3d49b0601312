"""Jetstream's analysis periods: names, table suffixes and the config keys that select them."""

from __future__ import annotations

from enum import Enum


class AnalysisPeriod(str, Enum):
    DAY = "day"
    WEEK = "week"
    DAYS28 = "days28"
    OVERALL = "overall"
    PREENROLLMENT_WEEK = "preenrollment_week"
    PREENROLLMENT_DAYS28 = "preenrollment_days28"

    @property
    def table_suffix(self) -> str:
        return _SUFFIX[self]

    @property
    def is_preenrollment(self) -> bool:
        return self in (AnalysisPeriod.PREENROLLMENT_WEEK, AnalysisPeriod.PREENROLLMENT_DAYS28)

    @classmethod
    def from_config_key(cls, key: str) -> "AnalysisPeriod":
        """metric-hub `[metrics]` list names (`weekly`, `28_day`, ...) and period values alike."""
        try:
            return _CONFIG_KEYS[key]
        except KeyError:
            raise ValueError(
                f"unknown analysis period {key!r}; expected one of {sorted(_CONFIG_KEYS)}"
            ) from None


_SUFFIX = {
    AnalysisPeriod.DAY: "daily",
    AnalysisPeriod.WEEK: "weekly",
    AnalysisPeriod.DAYS28: "days28",
    AnalysisPeriod.OVERALL: "overall",
    AnalysisPeriod.PREENROLLMENT_WEEK: "preenrollment_weekly",
    AnalysisPeriod.PREENROLLMENT_DAYS28: "preenrollment_days28",
}

_CONFIG_KEYS = {p.value: p for p in AnalysisPeriod} | {
    "daily": AnalysisPeriod.DAY,
    "weekly": AnalysisPeriod.WEEK,
    "28_day": AnalysisPeriod.DAYS28,
    "preenrollment_weekly": AnalysisPeriod.PREENROLLMENT_WEEK,
}
