"""Whether an experiment can be analysed on a date: Jetstream's `check_runnable` and its skip reasons.

The exception class names are Jetstream's, because downstream monitoring (the errors export, the
`jetstream_analysis_errors_v1` view) sorts log rows by `exception_type`.
"""

from __future__ import annotations

import datetime as dt

from jetstream_assets.core.naming import is_valid_slug, table_slug
from jetstream_assets.core.platforms import SUPPORTED_APPS
from jetstream_assets.metric_hub.models import AnalysisConfig


class ValidationException(Exception):
    """The experiment is not analysed on this date; logged, the run itself succeeds."""

    def __init__(self, slug: str, message: str):
        super().__init__(f"{slug} -> {message}")
        self.slug = slug


class NoSlugException(ValidationException):
    pass


class ExplicitSkipException(ValidationException):
    pass


class HighPopulationException(ValidationException):
    pass


class NoStartDateException(ValidationException):
    pass


class NoEnrollmentPeriodException(ValidationException):
    pass


class EnrollmentNotCompleteException(ValidationException):
    pass


class EndedException(ValidationException):
    pass


class RolloutSkipException(ValidationException):
    pass


class UnsupportedApplicationException(ValidationException):
    pass


class NotStartedException(ValidationException):
    pass


class NoEnrolledClientsException(ValidationException):
    """Nobody enrolled in the experiment's branches: there is nothing to analyse (yet)."""


# skips that are part of an experiment's normal life and are not shown as errors
EXPECTED_SKIPS = frozenset({"EndedException", "EnrollmentNotCompleteException"})


def check_runnable(config: AnalysisConfig, date: dt.date) -> None:
    """Jetstream's `check_runnable` in its order, then its enrollment-not-complete check.

    An enrollment period of 0 is "no enrollment period", as in Jetstream (`not enrollment_period`); the
    ended check comes before the enrollment check, so an ended experiment that never got an enrollment
    end date is skipped as ended. Not-started is ours (Jetstream has no such skip: it finds no window)."""
    exp = config.experiment
    slug = exp.slug
    if not slug:
        raise NoSlugException(str(slug), "experiment has no slug")
    if config.skip:
        raise ExplicitSkipException(slug, "skipped by its metric-hub config (skip = true)")
    if exp.is_high_population:
        raise HighPopulationException(slug, "high-population experiments are not analysed")
    if not config.enrollment_period:
        raise NoEnrollmentPeriodException(slug, "experiment has no enrollment period")
    if exp.start_date is None:
        raise NoStartDateException(slug, "experiment has no start date")
    if exp.end_date is not None and exp.end_date < date:
        raise EndedException(slug, f"experiment ended on {exp.end_date}, before {date}")
    if exp.is_rollout:
        raise RolloutSkipException(slug, "rollouts are not analysed")
    if exp.app_name not in SUPPORTED_APPS:
        raise UnsupportedApplicationException(slug, f"application {exp.app_name!r} is not supported")
    if exp.start_date > date:
        raise NotStartedException(slug, f"experiment starts on {exp.start_date}, after {date}")
    if exp.enrollment_end_date is None and "enrollment_period" not in config.overrides:
        raise EnrollmentNotCompleteException(slug, "enrollment has not ended (no enrollment end date)")


def slug_warning(slug: str) -> str | None:
    """Jetstream analyses a slug with unusual characters under a sanitised table name; say so."""
    if slug and not is_valid_slug(slug):
        return (
            f"slug {slug!r} has characters outside [A-Za-z0-9_-]; its tables and files use "
            f"{table_slug(slug)!r} instead"
        )
    return None
