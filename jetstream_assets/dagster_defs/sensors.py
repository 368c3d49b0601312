"""Sensors: experiment discovery, reruns on changed configuration, and a `logs` row for every failed
analysis run that left none.

A tick that raises commits nothing (no cursor, no partitions, no runs), so every sensor here computes
its whole result before returning it, and run keys make a repeated tick harmless.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dagster as dg

from jetstream_assets.analysis.logs import LOGS_TABLE
from jetstream_assets.analysis.selection import wants_partition
from jetstream_assets.core.schema import LOGS_SCHEMA
from jetstream_assets.dagster_defs.jobs import experiment_analysis_job
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.resources import MetricHubResource, WarehouseResource
from jetstream_assets.dagster_defs.run_tags import rerun_tags, yesterday
from jetstream_assets.dagster_defs.run_times import run_started_at
from jetstream_assets.engines.warehouse import Warehouse
from jetstream_assets.experimenter.models import Experiment
from jetstream_assets.experimenter.store import read_snapshot
from jetstream_assets.metric_hub.errors import ConfigError
from jetstream_assets.metric_hub.loader import MetricHub
from jetstream_assets.sql.dialect import quote_string

if TYPE_CHECKING:  # Dagster's error record is not exported publicly; only its fields are read here
    from dagster._utils.error import SerializableErrorInfo

# enabling a sensor on a large backlog must not flood the run queue: the rest waits in the cursor
MAX_RUNS_PER_TICK = 10
# a rerun replays every date of an experiment, so fewer of them start per tick
MAX_RERUNS_PER_TICK = 5
# 48 bits per experiment: a missed change needs a collision between two versions of one experiment
FINGERPRINT_CHARS = 12
_MAX_EXCEPTION_CHARS = 20_000


# --- discovery: snapshot table -> partitions -> first runs -----------------------------------------


def _pending(cursor: str | None) -> list[str]:
    if not cursor:
        return []
    try:
        return list(json.loads(cursor).get("pending", []))
    except (ValueError, AttributeError):
        return []


@dg.sensor(
    job=experiment_analysis_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reads monitoring.experimenter_experiments_v1 (not the API), adds a partition for each newly "
    f"analysable experiment and requests its first full analysis, at most {MAX_RUNS_PER_TICK} per tick.",
)
def experiment_discovery_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    date = yesterday()
    experiments = read_snapshot(warehouse.get_warehouse(), today=date + dt.timedelta(days=1))
    if not experiments:
        return dg.SkipReason("monitoring.experimenter_experiments_v1 is empty: materialize it first")
    known = set(context.instance.get_dynamic_partitions(experiments_partitions.name))
    new = sorted(slug for slug, e in experiments.items() if wants_partition(e, date) and slug not in known)
    queue = list(dict.fromkeys(_pending(context.cursor) + new))
    batch, rest = queue[:MAX_RUNS_PER_TICK], queue[MAX_RUNS_PER_TICK:]
    if not new and not batch:
        return dg.SkipReason(f"no new analysable experiments among {len(experiments)}")
    return dg.SensorResult(
        dynamic_partitions_requests=[experiments_partitions.build_add_request(new)] if new else [],
        run_requests=[
            dg.RunRequest(run_key=f"first-analysis-{slug}", partition_key=slug, tags=rerun_tags(date))
            for slug in batch
        ],
        cursor=json.dumps({"pending": rest}),
    )


# --- config changes: Jetstream's `rerun-config-changed`, per experiment ---------------------------


def analysis_fingerprint(metric_hub: MetricHub, experiment: Experiment) -> str:
    """A short hash of everything outside the warehouse that changes the experiment's analysis: its
    metric-hub files (own TOML, platform defaults, definitions, the outcomes it uses) and the
    Experimenter fields that set its dates and branches.

    A config that cannot be used still gets a fingerprint, so breaking it counts as a change and the
    rerun logs the error. I/O errors propagate: a passing glitch must fail the tick, not rerun everything.
    """
    try:
        config = metric_hub.config_fingerprint(experiment.slug, experiment.app_name, experiment.outcomes)
    except ConfigError as e:  # a name metric-hub cannot hold: the same error on every tick
        config = f"unusable: {e}"
    dates = [
        experiment.start_date, experiment.enrollment_end_date, experiment.end_date,
        experiment.proposed_enrollment, list(experiment.branch_slugs),
    ]
    text = config + "\0" + json.dumps(dates, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:FINGERPRINT_CHARS]


@dataclass(frozen=True)
class PendingRerun:
    slug: str
    fingerprint: str
    generation: int  # the change count when it was seen; keeps the run key unique if a config is reverted

    @property
    def run_key(self) -> str:
        return f"config-changed-{self.slug}-{self.fingerprint}-{self.generation}"


@dataclass(frozen=True)
class ConfigChangeState:
    """The config-change sensor's cursor: the fingerprint last seen per experiment, reruns not yet
    requested (oldest first) and how many ticks found a change."""

    seen: dict[str, str] = field(default_factory=dict)
    pending: tuple[PendingRerun, ...] = ()
    generation: int = 0

    @classmethod
    def parse(cls, cursor: str | None, fresh_generation: int = 0) -> ConfigChangeState:
        """An empty or unreadable cursor starts afresh at `fresh_generation`: every experiment is then
        first seen, never rerun."""
        if not cursor:
            return cls(generation=fresh_generation)
        try:
            raw = json.loads(cursor)
            return cls(
                seen={str(k): str(v) for k, v in raw["seen"].items()},
                pending=tuple(PendingRerun(str(s), str(f), int(g)) for s, f, g in raw["pending"]),
                generation=int(raw["generation"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls(generation=fresh_generation)

    def dumps(self) -> str:
        pending = [[p.slug, p.fingerprint, p.generation] for p in self.pending]
        return json.dumps(
            {"generation": self.generation, "seen": self.seen, "pending": pending}, separators=(",", ":"), sort_keys=True
        )


def detect_config_changes(state: ConfigChangeState, fingerprints: dict[str, str]) -> ConfigChangeState:
    """The next state: every tracked experiment's current fingerprint, and a pending rerun for each
    one whose fingerprint differs from the one seen before (first sight only records).

    Experiments no longer in `fingerprints` are forgotten; a newer change replaces a pending rerun.
    """
    changed = sorted(slug for slug, fp in fingerprints.items() if state.seen.get(slug, fp) != fp)
    generation = state.generation + 1 if changed else state.generation
    kept = tuple(p for p in state.pending if p.slug in fingerprints and p.slug not in changed)
    added = tuple(PendingRerun(slug, fingerprints[slug], generation) for slug in changed)
    return ConfigChangeState(seen=dict(sorted(fingerprints.items())), pending=kept + added, generation=generation)


@dg.sensor(
    job=experiment_analysis_job,
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Jetstream's rerun-config-changed, per experiment: reruns a live or recently ended partition "
    "whose metric-hub configuration (own TOML, platform defaults, definitions, outcomes) or Experimenter "
    f"dates/branches changed since the last tick, at most {MAX_RERUNS_PER_TICK} per tick. A first sight only records.",
)
def config_change_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource, metric_hub: MetricHubResource
):
    hub = metric_hub.get_metric_hub()
    if not hub.root.is_dir():
        # a missing checkout is not "every config deleted": wait for it instead of rerunning everything
        return dg.SkipReason(f"metric-hub folder {hub.root} is missing; nothing compared")
    date = yesterday()
    experiments = read_snapshot(warehouse.get_warehouse(), today=date + dt.timedelta(days=1))
    if not experiments:
        return dg.SkipReason("monitoring.experimenter_experiments_v1 is empty: materialize it first")
    partitions = set(context.instance.get_dynamic_partitions(experiments_partitions.name))
    # only experiments the pipeline still analyses (live or ended within 90 days): partitions of
    # long-finished ones pile up over the years and would only grow the cursor
    fingerprints = {
        slug: analysis_fingerprint(hub, e)
        for slug, e in sorted(experiments.items())
        if slug in partitions and wants_partition(e, date)
    }
    # after a cursor reset, counting on from the clock keeps new run keys apart from every earlier one
    previous = ConfigChangeState.parse(context.cursor, fresh_generation=int(time.time()))
    state = detect_config_changes(previous, fingerprints)
    batch, rest = state.pending[:MAX_RERUNS_PER_TICK], state.pending[MAX_RERUNS_PER_TICK:]
    committed = ConfigChangeState(seen=state.seen, pending=rest, generation=state.generation)
    if not batch:
        reason = f"no configuration or date change among {len(fingerprints)} experiment partitions"
        if committed == previous:
            return dg.SkipReason(reason)
        return dg.SensorResult(skip_reason=reason, cursor=committed.dumps())
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(run_key=p.run_key, partition_key=p.slug, tags=rerun_tags(date)) for p in batch
        ],
        cursor=committed.dumps(),
    )


# --- run failures: one `logs` row for a failed analysis that logged nothing -----------------------

_FRAME = re.compile(r'File "(?P<file>[^"]+)", line \d+, in (?P<func>\S+)')


@dataclass(frozen=True)
class RunFailure:
    """What a failed run tells about its failure, taken from Dagster's events."""

    run_id: str
    job_name: str
    step_key: str | None
    error_type: str | None
    error_message: str
    traceback: str | None
    filename: str | None
    func_name: str | None


