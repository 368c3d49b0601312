"""Statistics tables `statistics_<slug>_<period>_<n>` and their views, from the metrics tables.

Each metrics table is read from the warehouse once per window and basis; every segment, metric and
statistic is computed from that one frame (Jetstream issues one query per statistic). The step's
tables and views are published together when it ends (see `Warehouse.publication`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from jetstream_assets.analysis.logs import context
from jetstream_assets.analysis.metrics import MetricsTable
from jetstream_assets.analysis.plan import AnalysisPlan
from jetstream_assets.core.naming import (
    is_period_result,
    metrics_table,
    statistics_table,
    statistics_table_prefix,
    statistics_view,
    table_slug,
)
from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.core.schema import STATISTICS_SCHEMA, column_names
from jetstream_assets.engines.warehouse import QueryLabels, Warehouse
from jetstream_assets.metric_hub.models import AnalysisConfig
from jetstream_assets.sql.dialect import quote_identifier
from jetstream_assets import statistics
from jetstream_assets.statistics.multiple_testing import BONFERRONI, bonferroni_rows

STATISTICS_COLUMNS = column_names(STATISTICS_SCHEMA)


@dataclass
class StatisticsTable:
    period: str
    window_index: int
    table: str
    rows: int
    clients_per_branch: dict[str, dict[str, int]]  # basis -> branch -> clients (segment `all`)
    failures: list[str] = field(default_factory=list)
    sql_seconds: float = 0.0  # reading the metrics tables and writing this one
    statistics_seconds: float = 0.0  # computing the statistics


def count_rows(frame: pd.DataFrame, branches: tuple[str, ...], segment: str, basis: str) -> list[dict]:
    """Jetstream's `identity`/`count` rows: clients per branch, 0 for a branch nobody enrolled in."""
    counts = frame["branch"].value_counts()
    return [
        {"metric": "identity", "statistic": "count", "branch": b, "point": float(counts.get(b, 0)),
         "segment": segment, "analysis_basis": basis}
        for b in branches
    ]


def _read_metrics(warehouse: Warehouse, table: str, columns: list[str], slug: str) -> pd.DataFrame:
    select = ", ".join(quote_identifier(c) for c in columns)
    # a fixed row order: sums in another order round differently, and reruns must give identical numbers
    return warehouse.query(
        f"SELECT {select} FROM {warehouse.table_ref(warehouse.dataset, table)} ORDER BY analysis_id, branch",
        QueryLabels(experiment=slug),
    )


def _covariates(config: AnalysisConfig, period: AnalysisPeriod, metrics: list[str]) -> dict[str, set[str]]:
    """Pre-enrollment period -> metrics whose values become `<metric>_pre` covariate columns."""
    if period.is_preenrollment:
        return {}
    metrics_by_name = config.all_metrics()
    wanted: dict[str, set[str]] = {}
    for name in metrics:
        for spec in metrics_by_name[name].statistics:
            adjustment = spec.params.get("covariate_adjustment")
            if isinstance(adjustment, dict) and adjustment.get("period"):
                wanted.setdefault(adjustment["period"], set()).add(adjustment.get("metric", name))
    return wanted


def _with_covariates(
    warehouse: Warehouse, config: AnalysisConfig, table: MetricsTable, frame: pd.DataFrame,
    wanted: dict[str, set[str]], log: logging.Logger,
) -> pd.DataFrame:
    """LEFT JOIN the pre-enrollment window's metric values (Jetstream joins USING analysis_id, branch).
    A missing pre-enrollment table leaves the statistic unadjusted, as Jetstream falls back."""
    slug = config.experiment.slug
    for covariate_period, names in wanted.items():
        pre_table = metrics_table(slug, table.basis, AnalysisPeriod.from_config_key(covariate_period).value, 1)
        columns = set(warehouse.table_schema(warehouse.dataset, pre_table))
        available = [n for n in sorted(names) if n in columns]
        if not available:
            log.warning(
                "%s: covariate table %s (or its columns %s) missing; %s statistics are not adjusted",
                slug, pre_table, ", ".join(sorted(names)), table.table,
                extra=context(experiment=slug, analysis_basis=table.basis, analysis_period=table.period),
            )
            continue
        pre = _read_metrics(warehouse, pre_table, ["analysis_id", "branch", *available], slug)
        pre = pre.rename(columns={n: f"{n}_pre" for n in available})
        frame = frame.merge(pre, on=["analysis_id", "branch"], how="left")
    return frame


def _report_not_a_number(
    warehouse: Warehouse, table: MetricsTable, frame: pd.DataFrame, slug: str, period: AnalysisPeriod,
    log: logging.Logger,
) -> None:
    """NaN and NULL look alike once in pandas, so count NaN in the warehouse: NaN values are left out like
    NULLs (Jetstream's `IS NOT NULL` would keep them and fail), and the user is told which metric has them."""
    floats = [c for c in table.metrics if c in frame and pd.api.types.is_float_dtype(frame[c])]  # derived: none
    if not floats:
        return
    counts = warehouse.query(
        "SELECT " + ", ".join(f"COUNTIF(IS_NAN({quote_identifier(c)})) AS {quote_identifier(c)}" for c in floats)
        + f" FROM {warehouse.table_ref(warehouse.dataset, table.table)}",
        QueryLabels(experiment=slug),
    ).iloc[0]
    for metric_name in floats:
        if counts[metric_name]:
            log.warning(
                "%s: metric %s has %d NaN value(s) in %s; they are left out like NULLs",
                slug, metric_name, int(counts[metric_name]), table.table,
                extra=context(experiment=slug, metric=metric_name, analysis_basis=table.basis,
                              analysis_period=period.value),
            )


