"""Which windows of which periods an analysis run computes on its date."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.core.windows import AnalysisWindow, ExperimentDates, all_windows, ready_windows
from jetstream_assets.metric_hub.models import AnalysisConfig, Metric


@dataclass(frozen=True)
class PeriodPlan:
    period: AnalysisPeriod
    windows: tuple[AnalysisWindow, ...]
    metrics: tuple[Metric, ...]
    not_ready: tuple[AnalysisWindow, ...] = ()  # due by the run's date, but their days reach past the data

    def bases(self) -> tuple[str, ...]:
        """Analysis bases are the union over the period's metrics (Jetstream's rule)."""
        seen = {b for m in self.metrics for b in m.analysis_bases}
        return tuple(b for b in ("enrollments", "exposures") if b in seen)


@dataclass(frozen=True)
class AnalysisPlan:
    date: dt.date  # the last day analysed: the run's date, or the last day of complete data if earlier
    rerun: bool
    dates: ExperimentDates
    periods: tuple[PeriodPlan, ...]

    @property
    def enrollments_ready(self) -> bool:
        return self.date >= self.dates.last_enrollment_date

    def is_empty(self) -> bool:
        return not any(p.windows for p in self.periods)


def experiment_dates(config: AnalysisConfig) -> ExperimentDates:
    exp = config.experiment
    assert exp.start_date is not None and config.enrollment_period is not None
    return ExperimentDates(
        start_date=exp.start_date,
        enrollment_period=config.enrollment_period,
        end_date=exp.end_date,
        is_complete=exp.status == "Complete",
    )


def plan_analysis(
    config: AnalysisConfig, date: dt.date, *, rerun: bool, data_through: dt.date | None = None,
    published: Callable[[AnalysisPeriod, int], bool] | None = None,
) -> AnalysisPlan:
    """A daily run computes only the windows that became ready on `date`; a rerun computes every window
    ready by `date`, which lands on the same tables the daily runs produced one by one.

    `data_through`, the last day of complete data (None: not bounded), bounds both: a window whose days
    reach past it is not ready (kept in `not_ready`, never computed), whatever `date` says.

    `published(period, index)` tells whether a window's tables are published; given it, a daily run also
    computes every earlier window that should be published and is not (a run killed before it published,
    a day whose data came late), so the daily sequence converges on what a rerun gives."""
    dates = experiment_dates(config)
    bound = date if data_through is None else min(date, data_through)

    def pick(dates: ExperimentDates, period: AnalysisPeriod, date: dt.date) -> list[AnalysisWindow]:
        if rerun:
            return all_windows(dates, period, date)
        due = ready_windows(dates, period, date)
        if published is None:
            return due
        indexes = {w.index for w in due}
        missing = [w for w in all_windows(dates, period, bound)
                   if w.index not in indexes and not published(period, w.index)]
        return sorted([*missing, *due], key=lambda w: w.index)

    periods = []
    for period in AnalysisPeriod:
        metrics = config.metrics.get(period, ())
        if not metrics:
            continue
        complete = len(all_windows(dates, period, bound))
        due = pick(dates, period, date)
        periods.append(PeriodPlan(
            period,
            tuple(w for w in due if w.index <= complete),
            tuple(metrics),
            not_ready=tuple(w for w in due if w.index > complete),
        ))
    return AnalysisPlan(date=bound, rerun=rerun, dates=dates, periods=tuple(periods))
