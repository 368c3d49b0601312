"""Per-client metrics tables `<slug>_<basis>_<period>_<n>` and their views, for the planned windows.

One query per (window, basis) computes every metric. If it fails, each metric's query is dry-run to
find the culprits; those are logged with their names and the rest is computed, so one bad metric
never costs the others. The step's tables and views are published together when it ends (see
`Warehouse.publication`): a crash leaves the previously published ones as they were.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from jetstream_assets.analysis.logs import context
from jetstream_assets.analysis.plan import AnalysisPlan
from jetstream_assets.core.naming import (
    enrollments_table,
    is_period_result,
    metrics_table,
    metrics_table_prefix,
    metrics_view,
    table_slug,
)
from jetstream_assets.core.windows import AnalysisWindow
from jetstream_assets.engines.publication import Publication
from jetstream_assets.engines.warehouse import QueryLabels, Warehouse, WarehouseError
from jetstream_assets.metric_hub.models import AnalysisConfig, Metric
from jetstream_assets.sql.metrics import build_metrics_query


@dataclass
class MetricsTable:
    period: str
    window_index: int
    basis: str
    table: str
    rows: int
    window_days: int
    metrics: list[str]
    failed_metrics: list[str] = field(default_factory=list)


def _query_for(config: AnalysisConfig, plan: AnalysisPlan, warehouse: Warehouse, metrics: list[Metric],
               window: AnalysisWindow, basis: str) -> str:
    slug = config.experiment.slug
    return build_metrics_query(
        slug=slug,
        enrollments_table=warehouse.table_ref(warehouse.dataset, enrollments_table(slug)),
        metrics=metrics,
        window=window,
        dates=plan.dates,
        basis=basis,
        segment_columns=[s.name for s in config.segments],
        exposure_signal=config.exposure_signal,
        analysis_unit=config.analysis_unit,
    )


def _isolate_failures(
    pub: Publication, config: AnalysisConfig, plan: AnalysisPlan, window: AnalysisWindow, basis: str,
    metrics: list[Metric], table: str, log: logging.Logger,
) -> tuple[list[Metric], list[str]]:
    """After the combined query failed: which metrics fail on their own. Dry runs find SQL errors
    cheaply; errors only running shows (BigQuery's "Resources exceeded", a bad cast) need each metric
    run alone into a scratch table."""
    slug = config.experiment.slug
    warehouse = pub.warehouse
    labels = QueryLabels(experiment=slug, destination=f"{warehouse.dataset}.{table}")

    def failing(metric: Metric, probe: bool) -> WarehouseError | None:
        sql = _query_for(config, plan, warehouse, [metric], window, basis)
        try:
            if probe:
                pub.create_table_as(f"{table}__probe", sql, description=slug, labels=labels)
            else:
                warehouse.dry_run(sql, labels)
        except WarehouseError as e:
            return e
        return None

    problems = {m.name: e for m in metrics if (e := failing(m, probe=False)) is not None}
    if not problems:
        problems = {m.name: e for m in metrics if (e := failing(m, probe=True)) is not None}
        pub.discard(f"{table}__probe")
    for metric in metrics:
        if metric.name in problems:
            log.error(
                "%s: metric %s (data source %s) failed for %s window %d, basis %s: %s",
                slug, metric.name, metric.source_name, window.period.value, window.index, basis,
                problems[metric.name], exc_info=problems[metric.name],
                extra=context(experiment=slug, metric=metric.name, analysis_basis=basis,
                              analysis_period=window.period.value),
            )
    return [m for m in metrics if m.name not in problems], sorted(problems)


def _compute_window(
    pub: Publication, config: AnalysisConfig, plan: AnalysisPlan, window: AnalysisWindow, basis: str,
    metrics: list[Metric], log: logging.Logger,
) -> MetricsTable:
    slug = config.experiment.slug
    warehouse = pub.warehouse
    table = metrics_table(slug, basis, window.period.value, window.index)
    labels = QueryLabels(experiment=slug, destination=f"{warehouse.dataset}.{table}")
    good, failed = metrics, []
    try:
        rows = pub.create_table_as(
            table, _query_for(config, plan, warehouse, metrics, window, basis), description=slug, labels=labels,
        )
    except WarehouseError as combined_error:
        good, failed = _isolate_failures(pub, config, plan, window, basis, metrics, table, log)
        if not failed:
            raise combined_error
        rows = pub.create_table_as(
            table, _query_for(config, plan, warehouse, good, window, basis), description=slug, labels=labels,
        )
    return MetricsTable(
        window.period.value, window.index, basis, table, rows, window.days, [m.name for m in good], failed
    )


def metrics_results(warehouse: Warehouse, slug: str) -> list[str]:
    """The experiment's published metrics tables and views (what a rerun replaces; its statistics are
    the statistics step's to replace, so they stay published until that step succeeds)."""
    statistics = f"statistics_{table_slug(slug)}_"
    return [t for t in warehouse.list_tables(warehouse.dataset)
            if is_period_result(slug, t) and not t.startswith(statistics)]


def compute_metrics(
    warehouse: Warehouse, config: AnalysisConfig, plan: AnalysisPlan, log: logging.Logger
) -> list[MetricsTable]:
    slug = config.experiment.slug
    results: list[MetricsTable] = []
    with warehouse.publication(warehouse.dataset, slug) as pub:
        if plan.rerun:
            # a rerun starts clean, as Jetstream's does: windows or bases no longer configured must not linger
            pub.drop(metrics_results(warehouse, slug))
        for period_plan in plan.periods:
            if not period_plan.windows:
                continue
            for basis in period_plan.bases():
                metrics = [m for m in period_plan.metrics if basis in m.analysis_bases]
                for window in period_plan.windows:
                    try:
                        results.append(_compute_window(pub, config, plan, window, basis, metrics, log))
                    except WarehouseError as e:
                        log.error(
                            "%s: metrics for %s window %d, basis %s failed: %s",
                            slug, window.period.value, window.index, basis, e, exc_info=e,
                            extra=context(experiment=slug, analysis_basis=basis, analysis_period=window.period.value),
                        )
                pub.create_window_view(
                    metrics_view(slug, basis, period_plan.period.table_suffix),
                    metrics_table_prefix(slug, basis, period_plan.period.value),
                )
        if not results:
            pub.cancel()  # every window failed: what is published stays as it was
    return results


def existing_metrics_tables(warehouse: Warehouse, config: AnalysisConfig, plan: AnalysisPlan) -> list[MetricsTable]:
    """The planned metrics tables as they stand in the warehouse (what the metrics step produced)."""
    slug = config.experiment.slug
    found = []
    for period_plan in plan.periods:
        for basis in period_plan.bases():
            wanted = [m for m in period_plan.metrics if basis in m.analysis_bases]
            for window in period_plan.windows:
                table = metrics_table(slug, basis, window.period.value, window.index)
                columns = set(warehouse.table_schema(warehouse.dataset, table))
                if not columns:
                    continue
                present = [m.name for m in wanted if set(m.columns) <= columns]
                failed = [m.name for m in wanted if not set(m.columns) <= columns]
                found.append(
                    MetricsTable(window.period.value, window.index, basis, table, -1, window.days, present, failed)
                )
    return found