def _window_rows(
    warehouse: Warehouse, config: AnalysisConfig, period: AnalysisPeriod, tables: list[MetricsTable],
    log: logging.Logger, failures: list[str], clients: dict[str, dict[str, int]], timings: dict[str, float],
) -> pd.DataFrame:
    slug = config.experiment.slug
    branches = config.experiment.branch_slugs
    segments = [s.name for s in config.segments]
    metrics_by_name = config.all_metrics()
    records: list[dict] = []
    for table in tables:
        basis = table.basis
        present = table.metrics
        started = time.perf_counter()
        columns = dict.fromkeys(c for name in present for c in metrics_by_name[name].columns)  # derived: upstream
        frame = _read_metrics(warehouse, table.table, ["analysis_id", "branch", *segments, *columns], slug)
        frame = frame[frame["branch"].isin(branches)]  # unknown branches were reported with the enrollments
        frame = _with_covariates(warehouse, config, table, frame, _covariates(config, period, present), log)
        _report_not_a_number(warehouse, table, frame, slug, period, log)
        timings["sql"] += time.perf_counter() - started
        clients[basis] = {b: int((frame["branch"] == b).sum()) for b in branches}
        for segment in ["all", *segments]:
            subset = frame if segment == "all" else frame[frame[segment].fillna(False).astype(bool)]
            records.extend(count_rows(subset, branches, segment, basis))
            for metric_name in present:
                metric = metrics_by_name[metric_name]
                for spec in metric.statistics:
                    where = dict(
                        experiment=slug, metric=metric_name, statistic=spec.name, analysis_basis=basis,
                        segment=segment, analysis_period=period.value,
                    )
                    try:
                        rows = statistics.compute(
                            # the whole frame: compute() drops NULLs in the columns it reads (Jetstream's
                            # `<metric> IS NOT NULL`) and ratio statistics read other metrics' columns
                            spec.name, subset, metric_name, segment=segment, analysis_basis=basis,
                            seed=statistics.stable_seed(slug, metric_name, spec.name, period.value, table.window_index),
                            window_days=table.window_days,
                            **_period_param(spec.name, period),
                            **spec.params,
                        )
                    except Exception as e:  # one statistic's failure never costs the others
                        failures.append(f"{metric_name}/{spec.name}/{basis}/{segment}")
                        log.error(
                            "%s: statistic %s of metric %s failed (%s, window %d, basis %s, segment %s): %s",
                            slug, spec.name, metric_name, period.value, table.window_index, basis, segment, e,
                            exc_info=e, extra=context(**where),
                        )
                        continue
                    for problem in statistics.computation_errors(rows):
                        failures.append(f"{metric_name}/{spec.name}/{basis}/{segment}")
                        log.error(
                            "%s: statistic %s of metric %s (%s, window %d, basis %s, segment %s): %s",
                            slug, spec.name, metric_name, period.value, table.window_index, basis, segment,
                            problem, exc_info=problem, extra=context(**where),
                        )
                    records.extend(rows.to_dict("records"))
        for metric_name in table.failed_metrics:
            failures.append(f"{metric_name}/*/{basis}")
    return pd.DataFrame.from_records(records, columns=STATISTICS_COLUMNS)


def _period_param(statistic: str, period: AnalysisPeriod) -> dict[str, str]:
    """Statistics that behave differently per period (covariate adjustment) are told the period."""
    try:
        accepts = "period" in statistics.definition(statistic).parameters
    except statistics.StatisticConfigError:
        return {}  # compute() reports the unknown statistic with its name
    return {"period": period.value} if accepts else {}


def _records(frame: pd.DataFrame) -> list[dict]:
    clean = frame.replace([np.inf, -np.inf], np.nan).astype(object).where(frame.notna(), None)
    return clean.to_dict("records")


def compute_statistics(
    warehouse: Warehouse, config: AnalysisConfig, plan: AnalysisPlan, metrics_tables: list[MetricsTable],
    log: logging.Logger,
) -> list[StatisticsTable]:
    slug = config.experiment.slug
    by_window: dict[tuple[str, int], list[MetricsTable]] = {}
    for t in metrics_tables:
        by_window.setdefault((t.period, t.window_index), []).append(t)
    results = []
    with warehouse.publication(warehouse.dataset, slug) as pub:
        if plan.rerun:
            # windows no longer configured must not linger (Jetstream's rerun starts clean)
            prefix = f"statistics_{table_slug(slug)}_"
            pub.drop(t for t in warehouse.list_tables(warehouse.dataset, prefix) if is_period_result(slug, t))
        for (period_value, index), tables in by_window.items():
            period = AnalysisPeriod(period_value)
            failures: list[str] = []
            clients: dict[str, dict[str, int]] = {}
            timings = {"sql": 0.0}
            started = time.perf_counter()
            frame = _window_rows(warehouse, config, period, tables, log, failures, clients, timings)
            frame = bonferroni_rows(frame, [o.metrics for o in config.outcomes if o.multiple_testing == BONFERRONI],
                                    len(config.experiment.branch_slugs))
            statistics_seconds = time.perf_counter() - started - timings["sql"]
            written = time.perf_counter()
            table = statistics_table(slug, period_value, index)
            rows = pub.load_rows(
                table, _records(frame), STATISTICS_SCHEMA, description=slug,
                labels=QueryLabels(experiment=slug, destination=f"{warehouse.dataset}.{table}",
                                   extra={"schema_version": "4"}),
            )
            pub.create_window_view(statistics_view(slug, period.table_suffix), statistics_table_prefix(slug, period_value))
            sql_seconds = timings["sql"] + time.perf_counter() - written
            results.append(
                StatisticsTable(period_value, index, table, rows, clients, failures, sql_seconds, statistics_seconds)
            )
    return results
