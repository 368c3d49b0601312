"""Daily browser activity (clients_daily rows) from per-client latent traits, with planted effects.

Effects multiply a column's expected value on the days a client is in its experiment, and never
change whether a client is active that day, so the population mean of per-client sums over any
window after enrollment moves by exactly the planted multiplier.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jetstream_assets.sample.population import Population

NEVER_ACTIVE_SHARE = 0.10
ACTIVITY_BETA = (1.3, 1.2)  # per-client probability of an active day: from rare to daily users
INTENSITY_SIGMA = 0.8  # lognormal spread of how heavily a client browses (mean 1)
DAY_SIGMA = 0.6  # lognormal day-to-day variation around a client's intensity (mean 1)
ACTIVE_HOURS_PER_DAY = 1.5
MAX_BASE_ACTIVE_HOURS = 16.0  # cap before effects, so a multiplier stays exact
IDLE_SHAPE, IDLE_SCALE = 2.0, 0.35  # subsession = active * (1 + idle share)
URIS_PER_ACTIVE_HOUR = 12.0
URI_DISPERSION = 2.0  # negative binomial shape: variance = mean + mean^2 / shape
SEARCHER_SHARE = 0.75
SEARCHES_PER_DAY_SHAPE, SEARCHES_PER_DAY_SCALE = 3.0, 0.7
SEARCH_DISPERSION = 1.5
AD_CLICKER_SHARE = 0.20  # of searchers
AD_CLICKS_PER_SEARCH = 0.08


@dataclass(frozen=True)
class ClientTraits:
    activity_probability: np.ndarray  # 0 for never-active clients
    intensity: np.ndarray
    searches_per_day: np.ndarray  # 0 for clients who never search
    ad_clicks_per_day: np.ndarray  # 0 for clients who never click ads

    @property
    def balance_rank(self) -> np.ndarray:
        """Rank of each client when grouped by searching and ad clicking, then by expected
        active hours per calendar day: neighbours in this order are alike on every column."""
        order = np.lexsort(
            (
                self.activity_probability * self.intensity,
                self.ad_clicks_per_day > 0,
                self.searches_per_day > 0,
            )
        )
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return rank


def draw_traits(n: int, rng: np.random.Generator) -> ClientTraits:
    active = rng.random(n) >= NEVER_ACTIVE_SHARE
    intensity = _unit_mean_lognormal(rng, INTENSITY_SIGMA, n)
    searcher = rng.random(n) < SEARCHER_SHARE
    searches = (
        searcher
        * rng.gamma(SEARCHES_PER_DAY_SHAPE, SEARCHES_PER_DAY_SCALE, n)
        * intensity  # heavy browsers search more
    )
    clicker = rng.random(n) < AD_CLICKER_SHARE
    return ClientTraits(
        activity_probability=active * rng.beta(*ACTIVITY_BETA, n),
        intensity=intensity,
        searches_per_day=searches,
        ad_clicks_per_day=clicker * searches * AD_CLICKS_PER_SEARCH,
    )


def clients_daily_frame(
    population: Population,
    traits: ClientTraits,
    *,
    data_start: dt.date,
    n_days: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """One row per active client-day.

    `experiment_slug`/`experiment_branch` (None outside the experiment) become the experiments map.
    """
    active = rng.random((population.size, n_days)) < traits.activity_probability[:, None]
    client, day = np.nonzero(active)
    n = len(client)
    enrollment_day = population.enrollment_day[client]
    in_experiment = population.enrolled[client] & (day >= enrollment_day)

    def multiplier(column: str) -> np.ndarray:
        return np.where(in_experiment, population.multipliers[column][client], 1.0)

    day_level = _unit_mean_lognormal(rng, DAY_SIGMA, n)
    base_hours = np.minimum(
        ACTIVE_HOURS_PER_DAY * traits.intensity[client] * day_level, MAX_BASE_ACTIVE_HOURS
    )
    active_hours = base_hours * multiplier("active_hours_sum")
    subsession_hours = active_hours * (1.0 + rng.gamma(IDLE_SHAPE, IDLE_SCALE, n))
    uri_mean = (
        URIS_PER_ACTIVE_HOUR
        * base_hours
        * multiplier("scalar_parent_browser_engagement_total_uri_count_sum")
    )
    search_mean = (
        traits.searches_per_day[client] * day_level * multiplier("search_count_all")
    )
    ad_mean = traits.ad_clicks_per_day[client] * day_level * multiplier("ad_clicks_count_all")
    return pd.DataFrame(
        {
            "client_id": population.client_id[client],
            "submission_date": np.datetime64(data_start, "D") + day.astype("timedelta64[D]"),
            "sample_id": population.sample_id[client],
            "active_hours_sum": active_hours,
            "subsession_hours_sum": subsession_hours,
            "scalar_parent_browser_engagement_total_uri_count_sum": _negative_binomial(
                rng, uri_mean, URI_DISPERSION
            ),
            "search_count_all": _negative_binomial(rng, search_mean, SEARCH_DISPERSION),
            "ad_clicks_count_all": rng.poisson(ad_mean),
            "experiment_slug": np.where(in_experiment, population.experiment[client], None),
            "experiment_branch": np.where(in_experiment, population.branch[client], None),
        }
    )


def _unit_mean_lognormal(rng: np.random.Generator, sigma: float, size: int) -> np.ndarray:
    return rng.lognormal(-0.5 * sigma**2, sigma, size)


def _negative_binomial(rng: np.random.Generator, mean: np.ndarray, shape: float) -> np.ndarray:
    """Gamma-Poisson counts with the given mean: scaling the mean scales the expectation exactly."""
    return rng.poisson(mean * rng.gamma(shape, 1.0 / shape, len(mean)))
