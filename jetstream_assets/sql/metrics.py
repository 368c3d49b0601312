"""The per-client metrics query for one analysis window and basis (mozanalysis's metrics query), in BigQuery SQL.

Every enrolled client keeps a row (data sources are LEFT JOINed with their filters in the ON clause),
so an inactive client counts as zero rather than vanishing from the analysis.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from jetstream_assets.core.windows import AnalysisWindow, ExperimentDates
from jetstream_assets.metric_hub.models import DataSource, ExposureSignal, Metric
from jetstream_assets.sql.dialect import quote_identifier, quote_string

ENROLLMENT_COLUMNS = ("analysis_id", "branch", "enrollment_date", "num_enrollment_events")
WINDOW_COLUMNS = ("analysis_window_start", "analysis_window_end")


def _date(d: dt.date) -> str:
    return f"DATE {quote_string(d.isoformat())}"


def day_zero_guard(ds: DataSource, slug: str) -> str:
    """On a client's enrollment day, count only rows that already carry the experiment (mozanalysis's rule)."""
    column = f"ds.{ds.submission_date_column}"
    key = quote_string(slug)
    guards = {
        "simple": f"mozfun.map.get_key(ds.experiments, {key}) IS NOT NULL",
        "native": f"ds.experiments.{quote_identifier(slug)}.branch IS NOT NULL",
        "glean": f"mozfun.map.get_key(ds.ping_info.experiments, {key}).branch IS NOT NULL",
        "events_stream": f"JSON_VALUE(ds.experiments, {quote_string('$.' + slug + '.branch')}) IS NOT NULL",
    }
    guard = guards.get(ds.experiments_column_type)
    if guard is None:
        return ""
    return f"\n      AND ({column} != e.enrollment_date OR {guard})"


def _exposure_window_bound(value: int | str | None, dates: ExperimentDates, default: str) -> str:
    if value is None:
        value = default
    if isinstance(value, int):
        return f"DATE_ADD(e.enrollment_date, INTERVAL {int(value)} DAY)"
    return {
        "enrollment_start": _date(dates.start_date),
        "enrollment_end": _date(dates.last_enrollment_date),
        "analysis_window_start": "DATE_ADD(e.enrollment_date, INTERVAL e.analysis_window_start DAY)",
        "analysis_window_end": "DATE_ADD(e.enrollment_date, INTERVAL e.analysis_window_end DAY)",
    }[value]


def _id_column(ds: DataSource, analysis_unit: str) -> str:
    """The data source's column holding the analysis unit (mozanalysis: client or profile group id)."""
    return ds.group_id_column if analysis_unit == "profile_group_id" else ds.client_id_column


def _exposure_signal_cte(signal: ExposureSignal, dates: ExperimentDates, analysis_unit: str) -> str:
    ds = signal.data_source
    start = _exposure_window_bound(signal.window_start, dates, "enrollment_start")
    end = _exposure_window_bound(signal.window_end, dates, "analysis_window_end")
    return f"""signal_days AS (
    SELECT e.analysis_id, e.branch, ds.{ds.submission_date_column} AS signal_date
    FROM raw_enrollments e
    JOIN {ds.from_expression} ds
      ON ds.{_id_column(ds, analysis_unit)} = e.analysis_id
      AND ds.{ds.submission_date_column} BETWEEN {start} AND {end}
    GROUP BY e.analysis_id, e.branch, signal_date
    HAVING ({signal.select_expression})
),
signal_exposures AS (
    SELECT analysis_id, branch, MIN(signal_date) AS signal_exposure_date, COUNT(*) AS signal_exposure_days
    FROM signal_days
    GROUP BY analysis_id, branch
)"""


def _data_source_cte(
    index: int, ds: DataSource, metrics: list[Metric], slug: str, anchor: str, data_range: tuple[dt.date, dt.date],
    analysis_unit: str,
) -> str:
    selects = ",\n      ".join(f"({m.select_expression}) AS {quote_identifier(m.name)}" for m in metrics)
    return f"""ds_{index} AS (
    SELECT
      e.analysis_id,
      e.branch,
      {selects}
    FROM enrollments e
    LEFT JOIN {ds.from_expression} ds
      ON ds.{_id_column(ds, analysis_unit)} = e.analysis_id
      AND ds.{ds.submission_date_column} BETWEEN {_date(data_range[0])} AND {_date(data_range[1])}
      AND ds.{ds.submission_date_column} BETWEEN
        DATE_ADD(e.{anchor}, INTERVAL e.analysis_window_start DAY)
        AND DATE_ADD(e.{anchor}, INTERVAL e.analysis_window_end DAY){day_zero_guard(ds, slug)}
    GROUP BY e.analysis_id, e.branch
)"""


def build_metrics_query(
    *,
    slug: str,
    enrollments_table: str,
    metrics: list[Metric],
    window: AnalysisWindow,
    dates: ExperimentDates,
    basis: str,
    segment_columns: list[str],
    exposure_signal: ExposureSignal | None = None,
    analysis_unit: str = "client_id",
) -> str:
    """One row per enrolled (or, for the exposures basis, exposed) client with one column per computed metric:
    a derived metric (`depends_on`) adds its upstream metrics' columns instead of one of its own."""
    if basis not in ("enrollments", "exposures"):
        raise ValueError(f"unknown analysis basis {basis!r}")
    ctes = [
        f"""raw_enrollments AS (
    SELECT e.*, {window.start} AS analysis_window_start, {window.end} AS analysis_window_end
    FROM {enrollments_table} e
)"""
    ]
    anchor = "enrollment_date"
    if basis == "exposures" and exposure_signal is not None:
        ctes.append(_exposure_signal_cte(exposure_signal, dates, analysis_unit))
        ctes.append(
            """enrollments AS (
    SELECT r.* REPLACE (s.signal_exposure_date AS exposure_date, s.signal_exposure_days AS num_exposure_events)
    FROM raw_enrollments r
    JOIN signal_exposures s USING (analysis_id, branch)
)"""
        )
    elif basis == "exposures":
        anchor = "exposure_date"
        ctes.append(
            "enrollments AS (\n    SELECT * FROM raw_enrollments WHERE num_exposure_events > 0\n)"
        )
    else:
        ctes.append("enrollments AS (\n    SELECT * FROM raw_enrollments\n)")

    by_source: dict[DataSource, list[Metric]] = defaultdict(list)
    for m in dict.fromkeys(c for metric in metrics for c in metric.computed_metrics()):
        assert m.data_source is not None  # computed metrics have SQL
        by_source[m.data_source].append(m)
    data_range = dates.data_range(window)
    joins, columns = [], []
    for i, (ds, ds_metrics) in enumerate(by_source.items()):
        ctes.append(_data_source_cte(i, ds, ds_metrics, slug, anchor, data_range, analysis_unit))
        joins.append(f"LEFT JOIN ds_{i} USING (analysis_id, branch)")
        columns.extend(f"ds_{i}.{quote_identifier(m.name)}" for m in ds_metrics)
    base_columns = [f"enrollments.{c}" for c in ENROLLMENT_COLUMNS]
    base_columns += [f"enrollments.{quote_identifier(c)}" for c in segment_columns]
    base_columns += ["enrollments.exposure_date", "enrollments.num_exposure_events"]
    base_columns += [f"enrollments.{c}" for c in WINDOW_COLUMNS]
    select = ",\n  ".join(base_columns + columns)
    with_clause = ",\n".join(ctes)
    join_clause = "\n".join(joins)
    return f"WITH {with_clause}\nSELECT\n  {select}\nFROM enrollments\n{join_clause}"
