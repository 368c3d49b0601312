"""How stale an asset may get before the UI flags it (evaluated by the instance's freshness daemon).

- The Experimenter snapshot is refreshed every 10 minutes: it warns after 20 minutes (two missed loads)
  and fails after 30 (analyses would run on outdated dates and branches).
- Statistics are computed daily at 04:00 UTC: they warn after 26 hours (the daily run is late) and fail
  after 36 (a whole day of results is missing). For the partitioned asset, the newest materialization of
  any experiment counts, so this flags the daily analysis as a whole going stale.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

EXPERIMENTER_SNAPSHOT_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=dt.timedelta(minutes=30), warn_window=dt.timedelta(minutes=20)
)
DAILY_STATISTICS_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=dt.timedelta(hours=36), warn_window=dt.timedelta(hours=26)
)