def _root_cause(error: SerializableErrorInfo) -> SerializableErrorInfo:
    """The first error of ours under Dagster's wrappers (it names the experiment and table)."""
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    return error


def run_failure(context: dg.RunFailureSensorContext) -> RunFailure:
    step_failures = context.get_step_failure_events()
    step_key = step_failures[0].step_key if step_failures else None
    error = step_failures[0].step_failure_data.error if step_failures else None
    if error is None:  # the run died outside any step: a killed worker, a launch failure
        error = getattr(context.failure_event.event_specific_data, "error", None)
    run = context.dagster_run
    if error is None:
        return RunFailure(run.run_id, run.job_name, step_key, None, context.failure_event.message or "run failed",
                          None, None, None)
    root = _root_cause(error)
    frames = [m for line in root.stack for m in _FRAME.finditer(line)]
    last = frames[-1] if frames else None
    return RunFailure(
        run_id=run.run_id,
        job_name=run.job_name,
        step_key=step_key,
        error_type=root.cls_name,
        error_message=next(iter((root.message or "").strip().splitlines()), ""),
        traceback=error.to_string()[-_MAX_EXCEPTION_CHARS:],
        filename=last.group("file").rsplit("/", 1)[-1] if last else None,
        func_name=last.group("func") if last else None,
    )


