"""validate-config's dry run: each experiment config's enrollments and metrics SQL on the warehouse (BigQuery:
a dry run; DuckDB: EXPLAIN), metric by metric so a failure names its metric. Kept apart from the checks so that
`--no-dry-run` never imports the engines."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.core.windows import ExperimentDates, window
from jetstream_assets.engines.warehouse import Warehouse, WarehouseError
from jetstream_assets.metric_hub.errors import line_of_field
from jetstream_assets.metric_hub.models import AnalysisConfig
from jetstream_assets.sql.enrollments import build_enrollments_query
from jetstream_assets.sql.metrics import build_metrics_query


@dataclass(frozen=True)
class DryRunProblem:
    file: str
    metric: str
    basis: str
    reason: str

    def __str__(self) -> str:
        field = f"metrics.{self.metric}"
        try:
            line = line_of_field(Path(self.file).read_text(), field)
        except OSError:
            line = None
        location = f"{self.file}:{line}" if line else self.file
        return f"{location}: {field} ({self.basis} basis): {self.reason}"


def dry_run_config(warehouse: Warehouse, config: AnalysisConfig, file: str) -> list[DryRunProblem]:
    """Dry-run the first weekly window's metrics query, one metric at a time."""
    exp = config.experiment
    dates = ExperimentDates(exp.start_date, config.enrollment_period or 7, exp.end_date)
    enrollments = f"({build_enrollments_query(config, first_enrollment_date=dates.start_date, last_enrollment_date=dates.last_enrollment_date)})"
    problems = []
    try:
        warehouse.dry_run(f"SELECT * FROM {enrollments}")
    except WarehouseError as e:
        return [DryRunProblem(file, "<enrollments>", "enrollments", str(e))]
    first_week = window(dates, AnalysisPeriod.WEEK, 1)
    for metric in config.all_metrics().values():
        for basis in metric.analysis_bases:
            sql = build_metrics_query(
                slug=exp.slug, enrollments_table=enrollments, metrics=[metric], window=first_week, dates=dates,
                basis=basis, segment_columns=[s.name for s in config.segments], exposure_signal=config.exposure_signal,
                analysis_unit=config.analysis_unit,
            )
            try:
                warehouse.dry_run(sql)
            except WarehouseError as e:
                problems.append(DryRunProblem(file, metric.name, basis, str(e).splitlines()[0]))
                break
    return problems
