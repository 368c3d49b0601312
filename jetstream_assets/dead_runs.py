"""Runs of the CLI whose process died (`kill -9`, out of memory, a reboot) are marked failed.

The CLI executes its runs in process, with no daemon watching them, so Dagster's run monitoring never
sees them: without this a killed run stays STARTED for good. Every CLI run is tagged with the host and
pid of its process; the next CLI start on that host reports each unfinished run whose process is gone
as failed, and logs it for its experiment as the run-failure sensor would.
"""

from __future__ import annotations

import os
import socket

import dagster as dg

from jetstream_assets.dagster_defs.sensors import RunFailure, record_run_failure
from jetstream_assets.engines.warehouse import Warehouse

CLI_HOST_TAG = "jetstream/cli_host"
CLI_PID_TAG = "jetstream/cli_pid"
UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def cli_run_tags() -> dict[str, str]:
    """The tags that let a later CLI find this process's runs if it dies."""
    return {CLI_HOST_TAG: socket.gethostname(), CLI_PID_TAG: str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def dead_cli_runs(instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
    """Unfinished runs started by a CLI process of this host that no longer exists (other hosts' runs
    are never touched: their pids mean nothing here)."""
    runs = instance.get_runs(dg.RunsFilter(statuses=UNFINISHED, tags={CLI_HOST_TAG: socket.gethostname()}))
    return [r for r in runs if r.tags.get(CLI_PID_TAG, "").isdigit() and not _alive(int(r.tags[CLI_PID_TAG]))]


def mark_dead_runs_failed(instance: dg.DagsterInstance, warehouse: Warehouse) -> list[dg.DagsterRun]:
    """Report every dead CLI run as failed and give each experiment's one a `logs` ERROR row."""
    dead = dead_cli_runs(instance)
    for run in dead:
        message = (
            f"the jetstream-assets process that ran it (pid {run.tags[CLI_PID_TAG]} on {run.tags[CLI_HOST_TAG]}) "
            "is gone (killed or crashed); marked failed by the next jetstream-assets start"
        )
        instance.report_run_failed(run, message)
        record_run_failure(
            instance, warehouse, run, RunFailure(run.run_id, run.job_name, None, None, message, None, None, None)
        )
    return dead
