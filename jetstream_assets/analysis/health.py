"""The health of one experiment's analysis: the rules behind its asset checks.

Enrollment rules are Experimenter's alerts (`experiments/monitoring_utils.py`): SRM_MISMATCH,
ZERO_ENROLLMENT and UNENROLLMENT_SPIKE. Completeness and the export contract guard what is published:
every configured statistic present, and every published file readable and valid. Each rule returns a
`HealthResult` whose metadata says what to look at (counts, shares, p-value, the offending metric...).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from jetstream_assets.analysis.exports import published_problem
from jetstream_assets.analysis.logs import LOGS_TABLE
from jetstream_assets.analysis.plan import AnalysisPlan, PeriodPlan
from jetstream_assets.core.naming import (
    enrollments_table,
    metrics_table,
    metrics_view,
    statistics_object,
    statistics_table,
    statistics_view,
)
from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.engines.bucket import Bucket, BucketError
from jetstream_assets.engines.warehouse import QueryLabels, Warehouse, WarehouseError
from jetstream_assets.metric_hub.models import AnalysisConfig
from jetstream_assets.sql.dialect import quote_string

SRM_MAX_P_VALUE = 0.001
SRM_MIN_SHARE_DEVIATION = 0.05
MIN_ENROLLMENT = 1_000
MIN_ENROLLMENT_DAYS = 3
MAX_UNENROLLMENT_RATE = 0.10
_SHOWN = 20  # offending items listed in metadata; the counts cover all of them


@dataclass(frozen=True)
class HealthResult:
    passed: bool
    description: str  # one line with the numbers a user needs first
    metadata: dict[str, Any]
    # a failure that is reported but must not block what comes after it (a check's severity drops to WARN)
    warn_only: bool = False


# --- enrollment (Experimenter's alert rules) ------------------------------------------------------


def sample_ratio_mismatch(enrolled: Mapping[str, int], ratios: Mapping[str, float]) -> HealthResult:
    """Chi-square of enrollments per branch against the Experimenter ratios (any number of branches).
    Fails only when p < 0.001 and some branch's share is ≥ 5 percentage points off its ratio."""
    branches = list(ratios)
    observed = np.array([enrolled.get(b, 0) for b in branches], dtype=float)
    total = int(observed.sum())
    expected_share = np.array([ratios[b] for b in branches], dtype=float)
    expected_share /= expected_share.sum()
    if total == 0 or len(branches) < 2:
        return HealthResult(True, f"nothing to compare ({total} clients in {len(branches)} branch(es))",
                            {"enrolled": total, "branches": len(branches)})
    observed_share = observed / total
    deviation = observed_share - expected_share
    chi2, p_value = stats.chisquare(observed, expected_share * total)
    worst = int(np.argmax(np.abs(deviation)))
    # rounded so that an exact 5-point deviation is not lost to floating point
    mismatch = p_value < SRM_MAX_P_VALUE and round(abs(deviation[worst]), 9) >= SRM_MIN_SHARE_DEVIATION
    shares = ", ".join(
        f"{b} {o:.1%} (expected {e:.1%})" for b, o, e in zip(branches, observed_share, expected_share)
    )
    return HealthResult(
        passed=not mismatch,
        description=f"{shares}; largest deviation {abs(deviation[worst]) * 100:.1f} pp ({branches[worst]}), "
        f"chi-square p = {p_value:.3g}",
        metadata={
            "enrolled": total,
            "enrolled_per_branch": {b: int(n) for b, n in zip(branches, observed)},
            "observed_share": {b: round(float(s), 4) for b, s in zip(branches, observed_share)},
            "expected_share": {b: round(float(s), 4) for b, s in zip(branches, expected_share)},
            "max_deviation_pp": round(float(abs(deviation[worst])) * 100, 2),
            "max_deviation_branch": branches[worst],
            "chi_square": round(float(chi2), 3),
            "degrees_of_freedom": len(branches) - 1,
            "p_value": float(p_value),
        },
    )


def enrollment_days_passed(start_date: dt.date, last_enrollment_date: dt.date, date: dt.date) -> int:
    """Days of enrollment that have passed on `date` (the start date counts as the first)."""
    return max((min(date, last_enrollment_date) - start_date).days + 1, 0)


