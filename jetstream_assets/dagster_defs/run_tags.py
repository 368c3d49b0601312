"""How a run says which analysis date it is for, and whether it is a daily run or a rerun.

The date travels as a run tag (visible and filterable in the UI). A run without it, such as a
partition backfill launched from the UI, is a rerun up to the last day of complete data: every window
the data covers is recomputed (`analysis.data_bounds`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Mapping

ANALYSIS_DATE_TAG = "jetstream/analysis_date"
RERUN_TAG = "jetstream/rerun"


@dataclass(frozen=True)
class RunSettings:
    date: dt.date
    rerun: bool
    dated: bool = True  # False: no date tag; `date` is yesterday and the data bounds the analysis


def yesterday() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)


def run_settings(tags: Mapping[str, str]) -> RunSettings:
    raw = tags.get(ANALYSIS_DATE_TAG)
    if not raw:
        return RunSettings(date=yesterday(), rerun=True, dated=False)
    try:
        date = dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"run tag {ANALYSIS_DATE_TAG}={raw!r} is not a YYYY-MM-DD date") from None
    return RunSettings(date=date, rerun=tags.get(RERUN_TAG, "false").lower() == "true")


def daily_tags(date: dt.date) -> dict[str, str]:
    return {ANALYSIS_DATE_TAG: date.isoformat(), RERUN_TAG: "false"}


def rerun_tags(date: dt.date) -> dict[str, str]:
    return {ANALYSIS_DATE_TAG: date.isoformat(), RERUN_TAG: "true"}
