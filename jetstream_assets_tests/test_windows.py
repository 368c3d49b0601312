"""Jetstream's dates: enrollment period, period readiness and windows on an analysis date, the analysis plan,
and `check_runnable`'s skip reasons (reference/jetstream.md §1)."""

from __future__ import annotations

import datetime as dt

import pytest

from jetstream_assets.analysis.plan import plan_analysis
from jetstream_assets.analysis.runnable import (
    EndedException,
    EnrollmentNotCompleteException,
    ExplicitSkipException,
    HighPopulationException,
    NoEnrollmentPeriodException,
    NoSlugException,
    NoStartDateException,
    NotStartedException,
    RolloutSkipException,
    UnsupportedApplicationException,
    ValidationException,
    check_runnable,
    slug_warning,
)
from jetstream_assets.core.periods import AnalysisPeriod as P
from jetstream_assets.core.windows import (
    ExperimentDates,
    all_windows,
    ready_windows,
    resolve_enrollment_period,
)
from jetstream_assets.experimenter.models import Branch, Experiment
from jetstream_assets.metric_hub.models import AnalysisConfig, DataSource, Metric, StatisticSpec

START = dt.date(2024, 1, 1)
E = 7
LAST_ENROLLMENT = START + dt.timedelta(days=E)  # L = start + E = 2024-01-08
END = dt.date(2024, 2, 15)


def day(n: int) -> dt.date:
    """The analysis date n days after the last enrollment day L."""
    return LAST_ENROLLMENT + dt.timedelta(days=n)


def spans(windows) -> list[tuple[int, int, int]]:
    return [(w.index, w.start, w.end) for w in windows]


LIVE = ExperimentDates(start_date=START, enrollment_period=E)
COMPLETE = ExperimentDates(start_date=START, enrollment_period=E, end_date=END, is_complete=True)


# --- enrollment period ---------------------------------------------------------------------------------

def test_enrollment_period_prefers_config_then_enrollment_end_then_proposed():
    enrollment_end = dt.date(2024, 1, 8)
    assert resolve_enrollment_period(3, START, enrollment_end, 14) == 3
    assert resolve_enrollment_period(None, START, enrollment_end, 14) == 8  # (end - start).days + 1
    assert resolve_enrollment_period(None, START, None, 14) == 14
    assert resolve_enrollment_period(None, None, enrollment_end, 14) == 14
    assert resolve_enrollment_period(None, START, None, None) is None


def test_last_enrollment_day_is_start_plus_e():
    assert LIVE.last_enrollment_date == dt.date(2024, 1, 8)
    assert LIVE.num_dates_enrollment == E + 1


def test_period_names_and_table_suffixes_are_jetstreams():
    assert {p.value: p.table_suffix for p in P} == {
        "day": "daily", "week": "weekly", "days28": "days28", "overall": "overall",
        "preenrollment_week": "preenrollment_weekly", "preenrollment_days28": "preenrollment_days28",
    }
    assert P.from_config_key("weekly") is P.WEEK
    assert P.from_config_key("28_day") is P.DAYS28
    with pytest.raises(ValueError, match="unknown analysis period"):
        P.from_config_key("fortnightly")


# --- readiness on a daily run --------------------------------------------------------------------------

def test_day_is_ready_every_date_from_last_enrollment_day():
    assert ready_windows(LIVE, P.DAY, day(-1)) == []
    assert spans(ready_windows(LIVE, P.DAY, day(0))) == [(1, 0, 0)]
    assert spans(ready_windows(LIVE, P.DAY, day(4))) == [(5, 4, 4)]  # count = D - L + 1
    assert spans(all_windows(LIVE, P.DAY, day(4))) == [(i, i - 1, i - 1) for i in range(1, 6)]


def test_week_is_ready_when_days_since_last_enrollment_are_a_multiple_of_seven():
    ready_dates = [n for n in range(-3, 30) if ready_windows(LIVE, P.WEEK, day(n))]
    assert ready_dates == [6, 13, 20, 27]  # (D - L + 1) % 7 == 0
    assert spans(ready_windows(LIVE, P.WEEK, day(6))) == [(1, 0, 6)]
    assert spans(ready_windows(LIVE, P.WEEK, day(13))) == [(2, 7, 13)]
    assert spans(all_windows(LIVE, P.WEEK, day(19))) == [(1, 0, 6), (2, 7, 13)]


def test_days28_is_ready_every_28_days():
    ready_dates = [n for n in range(0, 60) if ready_windows(LIVE, P.DAYS28, day(n))]
    assert ready_dates == [27, 55]
    assert spans(ready_windows(LIVE, P.DAYS28, day(55))) == [(2, 28, 55)]