def enrollment_volume(enrolled: int, enrollment_days: int) -> HealthResult:
    """Fails with fewer than 1,000 clients once at least 3 days of enrollment have passed."""
    low = enrollment_days >= MIN_ENROLLMENT_DAYS and enrolled < MIN_ENROLLMENT
    verdict = "below" if low else "at or above" if enrolled >= MIN_ENROLLMENT else "below (too early to tell)"
    return HealthResult(
        passed=not low,
        description=f"{enrolled:,} clients enrolled after {enrollment_days} day(s) of enrollment, "
        f"{verdict} the minimum of {MIN_ENROLLMENT:,}",
        metadata={"enrolled": enrolled, "enrollment_days": enrollment_days, "minimum": MIN_ENROLLMENT,
                  "minimum_days": MIN_ENROLLMENT_DAYS},
    )


def unenrollment_query(warehouse: Warehouse, slug: str, events_table: str, first: dt.date, last: dt.date) -> str:
    """BigQuery SQL: enrolled clients per branch and how many of them sent an unenrollment event for
    the experiment between `first` and `last` (the date filter prunes events_stream's partitions)."""
    return f"""WITH unenrolled AS (
  SELECT DISTINCT client_id
  FROM {events_table}
  WHERE DATE(submission_timestamp) BETWEEN DATE {quote_string(first.isoformat())} AND DATE {quote_string(last.isoformat())}
    AND event_category = 'nimbus_events'
    AND event_name = 'unenrollment'
    AND JSON_VALUE(event_extra, '$.experiment') = {quote_string(slug)}
)
SELECT e.branch, COUNT(*) AS enrolled, COUNTIF(u.client_id IS NOT NULL) AS unenrolled
FROM {warehouse.table_ref(warehouse.dataset, enrollments_table(slug))} AS e
LEFT JOIN unenrolled AS u ON u.client_id = e.analysis_id
GROUP BY e.branch
ORDER BY e.branch"""


def unenrollment_rate(per_branch: pd.DataFrame) -> HealthResult:
    """Fails when more than 10% of the enrolled clients unenrolled (`branch, enrolled, unenrolled` rows)."""
    enrolled = int(per_branch["enrolled"].sum())
    unenrolled = int(per_branch["unenrolled"].sum())
    rate = unenrolled / enrolled if enrolled else 0.0
    return HealthResult(
        passed=rate <= MAX_UNENROLLMENT_RATE,
        description=f"{unenrolled:,} of {enrolled:,} enrolled clients unenrolled ({rate:.1%}; "
        f"alert above {MAX_UNENROLLMENT_RATE:.0%})",
        metadata={
            "enrolled": enrolled,
            "unenrolled": unenrolled,
            "unenrollment_rate": round(rate, 4),
            "threshold": MAX_UNENROLLMENT_RATE,
            "unenrollment_rate_per_branch": {
                str(r.branch): round(r.unenrolled / r.enrolled, 4) if r.enrolled else 0.0
                for r in per_branch.itertuples()
            },
        },
    )


def measure_unenrollment(
    warehouse: Warehouse, slug: str, events_table: str, first: dt.date, last: dt.date
) -> HealthResult:
    """Unenrollment of the experiment, from its app's events table (`sql.enrollments.events_table`)."""
    try:
        frame = warehouse.query(unenrollment_query(warehouse, slug, events_table, first, last), QueryLabels(experiment=slug))
    except WarehouseError as e:  # e.g. a custom enrollment query on a warehouse without events_stream
        return HealthResult(False, f"unenrollment could not be measured: {e}", {"error": str(e)[:1000]})
    return unenrollment_rate(frame)


# --- statistics completeness ----------------------------------------------------------------------


@dataclass(frozen=True)
class StatisticShape:
    """Which rows a configured statistic writes, under which stored name."""

    stored_name: str
    individual: bool = True  # one row per branch (comparison NULL)
    comparisons: bool = True  # difference and relative_uplift for every ordered pair of branches
    interval: bool = True  # lower/upper are set
    null_estimates: bool = False  # NULL point/lower/upper are a legitimate result


