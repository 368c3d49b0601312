"""A resolved metric-hub analysis configuration for one experiment (plain data, no I/O)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.experimenter.models import Experiment

ANALYSIS_BASES = ("enrollments", "exposures")


@dataclass(frozen=True)
class DataSource:
    name: str
    from_expression: str  # a table name or a parenthesised subquery (BigQuery SQL)
    experiments_column_type: str = "simple"  # simple | native | glean | events_stream | none
    client_id_column: str = "client_id"
    submission_date_column: str = "submission_date"
    default_dataset: str | None = None
    friendly_name: str | None = None
    description: str | None = None
    group_id_column: str = "profile_group_id"  # joined on instead of client_id_column for profile-group analyses


@dataclass(frozen=True)
class StatisticSpec:
    name: str  # config name, e.g. "bootstrap_mean"
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)


@dataclass(frozen=True)
class Metric:
    """A metric: computed per client by its select_expression over its data source, or, when derived
    (`depends_on` with no select_expression, e.g. a population ratio), from its upstream metrics' columns."""

    name: str
    select_expression: str | None  # rendered (Jinja resolved) BigQuery aggregate expression; None when derived
    data_source: DataSource | None  # None when derived
    statistics: tuple[StatisticSpec, ...]
    friendly_name: str | None = None
    description: str | None = None
    bigger_is_better: bool = True
    analysis_bases: tuple[str, ...] = ANALYSIS_BASES
    depends_on: tuple[str, ...] = ()
    upstream: tuple["Metric", ...] = ()  # the resolved `depends_on` metrics

    @property
    def is_derived(self) -> bool:
        return self.select_expression is None

    def computed_metrics(self) -> tuple["Metric", ...]:
        """The metrics whose SQL yields this one's data: itself, or (derived) its upstream ones."""
        if not self.is_derived:
            return (self,)
        return tuple(dict.fromkeys(m for up in self.upstream for m in up.computed_metrics()))

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns of the metrics table that hold this metric's data."""
        return tuple(m.name for m in self.computed_metrics())

    @property
    def source_name(self) -> str:
        return self.data_source.name if self.data_source else f"derived from {', '.join(self.depends_on)}"


@dataclass(frozen=True)
class SegmentDataSource:
    name: str
    from_expression: str
    window_start: int = 0
    window_end: int = 0
    client_id_column: str = "client_id"
    submission_date_column: str = "submission_date"
    group_id_column: str = "profile_group_id"


@dataclass(frozen=True)
class Segment:
    name: str
    select_expression: str  # boolean aggregate, BigQuery SQL
    data_source: SegmentDataSource
    friendly_name: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class ExposureSignal:
    name: str
    select_expression: str  # boolean aggregate
    data_source: DataSource
    window_start: int | str | None = None  # int | enrollment_start | enrollment_end | analysis_window_start | analysis_window_end
    window_end: int | str | None = None
    friendly_name: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Outcome:
    slug: str
    friendly_name: str
    description: str
    metrics: tuple[str, ...]
    default_metrics: tuple[str, ...] = ()
    commit_hash: str | None = None
    multiple_testing: str | None = None  # "bonferroni": adjusted intervals for the outcome's family


@dataclass(frozen=True)
class AnalysisConfig:
    """Everything the analysis of one experiment needs, after defaults -> experiment -> outcomes -> definitions."""

    experiment: Experiment  # Experimenter record with metric-hub [experiment] overrides applied
    enrollment_period: int | None
    metrics: dict[AnalysisPeriod, tuple[Metric, ...]]
    segments: tuple[Segment, ...] = ()
    exposure_signal: ExposureSignal | None = None
    enrollment_query: str | None = None
    sample_size: int | None = None  # keep clients with sample_id < sample_size
    analysis_unit: str = "client_id"  # or "profile_group_id": enrollments and data sources join on it
    skip: bool = False
    outcomes: tuple[Outcome, ...] = ()
    overrides: dict[str, Any] = field(default_factory=dict)  # [experiment] keys that override Experimenter
    config_file: str | None = None  # path of jetstream/<slug>.toml when the experiment has one
    config_url: str | None = None  # metric-hub URL of that file
    warnings: tuple[str, ...] = ()  # keys the config sets that we do not act on, each naming file and key

    @property
    def start_date(self) -> dt.date | None:
        return self.experiment.start_date

    @property
    def end_date(self) -> dt.date | None:
        return self.experiment.end_date

    def all_metrics(self) -> dict[str, Metric]:
        out: dict[str, Metric] = {}
        for metrics in self.metrics.values():
            for m in metrics:
                out.setdefault(m.name, m)
        return out
