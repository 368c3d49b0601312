"""Synthetic telemetry for experiment designs, and its tables in a DuckDB warehouse (contract 4)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence

import duckdb
import numpy as np
import pandas as pd

from jetstream_assets.core.platforms import DESKTOP_EVENTS_STREAM
from jetstream_assets.sample.activity import clients_daily_frame, draw_traits
from jetstream_assets.sample.designs import ExperimentDesign
from jetstream_assets.sample.events import nimbus_events_frame, with_daily_activity
from jetstream_assets.sample.population import build_population, population_size

SCHEMA = "telemetry"
# The sample's experiments are Firefox desktop ones: their Nimbus events go to desktop's own Glean table.
EVENTS_TABLE = DESKTOP_EVENTS_STREAM
CLIENTS_DAILY_TABLE = f"{SCHEMA}.clients_daily"


@dataclass(frozen=True)
class SampleTelemetry:
    """`events` has the columns of events_stream (event_extra as JSON text); `clients_daily` has
    those of clients_daily except `experiments`, given as `experiment_slug`/`experiment_branch`
    (None outside the experiment) because DuckDB builds the map far faster than pandas."""

    events: pd.DataFrame
    clients_daily: pd.DataFrame


def generate_telemetry(
    designs: Sequence[ExperimentDesign],
    *,
    data_start: dt.date,
    data_end: dt.date,
    background_clients: int,
    seed: int,
) -> SampleTelemetry:
    """Same arguments, same frames: every draw comes from generators spawned off `seed`."""
    if data_end < data_start:
        raise ValueError(f"data_end {data_end} is before data_start {data_start}")
    population_rng, traits_rng, activity_rng, events_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    traits = draw_traits(population_size(designs, background_clients), traits_rng)
    population = build_population(
        designs,
        data_start=data_start,
        data_end=data_end,
        background_clients=background_clients,
        balance_rank=traits.balance_rank,
        rng=population_rng,
    )
    return SampleTelemetry(
        events=with_daily_activity(
            nimbus_events_frame(population, data_start=data_start, data_end=data_end, rng=events_rng),
            population, data_start=data_start, data_end=data_end,
        ),
        clients_daily=clients_daily_frame(
            population,
            traits,
            data_start=data_start,
            n_days=(data_end - data_start).days + 1,
            rng=activity_rng,
        ),
    )


_EVENTS_SQL = f"""
CREATE OR REPLACE TABLE {EVENTS_TABLE} AS
SELECT
    CAST(client_id AS VARCHAR) AS client_id,
    CAST(submission_timestamp AS TIMESTAMP) AS submission_timestamp,
    CAST(sample_id AS INTEGER) AS sample_id,
    CAST(event_category AS VARCHAR) AS event_category,
    CAST(event_name AS VARCHAR) AS event_name,
    CAST(event_extra AS JSON) AS event_extra
FROM {{frame}}
"""

_CLIENTS_DAILY_SQL = f"""
CREATE OR REPLACE TABLE {CLIENTS_DAILY_TABLE} AS
SELECT
    CAST(client_id AS VARCHAR) AS client_id,
    CAST(submission_date AS DATE) AS submission_date,
    CAST(sample_id AS INTEGER) AS sample_id,
    CAST(active_hours_sum AS DOUBLE) AS active_hours_sum,
    CAST(subsession_hours_sum AS DOUBLE) AS subsession_hours_sum,
    CAST(scalar_parent_browser_engagement_total_uri_count_sum AS BIGINT)
        AS scalar_parent_browser_engagement_total_uri_count_sum,
    CAST(search_count_all AS BIGINT) AS search_count_all,
    CAST(ad_clicks_count_all AS BIGINT) AS ad_clicks_count_all,
    CASE
        WHEN experiment_slug IS NULL THEN CAST(MAP {{{{}}}} AS MAP(VARCHAR, VARCHAR))
        ELSE MAP([CAST(experiment_slug AS VARCHAR)], [CAST(experiment_branch AS VARCHAR)])
    END AS experiments
FROM {{frame}}
"""

# Registered frame names; unusual enough not to shadow a user's table while registered.
_EVENTS_FRAME = "__jetstream_sample_events"
_CLIENTS_DAILY_FRAME = "__jetstream_sample_clients_daily"


def write_telemetry(con: duckdb.DuckDBPyConnection, telemetry: SampleTelemetry) -> None:
    """Create or replace the two sample tables (`firefox_desktop.events_stream`, `telemetry.clients_daily`)
    in one transaction; nothing else is touched."""
    con.register(_EVENTS_FRAME, telemetry.events)
    con.register(_CLIENTS_DAILY_FRAME, telemetry.clients_daily)
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            for schema in {SCHEMA, EVENTS_TABLE.split(".")[0]}:
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            con.execute(_EVENTS_SQL.format(frame=_EVENTS_FRAME))
            con.execute(_CLIENTS_DAILY_SQL.format(frame=_CLIENTS_DAILY_FRAME))
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
    finally:
        con.unregister(_EVENTS_FRAME)
        con.unregister(_CLIENTS_DAILY_FRAME)
