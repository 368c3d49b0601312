"""What a results page shows, as plain data (filled by `gather`, drawn by `render`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from jetstream_assets.metric_hub.models import Outcome


@dataclass(frozen=True)
class Alert:
    """One health check of the experiment, as the page's banner shows it."""

    name: str  # the check's name, e.g. "sample_ratio"
    severity: str  # "ERROR" or "WARN"
    passed: bool
    summary: str  # the evaluation's own one-line result (shares, p-value...)
    check_description: str  # what the check tests


@dataclass(frozen=True)
class MetricInfo:
    name: str
    friendly_name: str
    description: str
    bigger_is_better: bool
    analysis_bases: tuple[str, ...]


@dataclass
class PageData:
    slug: str
    branches: tuple[str, ...]
    reference_branch: str | None
    start_date: dt.date | None = None
    enrollment_end_date: dt.date | None = None
    end_date: dt.date | None = None
    metrics: dict[str, MetricInfo] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)  # `multiple_testing` labels the adjusted intervals
    statistics: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # period suffix -> rows
    errors: list[dict[str, Any]] = field(default_factory=list)  # errors export rows
    alerts: list[Alert] = field(default_factory=list)
    skip_reason: str | None = None  # why the experiment was not analysed, when it was not
    problems: list[str] = field(default_factory=list)  # exports that could not be read, and why

    @property
    def has_statistics(self) -> bool:
        return any(self.statistics.values())
