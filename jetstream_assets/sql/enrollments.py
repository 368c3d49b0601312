"""The enrollments query (mozanalysis's `glean-event` enrollments on the app's events_stream), in BigQuery SQL.

Enrollment and exposure events are read from `<app dataset>.events_stream` of the experiment's app and
channel (`core.platforms`), e.g. `org_mozilla_firefox_beta.events_stream` for a Fenix beta experiment.

Output: one row per (client, branch): analysis_id, branch, enrollment_date, num_enrollment_events,
one BOOL column per segment, exposure_date, num_exposure_events.
"""

from __future__ import annotations

import datetime as dt

from jetstream_assets.core.platforms import DESKTOP_EVENTS_STREAM, shared_table
from jetstream_assets.metric_hub.models import AnalysisConfig, Segment
from jetstream_assets.sql.dialect import quote_identifier, quote_string

EVENTS_STREAM = DESKTOP_EVENTS_STREAM  # Firefox desktop's table, for queries not tied to one experiment


def _date(d: dt.date) -> str:
    return f"DATE {quote_string(d.isoformat())}"


def _unit_id(analysis_unit: str) -> str:
    # the analysis unit's id (mozanalysis: client_id or profile_group_id), named as the queries below join on it
    return "client_id" if analysis_unit == "client_id" else f"{analysis_unit} AS client_id"


def _nimbus_events(
    events_table: str, slug: str, event_names: tuple[str, ...], first: dt.date, last: dt.date,
    analysis_unit: str = "client_id",
) -> str:
    names = ", ".join(quote_string(n) for n in event_names)
    return f"""
    SELECT
      {_unit_id(analysis_unit)},
      sample_id,
      submission_timestamp,
      JSON_VALUE(event_extra, '$.branch') AS branch
    FROM {events_table}
    WHERE event_category = 'nimbus_events'
      AND event_name IN ({names})
      AND JSON_VALUE(event_extra, '$.experiment') = {quote_string(slug)}
      AND DATE(submission_timestamp) BETWEEN {_date(first)} AND {_date(last)}"""


def _segment_query(segment: Segment, analysis_unit: str) -> str:
    ds = segment.data_source
    id_column = ds.group_id_column if analysis_unit == "profile_group_id" else ds.client_id_column
    return f"""
    SELECT
      e.analysis_id,
      e.branch,
      COALESCE(({segment.select_expression}), FALSE) AS {quote_identifier(segment.name)}
    FROM raw_enrollments e
    LEFT JOIN {ds.from_expression} ds
      ON ds.{id_column} = e.analysis_id
      AND ds.{ds.submission_date_column} BETWEEN
        DATE_ADD(e.enrollment_date, INTERVAL {int(ds.window_start)} DAY)
        AND DATE_ADD(e.enrollment_date, INTERVAL {int(ds.window_end)} DAY)
    GROUP BY e.analysis_id, e.branch"""


def build_enrollments_query(
    config: AnalysisConfig, *, first_enrollment_date: dt.date, last_enrollment_date: dt.date,
    events_table: str | None = None,
) -> str:
    """Enrollments over [first, last] enrollment dates; exposures (default Nimbus events) up to `last`.

    Events come from `events_table`, by default the experiment's own
    `moz-fx-data-shared-prod.<app dataset>.events_stream`.

    Jetstream creates this table once, on the first day the `day` period is ready, so exposures are
    counted through the last enrollment date; a rerun builds the identical table.
    """
    slug = config.experiment.slug
    events_table = events_table or shared_table(config.experiment.events_stream)
    sample_filter = (
        f"\n      AND sample_id < {int(config.sample_size)}" if config.sample_size is not None else ""
    )
    if config.enrollment_query:
        raw_enrollments = f"SELECT * FROM ({config.enrollment_query})"
    else:
        raw_enrollments = f"""
    SELECT
      client_id AS analysis_id,
      branch,
      DATE(MIN(submission_timestamp)) AS enrollment_date,
      COUNT(*) AS num_enrollment_events
    FROM ({_nimbus_events(events_table, slug, ("enrollment",), first_enrollment_date, last_enrollment_date, config.analysis_unit)})
    WHERE branch IS NOT NULL{sample_filter}
    GROUP BY analysis_id, branch"""

    ctes = [f"raw_enrollments AS ({raw_enrollments}\n)"]
    segment_columns = []
    for i, segment in enumerate(config.segments):
        ctes.append(f"segment_{i} AS ({_segment_query(segment, config.analysis_unit)}\n)")
        segment_columns.append(f"segment_{i}.{quote_identifier(segment.name)}")
    exposure_events = _nimbus_events(
        events_table, slug, ("exposure", "expose"), first_enrollment_date, last_enrollment_date, config.analysis_unit
    )
    ctes.append(
        f"""exposures AS (
    SELECT
      e.analysis_id,
      e.branch,
      MIN(DATE(x.submission_timestamp)) AS exposure_date,
      COUNT(x.submission_timestamp) AS num_exposure_events
    FROM raw_enrollments e
    LEFT JOIN ({exposure_events}) x
      ON x.client_id = e.analysis_id
      AND x.branch = e.branch
      AND DATE(x.submission_timestamp) >= e.enrollment_date
    GROUP BY e.analysis_id, e.branch
)"""
    )
    segment_joins = "".join(
        f"\nLEFT JOIN segment_{i} USING (analysis_id, branch)" for i in range(len(config.segments))
    )
    segment_select = "".join(f",\n  COALESCE({c}, FALSE) AS {c.split('.', 1)[1]}" for c in segment_columns)
    with_clause = ",\n".join(ctes)
    return f"""WITH {with_clause}
SELECT
  raw_enrollments.analysis_id,
  raw_enrollments.branch,
  raw_enrollments.enrollment_date,
  raw_enrollments.num_enrollment_events{segment_select},
  exposures.exposure_date,
  exposures.num_exposure_events
FROM raw_enrollments
LEFT JOIN exposures USING (analysis_id, branch){segment_joins}"""


def events_table(config: AnalysisConfig) -> str:
    """The events table the experiment's enrollments and exposures are read from (its app's own)."""
    return shared_table(config.experiment.events_stream)
