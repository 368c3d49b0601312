"""`jetstream-assets validate-config PATH...`: parse metric-hub configs, then dry-run their SQL on the
warehouse (BigQuery: a dry run; DuckDB: EXPLAIN), metric by metric so a failure names its metric."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.core.windows import ExperimentDates, window
from jetstream_assets.engines.warehouse import Warehouse, WarehouseError
from jetstream_assets.experimenter.models import Branch
from jetstream_assets.metric_hub.errors import ConfigError, line_of_field
from jetstream_assets.metric_hub.loader import MetricHub
from jetstream_assets.metric_hub.models import AnalysisConfig
from jetstream_assets.metric_hub.validation import placeholder_experiment, validate_path
from jetstream_assets.settings import bundled_metric_hub, setting
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


def _experiment_files(path: Path) -> list[tuple[Path, Path]]:
    """(config file, metric-hub root) of every experiment config under `path`."""
    if path.is_dir():
        folder = path / "jetstream" if (path / "jetstream").is_dir() else path
        return [(f, folder.parent) for f in sorted(folder.glob("*.toml"))]
    if path.suffix == ".toml" and path.parent.name not in ("defaults", "definitions") and \
            path.parent.parent.name != "outcomes":
        root = path.parent.parent if path.parent.name == "jetstream" else None
        return [(path, root)]
    return []


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
            )
            try:
                warehouse.dry_run(sql)
            except WarehouseError as e:
                problems.append(DryRunProblem(file, metric.name, basis, str(e).splitlines()[0]))
                break
    return problems


def validate_paths(paths: list[Path], *, dry_run: bool = True, warehouse: Warehouse | None = None) -> int:
    """Print every problem with its file, field/line and reason; 0 when all is well, 1 otherwise."""
    metric_hub_path = setting("METRIC_HUB_PATH") or bundled_metric_hub()
    failures = 0
    for path in paths:
        for error in validate_path(path, metric_hub_path=metric_hub_path):
            print(f"INVALID {error}")
            failures += 1
    if failures or not dry_run:
        return 1 if failures else 0
    if warehouse is None:
        from jetstream_assets.dagster_defs.resources import initialized_resources

        warehouse = initialized_resources()["warehouse"].get_warehouse()
    for path in paths:
        for file, root in _experiment_files(path):
            hub = MetricHub(root or metric_hub_path)
            experiment = placeholder_experiment(file.stem).with_overrides(
                branches=(Branch("control"), Branch("treatment")), start_date=dt.date.today() - dt.timedelta(days=30)
            )
            try:
                config = hub.resolve(experiment, config_file=file)
            except ConfigError as e:
                print(f"INVALID {e}")
                failures += 1
                continue
            for problem in dry_run_config(warehouse, config, str(file)):
                print(f"INVALID {problem}")
                failures += 1
    if not failures:
        print(f"OK: {', '.join(str(p) for p in paths)}")
    return 1 if failures else 0