def failure_log_row(slug: str, failure: RunFailure, now: dt.datetime) -> dict[str, Any]:
    """The `logs` row for a failed run, in the analysis' own row format (`analysis.logs.log_row`)."""
    where = f" in step {failure.step_key}" if failure.step_key else ""
    cause = f"{failure.error_type}: {failure.error_message}" if failure.error_type else failure.error_message
    return {
        "timestamp": now,
        "experiment": slug,
        "message": f"{slug}: run {failure.run_id} of {failure.job_name} failed{where} before the analysis "
                   f"logged an error: {cause}",
        "log_level": "ERROR",
        "exception": failure.traceback,
        # a run killed outright has no traceback: name the run's job and step instead
        "filename": failure.filename or failure.job_name,
        "func_name": failure.func_name or failure.step_key or "",
        "exception_type": failure.error_type,
        "source": "jetstream",
        "metric": None,
        "statistic": None,
        "analysis_basis": None,
        "segment": None,
        "analysis_period": None,
    }


def logged_error_since(warehouse: Warehouse, slug: str, since: dt.datetime) -> bool:
    """Whether `logs` has an ERROR row of the experiment at or after `since` (naive UTC)."""
    if not warehouse.table_exists(warehouse.monitoring_dataset, LOGS_TABLE):
        return False
    table = warehouse.table_ref(warehouse.monitoring_dataset, LOGS_TABLE)
    found = warehouse.query(
        f"SELECT COUNT(*) AS n FROM {table} WHERE experiment = {quote_string(slug)} AND log_level = 'ERROR' "
        f"AND timestamp >= TIMESTAMP '{since.isoformat(sep=' ')}'"
    )
    return int(found["n"][0]) > 0


def record_run_failure(
    instance: dg.DagsterInstance, warehouse: Warehouse, run: dg.DagsterRun, failure: RunFailure
) -> str | None:
    """Append the failure's `logs` row unless the run is no experiment's analysis or already logged its
    error; returns why nothing was written, or None."""
    slug = run.tags.get("dagster/partition")
    if not slug or not instance.has_dynamic_partition(experiments_partitions.name, slug):
        # the snapshot, monitoring and query-cost jobs (date partitions) are no experiment's analysis
        return f"run {run.run_id} ({run.job_name}) has no experiment partition"
    if logged_error_since(warehouse, slug, run_started_at(instance, run.run_id)):
        return f"{slug}: run {run.run_id} already logged its error"
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    warehouse.load_rows(
        warehouse.monitoring_dataset, LOGS_TABLE, [failure_log_row(slug, failure, now)], LOGS_SCHEMA, append=True
    )
    return None


# no monitored_jobs: every job of this code location, so UI materializations and backfills (the
# implicit asset job) are covered as well as `experiment_analysis`
@dg.run_failure_sensor(
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Writes one ERROR row to monitoring.logs for a failed run of an experiment partition (any job, "
    "UI backfills included) that logged no error for its experiment (a resource or configuration failure "
    "before the analysis code, a killed process).",
)
def analysis_run_failure_sensor(context: dg.RunFailureSensorContext, warehouse: WarehouseResource):
    run = context.dagster_run
    skipped = record_run_failure(context.instance, warehouse.get_warehouse(), run, run_failure(context))
    if skipped:
        return dg.SkipReason(skipped)
    context.log.info(f"logged the failure of run {run.run_id} for {run.tags['dagster/partition']}")
    return None
