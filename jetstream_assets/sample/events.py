"""Nimbus events (events_stream rows): enrollment, exposure and unenrollment of enrolled clients."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd

from jetstream_assets.sample.population import Population

NIMBUS_CATEGORY = "nimbus_events"
SECONDS_PER_DAY = 86_400
DUPLICATE_ENROLLMENT_SHARE = 0.03  # clients whose enrollment is reported twice
DUPLICATE_DELAY_MAX_DAYS = 2.0
EXPOSURE_DELAY_MEAN_DAYS = 1.0
EXTRA_EXPOSURES_MEAN = 1.0  # exposed clients see the feature 1 + Poisson(this) times
UNENROLL_DELAY_MEAN_DAYS = 10.0


def nimbus_events_frame(
    population: Population, *, data_start: dt.date, data_end: dt.date, rng: np.random.Generator
) -> pd.DataFrame:
    """Events up to the end of `data_end`, ordered by timestamp then client id."""
    client = np.flatnonzero(population.enrolled)
    enrolled_at = population.enrollment_day[client] * SECONDS_PER_DAY + rng.uniform(
        0, SECONDS_PER_DAY, len(client)
    )

    duplicate = rng.random(len(client)) < DUPLICATE_ENROLLMENT_SHARE
    duplicate_at = enrolled_at[duplicate] + rng.uniform(
        0, DUPLICATE_DELAY_MAX_DAYS * SECONDS_PER_DAY, duplicate.sum()
    )

    exposed = np.flatnonzero(rng.random(len(client)) < population.exposure_rate[client])
    exposures_each = 1 + rng.poisson(EXTRA_EXPOSURES_MEAN, len(exposed))
    exposure_owner = np.repeat(exposed, exposures_each)
    exposure_at = enrolled_at[exposure_owner] + rng.exponential(
        EXPOSURE_DELAY_MEAN_DAYS * SECONDS_PER_DAY, len(exposure_owner)
    )

    unenrolled = rng.random(len(client)) < population.unenroll_rate[client]
    unenroll_at = enrolled_at[unenrolled] + rng.exponential(
        UNENROLL_DELAY_MEAN_DAYS * SECONDS_PER_DAY, unenrolled.sum()
    )

    owner = np.concatenate(
        [client, client[duplicate], client[exposure_owner], client[unenrolled]]
    )
    seconds = np.concatenate([enrolled_at, duplicate_at, exposure_at, unenroll_at])
    name = np.concatenate(
        [
            np.full(len(client) + duplicate.sum(), "enrollment", dtype=object),
            np.full(len(exposure_owner), "exposure", dtype=object),
            np.full(unenrolled.sum(), "unenrollment", dtype=object),
        ]
    )
    horizon = ((data_end - data_start).days + 1) * SECONDS_PER_DAY
    keep = seconds < horizon
    owner, seconds, name = owner[keep], seconds[keep], name[keep]

    frame = pd.DataFrame(
        {
            "client_id": population.client_id[owner],
            "submission_timestamp": np.datetime64(data_start, "us")
            + (seconds * 1e6).astype("timedelta64[us]"),
            "sample_id": population.sample_id[owner],
            "event_category": NIMBUS_CATEGORY,
            "event_name": name,
            "event_extra": _event_extras(population.experiment[owner], population.branch[owner]),
        }
    )
    return frame.sort_values(
        ["submission_timestamp", "client_id", "event_name"], kind="stable", ignore_index=True
    )


def with_daily_activity(
    events: pd.DataFrame, population: Population, *, data_start: dt.date, data_end: dt.date
) -> pd.DataFrame:
    """`events` plus one non-Nimbus Glean event per day (from a client outside every experiment): the real
    events_stream holds every client's events, so it has every day, and the analysis takes the latest day
    present as the last day of complete data. Nimbus events alone thin out after enrollment ends."""
    outside = np.flatnonzero(~population.enrolled)
    client = outside[0] if len(outside) else 0
    days = pd.date_range(data_start, data_end, freq="D")
    activity = pd.DataFrame(
        {
            "client_id": population.client_id[client],
            "submission_timestamp": (days + pd.Timedelta(hours=12)).values.astype("datetime64[us]"),
            "sample_id": population.sample_id[client],
            "event_category": "glean",
            "event_name": "restarted",
            "event_extra": "{}",
        }
    )
    return pd.concat([events, activity], ignore_index=True).sort_values(
        ["submission_timestamp", "client_id", "event_name"], kind="stable", ignore_index=True
    )


def _event_extras(experiment: np.ndarray, branch: np.ndarray) -> np.ndarray:
    """JSON per (experiment, branch) pair, serialised once per pair rather than once per event."""
    experiment_code, experiments = pd.factorize(experiment)
    branch_code, branches = pd.factorize(branch)
    texts = np.array(
        [json.dumps({"experiment": e, "branch": b}) for e in experiments for b in branches],
        dtype=object,
    )
    return texts[experiment_code * len(branches) + branch_code]