STATISTIC_SHAPES: dict[str, StatisticShape] = {
    "bootstrap_mean": StatisticShape("mean"),
    "always_valid_mean": StatisticShape("always_valid_mean"),
    "binomial": StatisticShape("binomial"),
    "deciles": StatisticShape("deciles"),
    "population_ratio": StatisticShape("population_ratio"),
    # mozanalysis gives NULL estimates for a metric without variation
    "linear_model_mean": StatisticShape("mean_lm", null_estimates=True),
    "per_client_dau_impact": StatisticShape("per_client_dau_impact", individual=False, null_estimates=True),
    "count": StatisticShape("count", comparisons=False, interval=False),
    "sum": StatisticShape("sum", comparisons=False, interval=False),
    "empirical_cdf": StatisticShape("empirical_cdf", comparisons=False, interval=False),
    "kernel_density_estimate": StatisticShape("kernel_density_estimate", comparisons=False, interval=False),
}
COUNTS_SHAPE = StatisticShape("count", comparisons=False, interval=False)
COMPARISONS = ("difference", "relative_uplift")
KEY_COLUMNS = ["metric", "statistic", "branch", "comparison", "comparison_to_branch", "segment", "analysis_basis"]


def shape_of(statistic: str) -> StatisticShape:
    # an unknown statistic still expects rows under its name, so its failure shows as missing rows
    return STATISTIC_SHAPES.get(statistic, StatisticShape(statistic, comparisons=False, interval=False))


@dataclass(frozen=True)
class WindowStatistics:
    period: AnalysisPeriod
    window_index: int
    table: str
    rows: pd.DataFrame | None  # None when the table was not written


def _shape_rows(metric: str, shape: StatisticShape, branches: Sequence[str], segment: str, basis: str):
    if shape.individual:
        for b in branches:
            yield (metric, shape.stored_name, b, None, None, segment, basis), shape
    if shape.comparisons:
        for ref in branches:
            for focus in branches:
                if focus != ref:
                    for comparison in COMPARISONS:
                        yield (metric, shape.stored_name, focus, comparison, ref, segment, basis), shape


def expected_statistics(config: AnalysisConfig, period_plan: PeriodPlan) -> dict[tuple, StatisticShape]:
    """Every row key (`KEY_COLUMNS`, parameter aside) a window of this period must have."""
    branches = config.experiment.branch_slugs
    segments = ["all", *(s.name for s in config.segments)]
    expected: dict[tuple, StatisticShape] = {}
    for basis in period_plan.bases():
        for segment in segments:
            expected.update(_shape_rows("identity", COUNTS_SHAPE, branches, segment, basis))
            for metric in period_plan.metrics:
                if basis not in metric.analysis_bases:
                    continue
                for spec in metric.statistics:
                    expected.update(_shape_rows(metric.name, shape_of(spec.name), branches, segment, basis))
    return expected


def _key(row: Mapping[str, Any]) -> tuple:
    return tuple(None if pd.isna(row[c]) else row[c] for c in KEY_COLUMNS)


def _null_estimates(rows: pd.DataFrame, expected: Mapping[tuple, StatisticShape]) -> list[str]:
    found = []
    for row in rows.to_dict("records"):
        shape = expected.get(_key(row))
        if shape is None or shape.null_estimates:
            continue
        columns = ("point", "lower", "upper") if shape.interval else ("point",)
        empty = [c for c in columns if pd.isna(row[c])]
        if empty:
            found.append(_describe(_key(row)) + f" NULL {'/'.join(empty)}")
    return found


def _describe(key: tuple) -> str:
    metric, statistic, branch, comparison, reference, segment, basis = key
    versus = f" {comparison} vs {reference}" if comparison else ""
    return f"{metric}/{statistic} {branch}{versus} [{segment}, {basis}]"


def expected_relations(config: AnalysisConfig, plan: AnalysisPlan) -> list[str]:
    """Every metrics and statistics table and view the plan's windows publish (a plan built with
    `rerun=True` lists every window ready by its date: what must exist once that date is analysed)."""
    slug = config.experiment.slug
    names = []
    for period_plan in plan.periods:
        if not period_plan.windows:
            continue
        period, suffix = period_plan.period.value, period_plan.period.table_suffix
        for window in period_plan.windows:
            names.append(statistics_table(slug, period, window.index))
            names += [metrics_table(slug, basis, period, window.index) for basis in period_plan.bases()]
        names.append(statistics_view(slug, suffix))
        names += [metrics_view(slug, basis, suffix) for basis in period_plan.bases()]
    return names