def test_overall_only_on_the_end_date_of_a_complete_experiment():
    expected = (1, 0, (END - START).days - (E + 1))  # [0, 37]
    assert spans(ready_windows(COMPLETE, P.OVERALL, END)) == [expected]
    assert ready_windows(COMPLETE, P.OVERALL, END - dt.timedelta(days=1)) == []
    assert ready_windows(COMPLETE, P.OVERALL, END + dt.timedelta(days=1)) == []  # newest window already done
    assert spans(all_windows(COMPLETE, P.OVERALL, END + dt.timedelta(days=3))) == [expected]
    live_with_end = ExperimentDates(start_date=START, enrollment_period=E, end_date=END, is_complete=False)
    assert ready_windows(live_with_end, P.OVERALL, END) == []
    assert all_windows(LIVE, P.OVERALL, END) == []


@pytest.mark.parametrize("end_offset, overall", [(-1, None), (0, None), (1, (1, 0, 0)), (2, (1, 0, 1))])
def test_no_overall_window_for_an_experiment_ending_by_the_day_after_enrollment(end_offset, overall):
    """Jetstream: (end - start) - E days of overall window; below 1 there is none (mozanalysis refuses the
    empty window [0, -1]; a negative length is EnrollmentLongerThanAnalysisException). E = 7 here, so the
    enrollment end date is start + 6 and L = start + 7."""
    end = LAST_ENROLLMENT + dt.timedelta(days=end_offset)
    dates = ExperimentDates(start_date=START, enrollment_period=E, end_date=end, is_complete=True)
    assert spans(ready_windows(dates, P.OVERALL, end)) == ([overall] if overall else [])
    assert spans(all_windows(dates, P.OVERALL, end + dt.timedelta(days=5))) == ([overall] if overall else [])


@pytest.mark.parametrize("period, bounds", [(P.PREENROLLMENT_WEEK, (-7, -1)), (P.PREENROLLMENT_DAYS28, (-28, -1))])
def test_preenrollment_periods_run_once_the_day_after_enrollment_ends(period, bounds):
    assert [n for n in range(-3, 40) if ready_windows(LIVE, period, day(n))] == [1]  # D == start + E + 1
    assert spans(ready_windows(LIVE, period, day(1))) == [(1, *bounds)]
    assert spans(all_windows(LIVE, period, day(30))) == [(1, *bounds)]
    assert all_windows(LIVE, period, day(0)) == []


@pytest.mark.parametrize("period", list(P))
def test_daily_runs_add_up_to_what_a_rerun_computes(period):
    """Every window computed by a daily run from the start is exactly the set a rerun computes."""
    analysis_date, computed = START, []
    while analysis_date <= END:
        computed += ready_windows(COMPLETE, period, analysis_date)
        assert len(ready_windows(COMPLETE, period, analysis_date)) <= 1  # only the newest window
        assert computed == all_windows(COMPLETE, period, analysis_date)
        analysis_date += dt.timedelta(days=1)


def test_data_range_covers_every_clients_window():
    week2 = all_windows(LIVE, P.WEEK, day(13))[1]
    assert LIVE.data_range(week2) == (START + dt.timedelta(days=7), LAST_ENROLLMENT + dt.timedelta(days=13))
    assert week2.days == 7


# --- plan_analysis -------------------------------------------------------------------------------------

CLIENTS_DAILY = DataSource("clients_daily", "telemetry.clients_daily")


def metric(name: str, bases: tuple[str, ...] = ("enrollments",)) -> Metric:
    return Metric(name, "COALESCE(SUM(active_hours_sum), 0)", CLIENTS_DAILY,
                  (StatisticSpec("bootstrap_mean"),), analysis_bases=bases)


def experiment(**changes) -> Experiment:
    base = Experiment(
        slug="test-exp", branches=(Branch("control"), Branch("treatment")), start_date=START,
        end_date=None, enrollment_end_date=START + dt.timedelta(days=E - 1), proposed_enrollment=14,
        reference_branch="control",
    )
    return base.with_overrides(**changes)


def config(exp: Experiment | None = None, **changes) -> AnalysisConfig:
    fields = dict(
        experiment=exp or experiment(), enrollment_period=E,
        metrics={P.DAY: (metric("a"),), P.WEEK: (metric("a"), metric("b", ("exposures",)))},
    )
    return AnalysisConfig(**(fields | changes))


def test_daily_plan_has_only_the_newest_ready_window_of_configured_periods():
    plan = plan_analysis(config(), day(13), rerun=False)
    assert [p.period for p in plan.periods] == [P.DAY, P.WEEK]  # periods without metrics are left out
    by_period = {p.period: p for p in plan.periods}
    assert spans(by_period[P.DAY].windows) == [(14, 13, 13)]
    assert spans(by_period[P.WEEK].windows) == [(2, 7, 13)]
    assert by_period[P.DAY].bases() == ("enrollments",)
    assert by_period[P.WEEK].bases() == ("enrollments", "exposures")  # union over the period's metrics
    assert plan.enrollments_ready and not plan.is_empty()
    assert plan.dates.last_enrollment_date == LAST_ENROLLMENT


def test_rerun_plan_has_every_window_ready_by_the_date():
    plan = plan_analysis(config(), day(13), rerun=True)
    by_period = {p.period: p for p in plan.periods}
    assert len(by_period[P.DAY].windows) == 14
    assert spans(by_period[P.WEEK].windows) == [(1, 0, 6), (2, 7, 13)]


