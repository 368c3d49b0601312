"""What every per-experiment asset step shares: the run's date and mode, the experiment's resolved
config, and log capture (WARNING+ to `monitoring.logs`, everything to the Dagster run log)."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Iterator

import dagster as dg

from jetstream_assets.analysis.data_bounds import data_bounds, data_through, log_data_bounds, log_not_ready
from jetstream_assets.analysis.logs import LogsTableHandler, analysis_logger, context
from jetstream_assets.analysis.plan import AnalysisPlan, plan_analysis
from jetstream_assets.analysis.published import log_healed_windows, published_windows
from jetstream_assets.analysis.runnable import ValidationException, check_runnable, slug_warning
from jetstream_assets.dagster_defs.resources import MetricHubResource, WarehouseResource
from jetstream_assets.dagster_defs.run_tags import RunSettings, run_settings
from jetstream_assets.dagster_defs.table_name_owner import refuse_shared_table_name
from jetstream_assets.engines.warehouse import Warehouse
from jetstream_assets.experimenter.store import SNAPSHOT_TABLE, read_snapshot
from jetstream_assets.metric_hub.errors import ConfigError
from jetstream_assets.metric_hub.models import AnalysisConfig


class _DagsterLogForwarder(logging.Handler):
    """Shows the analysis' log records in the run's event log."""

    def __init__(self, dagster_log: dg.DagsterLogManager):
        super().__init__(logging.INFO)
        self.dagster_log = dagster_log

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            message += f" [{type(record.exc_info[1]).__name__}]"
        self.dagster_log.log(record.levelno, message)


def config_error_coordinates(error: ConfigError) -> dict[str, str]:
    """The metric and statistic a config error's field names (`metrics.<m>.statistics.<s>...`)."""
    parts = (error.field or "").split(".")
    coordinates = {}
    if len(parts) >= 2 and parts[0] == "metrics":
        coordinates["metric"] = parts[1]
        if len(parts) >= 4 and parts[2] == "statistics":
            coordinates["statistic"] = parts[3]
    return coordinates


@dataclass
class ExperimentStep:
    slug: str
    warehouse: Warehouse
    settings: RunSettings
    log: logging.Logger
    logs_handler: LogsTableHandler
    config: AnalysisConfig | None = None
    plan: AnalysisPlan | None = None
    skip_reason: str | None = None

    @property
    def analysable(self) -> bool:
        return self.config is not None and self.plan is not None


@contextlib.contextmanager
def captured_logs(warehouse: Warehouse, dagster_context) -> Iterator[tuple[logging.Logger, LogsTableHandler]]:
    """Attach the logs-table and run-log handlers for one step; flush on success and on failure."""
    logger = analysis_logger()
    logger.setLevel(logging.INFO)
    table_handler = LogsTableHandler(warehouse)
    forwarder = _DagsterLogForwarder(dagster_context.log)
    logger.addHandler(table_handler)
    logger.addHandler(forwarder)
    try:
        yield logger, table_handler
    finally:
        table_handler.flush()
        logger.removeHandler(table_handler)
        logger.removeHandler(forwarder)


_bounds_warned: set[tuple[str, str]] = set()  # (run id, slug)


def _first_to_warn(slug: str) -> bool:
    """Every step of a run plans the analysis, but what bounds it is one WARNING row per run: the first
    step of the run in this process writes it (outside a run, e.g. a check's own evaluation, always)."""
    try:
        key = (dg.AssetExecutionContext.get().run_id, slug)
    except dg.DagsterInvariantViolationError:
        return True
    if key in _bounds_warned:
        return False
    _bounds_warned.add(key)
    return True


def _load(step: ExperimentStep, metric_hub: MetricHubResource, instance: dg.DagsterInstance) -> None:
    today = dt.datetime.now(dt.timezone.utc).date()
    experiments = read_snapshot(step.warehouse, today=today)
    experiment = experiments.get(step.slug)
    if experiment is None:
        # a partition whose experiment left Experimenter (deleted), or one added before the snapshot had it
        message = (
            f"{step.slug}: experiment {step.slug!r} is not in {step.warehouse.monitoring_dataset}.{SNAPSHOT_TABLE}: "
            "it was deleted from Experimenter, or the snapshot predates it (materialize "
            f"{SNAPSHOT_TABLE} and retry); nothing is analysed"
        )
        step.log.error(message, extra=context(experiment=step.slug))
        raise dg.Failure(description=message, metadata={"experiment": step.slug})
    refuse_shared_table_name(instance, step.slug, experiments, step.log)
    warning = slug_warning(step.slug)
    if warning:
        step.log.warning("%s: %s", step.slug, warning, extra=context(experiment=step.slug))
    config = metric_hub.get_metric_hub().resolve(experiment)
    date = step.settings.date
    if step.settings.rerun and config.end_date is not None:
        # a rerun replays every date up to the end date; later dates would only raise EndedException
        date = min(date, config.end_date)
    check_runnable(config, date)
    step.config = config
    # never past the data: a run with a date that the data does not reach warns (a monitoring.logs row);
    # a run without one (a UI materialization or backfill) analyses up to the last day of data
    bounds = data_bounds(step.warehouse, config)
    log_data_bounds(step.log, config, bounds, date if step.settings.dated else None, warn=_first_to_warn(step.slug))
    step.plan = plan_analysis(config, date, rerun=step.settings.rerun, data_through=data_through(config, bounds),
                              published=published_windows(step.warehouse, config))
    log_healed_windows(step.log, step.slug, step.plan, date)
    if not step.settings.dated:
        step.log.info("%s: no analysis date given: analysing up to the last day of data, %s", step.slug,
                      step.plan.date, extra=context(experiment=step.slug))
    log_not_ready(step.log, step.slug, step.plan)


@contextlib.contextmanager
def experiment_step(
    dagster_context, warehouse: WarehouseResource, metric_hub: MetricHubResource
) -> Iterator[ExperimentStep]:
    """Yields the step's state. A skip (Jetstream's ValidationException) is logged and leaves
    `step.analysable` False; a configuration error is logged and fails the step with its location."""
    slug = dagster_context.partition_key
    wh = warehouse.get_warehouse()
    with wh.session(), captured_logs(wh, dagster_context) as (log, handler):
        step = ExperimentStep(slug=slug, warehouse=wh, settings=run_settings(dagster_context.run.tags), log=log,
                              logs_handler=handler)
        try:
            _load(step, metric_hub, dagster_context.instance)
        except ValidationException as e:
            step.skip_reason = str(e)
            log.warning("%s: not analysed: %s", slug, e, exc_info=e, extra=context(experiment=slug))
        except ConfigError as e:
            log.error("%s: invalid metric-hub configuration: %s", slug, e, exc_info=e,
                      extra=context(experiment=slug, **config_error_coordinates(e)))
            raise dg.Failure(f"{slug}: invalid metric-hub configuration: {e}") from e
        try:
            yield step
        except ValidationException as e:  # a skip found by the analysis (e.g. no enrolled clients)
            log.warning("%s: not analysed: %s", slug, e, exc_info=e, extra=context(experiment=slug))
        except dg.Failure:
            raise
        except Exception as e:
            step_name = dagster_context.asset_key.to_user_string()
            log.error("%s: %s failed: %s", slug, step_name, e, exc_info=e, extra=context(experiment=slug))
            raise