def statistics_completeness(
    config: AnalysisConfig,
    plan: AnalysisPlan,
    windows: Sequence[WindowStatistics],
    missing_relations: Sequence[str] = (),
    failed_metrics: frozenset[str] = frozenset(),
) -> HealthResult:
    """Every table and view that should be published exists (`missing_relations` are those that do not),
    and every configured metric × statistic × branch (and ordered branch pair) × segment × basis is
    present in each window, with no NULL estimate where the statistic has one.

    Something unpublished, or rows missing with no logged error to explain them, is a blocking failure.
    Rows of `failed_metrics` (metrics with a logged ERROR) and NULL estimates are reported only
    (`warn_only`): the other metrics' results are valid and are published, as Jetstream does."""
    plans = {p.period: p for p in plan.periods}
    missing_tables, missing, nulls = [], [], []
    expected_rows = 0
    for window in windows:
        expected = expected_statistics(config, plans[window.period])
        expected_rows += len(expected)
        if window.rows is None:
            missing_tables.append(window.table)
            continue
        present = {_key(r) for r in window.rows[KEY_COLUMNS].to_dict("records")}
        missing += [(window.table, k) for k in expected if k not in present]
        nulls += [f"{window.table}: {n}" for n in _null_estimates(window.rows, expected)]
    not_published = sorted(set(missing_relations) | set(missing_tables))
    incomplete_metrics = sorted({f"{k[0]}/{k[1]}" for _, k in missing})
    unexplained = sorted({f"{k[0]}/{k[1]}" for _, k in missing if k[0] not in failed_metrics})
    passed = not (not_published or missing or nulls)
    if passed:
        description = f"{expected_rows:,} expected rows present in {len(windows)} window(s)"
    else:
        description = "; ".join(part for part in (
            f"not published: {', '.join(not_published[:5])}" + (" ..." if len(not_published) > 5 else "")
            if not_published else "",
            f"{len(missing):,} of {expected_rows:,} expected rows missing"
            + (f" (metric/statistic: {', '.join(incomplete_metrics[:5])})" if incomplete_metrics else "")
            if missing else "",
            f"{len(nulls)} rows with NULL estimates" if nulls else "",
        ) if part)
    return HealthResult(
        passed=passed,
        description=description,
        metadata={
            "windows": [w.table for w in windows],
            "expected_rows": expected_rows,
            "missing_rows": len(missing),
            "incomplete_metrics": incomplete_metrics,
            "unexplained_missing": unexplained,
            "missing_examples": [f"{table}: {_describe(k)}" for table, k in missing[:_SHOWN]],
            "not_published": not_published,
            "null_estimate_rows": len(nulls),
            "null_estimate_examples": nulls[:_SHOWN],
        },
        warn_only=not (not_published or unexplained),
    )


def read_window_statistics(warehouse: Warehouse, config: AnalysisConfig, plan: AnalysisPlan) -> list[WindowStatistics]:
    """The statistics tables of every window the plan computes, as they stand in the warehouse."""
    slug = config.experiment.slug
    columns = ", ".join([*KEY_COLUMNS, "point", "lower", "upper"])
    windows = []
    for period_plan in plan.periods:
        for window in period_plan.windows:
            table = statistics_table(slug, period_plan.period.value, window.index)
            rows = None
            if warehouse.table_exists(warehouse.dataset, table):
                rows = warehouse.query(f"SELECT {columns} FROM {warehouse.table_ref(warehouse.dataset, table)}",
                                       QueryLabels(experiment=slug))
            windows.append(WindowStatistics(period_plan.period, window.index, table, rows))
    return windows


# --- published files and logged errors -----------------------------------------------------------