def test_plan_before_enrollment_ends_is_empty():
    plan = plan_analysis(config(), day(-1), rerun=False)
    assert plan.is_empty() and not plan.enrollments_ready
    assert plan_analysis(config(), day(3), rerun=False).periods[1].windows == ()  # week not ready


def test_plan_of_a_complete_experiment_includes_overall_on_its_end_date():
    exp = experiment(end_date=END, status="Complete")
    cfg = config(exp, metrics={P.OVERALL: (metric("a"),)})
    (overall,) = plan_analysis(cfg, END, rerun=False).periods
    assert spans(overall.windows) == [(1, 0, 37)]


def test_windows_reaching_past_the_data_are_not_ready_whatever_the_date():
    # a rerun asked for day 20, but the data stops on day 10, in the middle of the second week
    plan = plan_analysis(config(), day(20), rerun=True, data_through=day(10))
    by_period = {p.period: p for p in plan.periods}
    assert plan.date == day(10)
    assert len(by_period[P.DAY].windows) == 11 and [w.index for w in by_period[P.DAY].not_ready] == list(range(12, 22))
    assert spans(by_period[P.WEEK].windows) == [(1, 0, 6)]
    assert spans(by_period[P.WEEK].not_ready) == [(2, 7, 13), (3, 14, 20)]


def test_a_daily_run_past_the_data_computes_nothing_and_data_ahead_changes_nothing():
    (day_plan, week_plan) = plan_analysis(config(), day(13), rerun=False, data_through=day(12)).periods
    assert day_plan.windows == week_plan.windows == ()
    assert spans(week_plan.not_ready) == [(2, 7, 13)]
    assert plan_analysis(config(), day(13), rerun=False, data_through=day(40)) == plan_analysis(
        config(), day(13), rerun=False)


def test_enrollments_wait_for_the_data_of_the_last_enrollment_day():
    assert not plan_analysis(config(), day(5), rerun=True, data_through=day(-1)).enrollments_ready
    assert plan_analysis(config(), day(5), rerun=True, data_through=day(0)).enrollments_ready


# --- check_runnable ------------------------------------------------------------------------------------

D = dt.date(2024, 1, 20)


@pytest.mark.parametrize("cfg, error", [
    (config(experiment(end_date=D - dt.timedelta(days=1))), EndedException),
    (config(experiment(is_rollout=True)), RolloutSkipException),
    (config(skip=True), ExplicitSkipException),
    (config(experiment(start_date=None)), NoStartDateException),
    (config(experiment(enrollment_end_date=None)), EnrollmentNotCompleteException),
    (config(experiment(start_date=D + dt.timedelta(days=1))), NotStartedException),
    (config(experiment(app_name="thunderbird")), UnsupportedApplicationException),
    (config(experiment(is_high_population=True)), HighPopulationException),
    (config(experiment(slug="")), NoSlugException),
    (config(enrollment_period=None), NoEnrollmentPeriodException),
])
def test_check_runnable_skip_reasons(cfg, error):
    with pytest.raises(error) as raised:
        check_runnable(cfg, D)
    assert isinstance(raised.value, ValidationException)
    assert raised.value.slug == cfg.experiment.slug


def test_enrollment_period_zero_is_no_enrollment_period():
    """Jetstream's `if not enrollment_period`: 0 is the same skip as none, with Jetstream's message."""
    with pytest.raises(NoEnrollmentPeriodException, match=r"^test-exp -> experiment has no enrollment period"):
        check_runnable(config(enrollment_period=0, overrides={"enrollment_period": 0}), D)


def test_ended_experiment_without_enrollment_end_is_skipped_as_ended():
    """Jetstream checks the end date in check_runnable, before the enrollment-not-complete check."""
    ended = experiment(end_date=D - dt.timedelta(days=1), enrollment_end_date=None)
    with pytest.raises(EndedException):
        check_runnable(config(ended), D)
    with pytest.raises(EndedException):  # a rollout that ended is "ended" too (Jetstream's order)
        check_runnable(config(experiment(end_date=D - dt.timedelta(days=1), is_rollout=True)), D)


def test_runnable_experiments_pass():
    check_runnable(config(), D)
    check_runnable(config(experiment(end_date=D)), D)  # ends on the analysis date: still analysed
    check_runnable(config(experiment(app_name="fenix")), D)


def test_enrollment_period_override_allows_open_enrollment():
    open_enrollment = experiment(enrollment_end_date=None)
    check_runnable(config(open_enrollment, overrides={"enrollment_period": E}), D)


def test_skip_messages_name_the_slug():
    with pytest.raises(EndedException, match=r"^test-exp -> .*2024-01-19"):
        check_runnable(config(experiment(end_date=D - dt.timedelta(days=1))), D)


def test_slug_warning_only_for_unusual_characters():
    assert slug_warning("good-slug_1") is None
    assert slug_warning("") is None
    warning = slug_warning("bad.slug ü")
    assert warning is not None and "'bad_slug__'" in warning
