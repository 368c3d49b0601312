"""Analysis windows and their readiness on an analysis date (Jetstream's rules, mozanalysis's TimeLimits).

Windows are inclusive day offsets from each client's own enrollment date. `date` is the last day of
complete data. With E the enrollment period, Jetstream passes num_dates_enrollment = E + 1, so the last
enrollment day is L = start + E.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from jetstream_assets.core.periods import AnalysisPeriod

_FIXED_LENGTH = {AnalysisPeriod.DAY: 1, AnalysisPeriod.WEEK: 7, AnalysisPeriod.DAYS28: 28}
_PREENROLLMENT = {AnalysisPeriod.PREENROLLMENT_WEEK: (-7, -1), AnalysisPeriod.PREENROLLMENT_DAYS28: (-28, -1)}


@dataclass(frozen=True)
class AnalysisWindow:
    period: AnalysisPeriod
    index: int  # 1-based window count, as in the table names
    start: int  # inclusive day offset from each client's enrollment date
    end: int

    @property
    def days(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class ExperimentDates:
    start_date: dt.date
    enrollment_period: int  # E
    end_date: dt.date | None = None
    is_complete: bool = False

    @property
    def num_dates_enrollment(self) -> int:
        return self.enrollment_period + 1

    @property
    def last_enrollment_date(self) -> dt.date:
        return self.start_date + dt.timedelta(days=self.enrollment_period)

    @property
    def overall_length(self) -> int:
        """Days in the overall window: (end - start) - E. Jetstream computes no overall window when this
        is below 1 (an end date on or before L = start + E: mozanalysis refuses the empty window and
        Jetstream raises EnrollmentLongerThanAnalysisException for a negative one)."""
        if self.end_date is None:
            return 0
        return (self.end_date - self.start_date).days - self.num_dates_enrollment + 1

    def data_range(self, window: AnalysisWindow) -> tuple[dt.date, dt.date]:
        """Submission dates a window can touch over all enrolment dates (for a global date filter)."""
        return (
            self.start_date + dt.timedelta(days=window.start),
            self.last_enrollment_date + dt.timedelta(days=window.end),
        )


def resolve_enrollment_period(
    configured: int | None,
    start_date: dt.date | None,
    enrollment_end_date: dt.date | None,
    proposed_enrollment: int | None,
) -> int | None:
    """Config value, else (enrollment end - start) + 1, else Experimenter's proposed enrollment."""
    if configured is not None:
        return int(configured)
    if start_date is not None and enrollment_end_date is not None:
        return (enrollment_end_date - start_date).days + 1
    return proposed_enrollment


def _window_count(dates: ExperimentDates, period: AnalysisPeriod, date: dt.date) -> int:
    if period in _FIXED_LENGTH:
        length = _FIXED_LENGTH[period]
        days_after_enrollment = (date - dates.last_enrollment_date).days + 1
        return max(0, days_after_enrollment // length)
    if period in _PREENROLLMENT:
        return 1 if date >= dates.last_enrollment_date + dt.timedelta(days=1) else 0
    # overall: one window once the end date of a complete experiment is reached
    if dates.is_complete and dates.end_date is not None and date >= dates.end_date:
        return 1 if dates.overall_length >= 1 else 0
    return 0


def window(dates: ExperimentDates, period: AnalysisPeriod, index: int) -> AnalysisWindow:
    if period in _FIXED_LENGTH:
        length = _FIXED_LENGTH[period]
        return AnalysisWindow(period, index, (index - 1) * length, index * length - 1)
    if period in _PREENROLLMENT:
        start, end = _PREENROLLMENT[period]
        return AnalysisWindow(period, 1, start, end)
    assert dates.overall_length >= 1, "no overall window: the experiment ends by the day after enrollment"
    return AnalysisWindow(period, 1, 0, dates.overall_length - 1)


def ready_windows(dates: ExperimentDates, period: AnalysisPeriod, date: dt.date) -> list[AnalysisWindow]:
    """Windows a daily run on `date` computes: the newest one, only if it became ready on `date`."""
    today = _window_count(dates, period, date)
    yesterday = _window_count(dates, period, date - dt.timedelta(days=1))
    if today > yesterday:
        return [window(dates, period, today)]
    return []


def all_windows(dates: ExperimentDates, period: AnalysisPeriod, date: dt.date) -> list[AnalysisWindow]:
    """Every window ready by `date`: what a rerun (every date from the start) computes."""
    return [window(dates, period, i) for i in range(1, _window_count(dates, period, date) + 1)]