def export_contract(bucket: Bucket, keys: Sequence[str], model, known_problems: Mapping[str, str]) -> HealthResult:
    """Each object, re-read from the bucket, parses and validates against `model`; `known_problems` are
    found by the caller (an export refused for failing validation, rows missing; object key -> reason)."""
    problems = dict(known_problems)
    for key in keys:
        if key not in problems:
            problem = published_problem(bucket, key, model)
            if problem is not None:
                problems[key] = problem
    checked = sorted(set(keys) | set(known_problems))
    description = (
        f"{len(checked)} file(s) valid {model.__name__}" if not problems
        else f"{len(problems)} of {len(checked)} file(s) invalid: " + "; ".join(f"{k}: {v}" for k, v in sorted(problems.items()))[:400]
    )
    return HealthResult(
        passed=not problems,
        description=description,
        metadata={"files": checked, "schema": model.__name__, "problems": dict(sorted(problems.items()))},
    )


def missing_exported_rows(warehouse: Warehouse, bucket: Bucket, slug: str, plan: AnalysisPlan) -> dict[str, str]:
    """For each period the plan has windows in, what its published statistics file lacks: the file, a
    window, or rows of its view (object key -> problem). Unreadable files are left to `export_contract`."""
    problems = {}
    for period_plan in plan.periods:
        if not period_plan.windows:
            continue
        suffix = period_plan.period.table_suffix
        key = statistics_object(slug, suffix)
        if bucket.updated(key) is None:
            problems[key] = "not published"
            continue
        try:
            rows = bucket.read_json(key)
            indexes = {int(r["window_index"]) for r in rows}
        except (BucketError, TypeError, KeyError, ValueError):
            continue
        absent = sorted({w.index for w in period_plan.windows} - indexes)
        view = statistics_view(slug, suffix)
        in_view = None
        if warehouse.table_exists(warehouse.dataset, view):
            in_view = int(warehouse.query(f"SELECT COUNT(*) AS n FROM {warehouse.table_ref(warehouse.dataset, view)}",
                                          QueryLabels(experiment=slug))["n"].iloc[0])
        if absent:
            problems[key] = f"window(s) {', '.join(map(str, absent))} not published"
        elif in_view is not None and in_view != len(rows):
            problems[key] = f"{len(rows):,} rows published, {view} has {in_view:,}"
    return problems


def _error_rows(warehouse: Warehouse, slug: str, since: dt.datetime) -> pd.DataFrame | None:
    """The experiment's ERROR rows in `monitoring.logs` since `since` (naive UTC); None without the table."""
    if not warehouse.table_exists(warehouse.monitoring_dataset, LOGS_TABLE):
        return None
    return warehouse.query(
        f"SELECT timestamp, message, exception_type, metric, statistic, analysis_basis, segment, analysis_period "
        f"FROM {warehouse.table_ref(warehouse.monitoring_dataset, LOGS_TABLE)} "
        f"WHERE experiment = {quote_string(slug)} AND log_level = 'ERROR' "
        f"AND timestamp >= TIMESTAMP {quote_string(since.isoformat(sep=' '))} ORDER BY timestamp",
        QueryLabels(experiment=slug),
    )


def metrics_with_logged_errors(warehouse: Warehouse, slug: str, since: dt.datetime) -> frozenset[str]:
    """Metrics named by an ERROR row of the experiment since `since`: their missing rows are explained."""
    frame = _error_rows(warehouse, slug, since)
    return frozenset() if frame is None else frozenset(str(m) for m in frame["metric"].dropna())


def analysis_errors(warehouse: Warehouse, slug: str, since: dt.datetime) -> HealthResult:
    """ERROR rows of the experiment in `monitoring.logs` since `since` (naive UTC)."""
    frame = _error_rows(warehouse, slug, since)
    if frame is None:
        return HealthResult(True, "no ERROR logged", {"errors": 0})
    metrics = sorted({m for m in frame["metric"].dropna()})
    types = frame["exception_type"].fillna("(none)").value_counts()
    description = (
        "no ERROR logged" if frame.empty
        else f"{len(frame)} ERROR row(s) in monitoring.logs"
        + (f" (metrics: {', '.join(metrics)})" if metrics else "")
        + f"; first: {frame['message'].iloc[0][:200]}"
    )
    return HealthResult(
        passed=frame.empty,
        description=description,
        metadata={
            "errors": len(frame),
            "metrics": metrics,
            "exception_types": {str(k): int(v) for k, v in types.items()},
            "messages": [str(m)[:300] for m in frame["message"].head(_SHOWN)],
            "since": since.isoformat(sep=" "),
        },
    )
