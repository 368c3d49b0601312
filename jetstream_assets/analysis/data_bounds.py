"""The last day of complete data an experiment's analysis can use.

An analysis reads its enrollment events and the tables behind its metrics, segments and exposure
signal. A day is complete once every one of those tables has it, so the bound is the minimum over the
tables of the latest date each holds. A date present counts as complete: Mozilla's ETL writes each
day's partition of these tables in one job.

Data sources whose `from_expression` is a subquery are not measured (they are logged at INFO): taking
MAX over a subquery measures its filter (e.g. the last day this experiment had an event), not whether
the day's data has landed, and the tables inside such subqueries are, in practice, the events table or
another source's table that is measured anyway.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field

from jetstream_assets.analysis.logs import context
from jetstream_assets.analysis.plan import AnalysisPlan
from jetstream_assets.engines.warehouse import QueryLabels, Warehouse, WarehouseError
from jetstream_assets.metric_hub.models import AnalysisConfig
from jetstream_assets.sql.enrollments import events_table

EVENTS_DATE_COLUMN = "submission_timestamp"
_TABLE_PATH = re.compile(r"^`?[A-Za-z0-9_.\-]+`?$")


@dataclass(frozen=True)
class SourceTable:
    table: str  # BigQuery path as the config writes it
    date_column: str
    read_by: tuple[str, ...]  # data sources (or "enrollments") that read it


@dataclass(frozen=True)
class DataBounds:
    latest: dict[str, dt.date | None]  # table -> latest date present since the experiment started
    read_by: dict[str, tuple[str, ...]] = field(default_factory=dict)  # table -> data sources reading it
    unmeasured: tuple[str, ...] = ()  # data sources given as subqueries
    unreadable: dict[str, str] = field(default_factory=dict)  # table -> why its latest date is unknown

    @property
    def last_complete_day(self) -> dt.date | None:
        """None when some table has no data since the experiment started: no day is complete."""
        days = list(self.latest.values())
        return None if any(d is None for d in days) else min(days)

    def short_of(self, day: dt.date) -> dict[str, dt.date | None]:
        """The tables that do not reach `day`, with their latest date (None: no data since the start)."""
        return {t: d for t, d in self.latest.items() if d is None or d < day}


def is_table_path(from_expression: str) -> bool:
    return bool(_TABLE_PATH.match(from_expression.strip()))


def source_tables(config: AnalysisConfig) -> tuple[list[SourceTable], list[str]]:
    """The tables the analysis reads (with the date column to measure), and the data sources that are
    subqueries, by name."""
    found: dict[tuple[str, str], list[str]] = {(events_table(config), EVENTS_DATE_COLUMN): ["enrollments"]}
    subqueries: list[str] = []
    # a derived metric has no data source of its own: its upstream metrics' sources are read
    sources = [m.data_source for m in config.all_metrics().values() if m.data_source is not None]
    sources += [s.data_source for s in config.segments]
    if config.exposure_signal is not None:
        sources.append(config.exposure_signal.data_source)
    for source in sources:
        if not is_table_path(source.from_expression):
            if source.name not in subqueries:
                subqueries.append(source.name)
            continue
        readers = found.setdefault((source.from_expression.strip().strip("`"), source.submission_date_column), [])
        if source.name not in readers:
            readers.append(source.name)
    tables = [SourceTable(table, column, tuple(readers)) for (table, column), readers in found.items()]
    return tables, subqueries


def data_bounds(warehouse: Warehouse, config: AnalysisConfig) -> DataBounds:
    """Ask the warehouse for the latest date of every table the experiment reads (only dates from the
    experiment's start are scanned, so the question stays cheap on BigQuery)."""
    assert config.start_date is not None
    tables, subqueries = source_tables(config)
    labels = QueryLabels(experiment=config.experiment.slug)
    read_by = {t.table: t.read_by for t in tables}
    latest: dict[str, dt.date | None] = {}
    unreadable: dict[str, str] = {}
    for t in tables:
        try:
            latest[t.table] = warehouse.latest_date(t.table, t.date_column, since=config.start_date, labels=labels)
        except WarehouseError as e:
            # the queries reading it fail on their own, each logged with its metric; the bound uses the others
            unreadable[t.table] = str(e)
    return DataBounds(latest=latest, read_by=read_by, unmeasured=tuple(subqueries), unreadable=unreadable)


def data_through(config: AnalysisConfig, bounds: DataBounds) -> dt.date | None:
    """The last day of complete data; the day before the start when a table has nothing since then;
    None (unbounded) when no table could be measured: the analysis' own queries then say what is wrong."""
    assert config.start_date is not None
    if not bounds.latest:
        return None
    last = bounds.last_complete_day
    return last if last is not None else config.start_date - dt.timedelta(days=1)


def log_data_bounds(
    log: logging.Logger, config: AnalysisConfig, bounds: DataBounds, date: dt.date | None, *, warn: bool = True
) -> None:
    """What bounds the analysis. `date` is the date the run asked for (None: the run asked for none and
    analyses up to the data): a table short of it is a WARNING row naming the table, the data sources
    reading it and the date. Problems are INFO when not `warn` (an earlier step of the run said them)."""
    slug = config.experiment.slug
    level = logging.WARNING if warn else logging.INFO
    for name in bounds.unmeasured:
        log.info("%s: data source %s is a subquery; its last day of data is not measured", slug, name,
                 extra=context(experiment=slug))
    for table, error in bounds.unreadable.items():
        log.log(level, "%s: cannot tell the last day of data of %s (read by %s): %s", slug, table,
                ", ".join(bounds.read_by[table]), error, extra=context(experiment=slug))
    if date is None:
        return
    for table, latest in bounds.short_of(date).items():
        held = f"has data through {latest} only" if latest else f"has no data since {config.start_date}"
        # a daily run computes only the windows that became ready on its date: once the data has landed,
        # a rerun (`jetstream-assets rerun`, or a backfill of the partition) computes what this one left out
        log.log(level, "%s: %s (read by %s) %s: %s is not complete, no window needing data past %s is "
                "computed; rerun the experiment once the data has landed",
                slug, table, ", ".join(bounds.read_by[table]), held, date,
                latest or config.start_date - dt.timedelta(days=1), extra=context(experiment=slug))


def log_not_ready(log: logging.Logger, slug: str, plan: AnalysisPlan) -> None:
    """One INFO line per period whose due windows reach past the data."""
    for period_plan in plan.periods:
        if not period_plan.not_ready:
            continue
        indexes = [w.index for w in period_plan.not_ready]
        which = f"window {indexes[0]}" if len(indexes) == 1 else f"windows {indexes[0]}-{indexes[-1]}"
        log.info("%s: %s %s not ready: the last day of data is %s", slug, period_plan.period.value, which,
                 plan.date, extra=context(experiment=slug, analysis_period=period_plan.period.value))
