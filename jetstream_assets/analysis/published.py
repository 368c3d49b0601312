"""What of an experiment's analysis is published: which windows' tables exist in the warehouse."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Callable

from jetstream_assets.analysis.logs import context
from jetstream_assets.analysis.plan import AnalysisPlan
from jetstream_assets.core.naming import metrics_table, statistics_table
from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.core.windows import ready_windows
from jetstream_assets.engines.warehouse import Warehouse
from jetstream_assets.metric_hub.models import AnalysisConfig


def published_windows(warehouse: Warehouse, config: AnalysisConfig) -> Callable[[AnalysisPeriod, int], bool]:
    """`published(period, index)`: the window's statistics table and its metrics table of every basis
    the period's metrics use all exist (one listing of the results dataset)."""
    slug = config.experiment.slug
    tables = set(warehouse.list_tables(warehouse.dataset))

    def published(period: AnalysisPeriod, index: int) -> bool:
        bases = {b for m in config.metrics.get(period, ()) for b in m.analysis_bases}
        needed = [statistics_table(slug, period.value, index)]
        needed += [metrics_table(slug, basis, period.value, index) for basis in bases]
        return all(name in tables for name in needed)

    return published


def log_healed_windows(log: logging.Logger, slug: str, plan: AnalysisPlan, date: dt.date) -> None:
    """A WARNING row per window a daily run computes because it should have been published earlier."""
    if plan.rerun:
        return
    for period_plan in plan.periods:
        due = {w.index for w in ready_windows(plan.dates, period_plan.period, date)}
        for window in period_plan.windows:
            if window.index not in due:
                log.warning(
                    "%s: %s window %d should have been published by %s and was not (a run stopped before it "
                    "published, or its data came late); computing it now",
                    slug, period_plan.period.value, window.index, plan.date,
                    extra=context(experiment=slug, analysis_period=period_plan.period.value),
                )
