"""Jetstream's daily run and rerun, executed as Dagster runs on the instance in DAGSTER_HOME, so every
run shows in the UI afterwards."""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import dagster as dg

from jetstream_assets.analysis.selection import wants_partition
from jetstream_assets.console import one_line_console_logger, route_framework_warnings
from jetstream_assets.dagster_defs.errors_export import ERRORS_JSON_KEY
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.run_tags import daily_tags, rerun_tags
from jetstream_assets.dead_runs import cli_run_tags, mark_dead_runs_failed
from jetstream_assets.experimenter.store import read_snapshot
from jetstream_assets.settings import setting
from jetstream_assets.stop_signals import Stopped, raise_if_stopped


@dataclass
class ExperimentOutcome:
    slug: str
    status: str  # analysed | skipped | failed
    run_id: str
    detail: str = ""
    checks: list[dg.AssetCheckEvaluation] = field(default_factory=list)  # the run's asset check results


@dataclass
class RunReport:
    date: dt.date
    snapshot_ok: bool
    outcomes: list[ExperimentOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[ExperimentOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]


class RunStopped(Stopped):
    """SIGINT/SIGTERM stopped the run: what it was doing, and how many experiments never started."""

    def __init__(self, signum: int, during: str | None, not_started: int | None):
        super().__init__(signum)
        self.during = during  # the experiment being analysed, if any
        self.not_started = not_started  # None: stopped before the experiments were listed

    def describe(self) -> str:
        if self.during:
            plural = "" if self.not_started == 1 else "s"
            return (f"interrupted by {self.signal_name} during {self.during}: its published results were left "
                    f"as they were; {self.not_started} experiment{plural} not started")
        if self.not_started is None:
            return f"interrupted by {self.signal_name} before any experiment started: nothing was analysed"
        return (f"interrupted by {self.signal_name} after the experiments, during the monitoring runs: "
                "the monitoring tables were left as they were")


class Progress(Protocol):
    """What the caller is told while the experiments run."""

    def started(self, slug: str, index: int, total: int) -> None: ...

    def finished(self, outcome: ExperimentOutcome, seconds: float) -> None: ...


def dagster_instance(home: str) -> dg.DagsterInstance:
    """The instance in DAGSTER_HOME; when unset, `<JETSTREAM_HOME>/dagster_home` (created on first use)."""
    if not os.environ.get("DAGSTER_HOME"):
        dagster_home = Path(home).expanduser().absolute() / "dagster_home"
        dagster_home.mkdir(parents=True, exist_ok=True)
        config = dagster_home / "dagster.yaml"
        if not config.exists():
            # a laptop install phones nobody: the CLI's own instance has Dagster's telemetry off; run
            # monitoring marks dead runs launched from the UI (`dagster dev`) failed and frees their
            # pool slots (the CLI's own runs: `dead_runs`)
            config.write_text(CLI_INSTANCE_YAML)
        os.environ["DAGSTER_HOME"] = str(dagster_home)
    return dg.DagsterInstance.get()


CLI_INSTANCE_YAML = """\
telemetry:
  enabled: false
run_monitoring:
  enabled: true
  free_slots_after_run_end_seconds: 30
"""


def _definitions() -> dg.Definitions:
    # imported late: resources read the environment, which the CLI sets first
    from jetstream_assets.definitions import defs

    return defs


# the CLI prints its own summary and only warnings and errors, one line each; the run's full event
# log stays in the instance for the UI
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _cli_job(name: str) -> dg.JobDefinition:
    route_framework_warnings()
    return _definitions().resolve_job_def(name).with_logger_defs({"console": one_line_console_logger})


def _materialized(result: dg.ExecuteInProcessResult) -> bool:
    """Whether the analysis produced anything (the errors export is published even for a skip)."""
    return any(
        e.is_step_materialization and e.asset_key != ERRORS_JSON_KEY for e in result.all_events
    )


def _root_cause(error) -> str:
    """The first error of ours under Dagster's wrappers: it names the experiment and the table."""
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    return error.message.strip().splitlines()[0] if error.message else ""


def refresh_snapshot(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    job = _cli_job("experimenter_snapshot")
    return job.execute_in_process(instance=instance, raise_on_error=False, run_config=QUIET, tags=cli_run_tags())


def run_monitoring(instance: dg.DagsterInstance) -> None:
    """The logs summary, and the cost of today's queries so far (the schedule rewrites the full day later)."""
    _cli_job("monitoring_daily").execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET, tags=cli_run_tags()
    )
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    _cli_job("query_cost_daily").execute_in_process(
        instance=instance, partition_key=today, raise_on_error=False, run_config=QUIET, tags=cli_run_tags()
    )


def analyse(instance: dg.DagsterInstance, slug: str, date: dt.date, *, rerun: bool) -> ExperimentOutcome:
    job = _cli_job("experiment_analysis")
    tags = (rerun_tags(date) if rerun else daily_tags(date)) | cli_run_tags()
    result = job.execute_in_process(
        instance=instance, partition_key=slug, tags=tags, raise_on_error=False, run_config=QUIET
    )
    checks = result.get_asset_check_evaluations()
    if not result.success:
        step_failures = [e for e in result.all_events if e.is_step_failure]
        detail = _root_cause(step_failures[0].event_specific_data.error) if step_failures else "run failed"
        return ExperimentOutcome(slug, "failed", result.run_id, detail, checks)
    status = "analysed" if _materialized(result) else "skipped"
    return ExperimentOutcome(slug, status, result.run_id, checks=checks)


def experiments_to_analyse(instance: dg.DagsterInstance, date: dt.date, slugs: list[str] | None) -> list[str]:
    """Register partitions for analysable experiments and return the slugs to run."""
    from jetstream_assets.dagster_defs.resources import initialized_resources

    warehouse = initialized_resources()["warehouse"].get_warehouse()
    experiments = read_snapshot(warehouse, today=dt.datetime.now(dt.timezone.utc).date())
    if slugs:
        wanted = [s for s in slugs if s in experiments]
    else:
        wanted = sorted(s for s, e in experiments.items() if wants_partition(e, date))
    known = set(instance.get_dynamic_partitions(experiments_partitions.name))
    new = [s for s in wanted if s not in known]
    if new:
        instance.add_dynamic_partitions(experiments_partitions.name, new)
    return wanted


def check_metric_hub_path() -> None:
    """An unreadable metric-hub folder would fail every experiment alike (or, if missing, analyse them
    without their configs): refuse it before any run."""
    path = setting("METRIC_HUB_PATH")
    if not path:
        return
    try:
        if not Path(path).is_dir():
            raise ValueError(f"METRIC_HUB_PATH={path} is not a folder (it must hold metric-hub's layout)")
        os.listdir(path)
    except OSError as e:
        raise ValueError(f"METRIC_HUB_PATH={path} cannot be read: {e.strerror}") from e


def daily_run(
    date: dt.date, slugs: list[str] | None = None, *, rerun: bool = False, progress: Progress | None = None
) -> RunReport:
    """Mark dead earlier runs failed, refresh the snapshot, register partitions, analyse each experiment
    (one Dagster run each), then the monitoring assets. One experiment's failure never stops the others;
    SIGINT/SIGTERM stop them all (`RunStopped`)."""
    from jetstream_assets.dagster_defs.resources import initialized_resources

    check_metric_hub_path()
    instance = dagster_instance(setting("JETSTREAM_HOME"))
    current: str | None = None  # the experiment being analysed
    not_started: int | None = None  # None until the experiments are listed
    try:
        mark_dead_runs_failed(instance, initialized_resources()["warehouse"].get_warehouse())
        snapshot = refresh_snapshot(instance)
        raise_if_stopped()
        report = RunReport(date=date, snapshot_ok=snapshot.success)
        wanted = experiments_to_analyse(instance, date, slugs)
        missing = [s for s in (slugs or []) if s not in wanted]
        for slug in missing:
            report.outcomes.append(ExperimentOutcome(slug, "failed", "", "not in the Experimenter snapshot"))
        for index, slug in enumerate(wanted, start=1):
            current, not_started = slug, len(wanted) - index
            if progress:
                progress.started(slug, index, len(wanted))
            started = time.monotonic()
            outcome = analyse(instance, slug, date, rerun=rerun)
            raise_if_stopped()
            report.outcomes.append(outcome)
            if progress:
                progress.finished(outcome, time.monotonic() - started)
        current, not_started = None, 0
        run_monitoring(instance)
        raise_if_stopped()
    except Stopped as stop:
        raise RunStopped(stop.signum, current, not_started) from None
    return report
