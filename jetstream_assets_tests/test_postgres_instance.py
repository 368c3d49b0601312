"""deploy/dagster.yaml against a real PostgreSQL (marker `postgres`; .ci/run starts Debian's
`postgresql` and sets DAGSTER_PG_HOST/DB/USERNAME/PASSWORD; skipped only when DAGSTER_PG_HOST is unset).

The real `dagster-daemon` runs the shipped instance with two local stand-ins: Dagster's
DefaultRunLauncher (a local process per run, instead of a Kubernetes job) and compute logs on disk
instead of GCS; run monitoring polls every 2 s instead of 60 s so the test takes minutes. A backfill
of three experiments queues on the `warehouse` pool (limit 1); the run holding the slot is killed with
SIGKILL (its worker and step processes, as when a pod is evicted). The code server marks that run
failed (as run monitoring does for a dead pod in production); without
`free_slots_after_run_end_seconds` its slot would stay taken and the other two runs would wait forever.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from jetstream_assets.dagster_defs.partitions import WAREHOUSE_POOL, experiments_partitions
from jetstream_assets.dagster_defs.resources import WarehouseResource
from jetstream_assets.dagster_defs.run_tags import rerun_tags
from jetstream_assets.experimenter.parse import parse_experiments
from jetstream_assets.experimenter.store import write_snapshot
from jetstream_assets_tests.small_sample import like_tab_groups, log_rows, write_small_sample

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[1]
PG_SETTINGS = ("DAGSTER_PG_HOST", "DAGSTER_PG_DB", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD")
SLUGS = ["pool-queue-a", "pool-queue-b", "pool-queue-c"]
DATE = dt.date(2026, 10, 4)  # one weekly window ready: short runs that still take the pool
DRAIN_TIMEOUT = 900


@pytest.fixture
def pg_database() -> Iterator[dict[str, str]]:
    """A fresh database on the server DAGSTER_PG_* point at; the DAGSTER_PG_* settings that reach it."""
    if not os.environ.get("DAGSTER_PG_HOST"):
        pytest.skip("DAGSTER_PG_HOST is unset: run .ci/run (it starts Debian's postgresql), or set DAGSTER_PG_*")
    import psycopg2

    settings = {name: os.environ[name] for name in PG_SETTINGS}
    admin = psycopg2.connect(host=settings["DAGSTER_PG_HOST"], dbname=settings["DAGSTER_PG_DB"],
                             user=settings["DAGSTER_PG_USERNAME"], password=settings["DAGSTER_PG_PASSWORD"])
    admin.autocommit = True
    name = f"jetstream_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {name}")
    try:
        yield settings | {"DAGSTER_PG_DB": name}
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.close()


def local_instance_yaml(dagster_home: Path) -> None:
    """deploy/dagster.yaml with the local launcher and compute logs, and a faster monitoring poll."""
    config = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    config["run_launcher"] = {"module": "dagster.core.launcher", "class": "DefaultRunLauncher"}
    config["compute_logs"] = {"module": "dagster.core.storage.local_compute_log_manager",
                              "class": "LocalComputeLogManager", "config": {"base_dir": str(dagster_home / "logs")}}
    config["run_monitoring"]["poll_interval_seconds"] = 2
    dagster_home.mkdir(parents=True)
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config))


def run_pids(instance: dg.DagsterInstance, run_id: str) -> set[int]:
    """The run worker's pid and its step processes' pids, from the run's own events."""
    kinds = {dg.DagsterEventType.RUN_START, dg.DagsterEventType.STEP_START}
    return {
        entry.dagster_event.pid
        for entry in instance.all_logs(run_id)
        if entry.dagster_event and entry.dagster_event.event_type in kinds and entry.dagster_event.pid
    }


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_backfill_drains_after_the_run_holding_the_warehouse_slot_is_killed(
    pg_database: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sample = write_small_sample(tmp_path / "home", [like_tab_groups(slug, clients=200) for slug in SLUGS])
    write_snapshot(WarehouseResource(home=str(sample.home)).get_warehouse(),
                   parse_experiments(sample.payload, today=DATE + dt.timedelta(days=1)).experiments)
    dagster_home = tmp_path / "dagster_home"
    local_instance_yaml(dagster_home)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JETSTREAM_", "DAGSTER_"))} | pg_database | {
        "DAGSTER_HOME": str(dagster_home), "JETSTREAM_HOME": str(sample.home),
        "EXPERIMENTER_URL": str(sample.experimenter_json), "PYTHONPATH": str(REPO),
    }
    for name in (*PG_SETTINGS, "DAGSTER_HOME"):  # the instance file reads them from the environment
        monkeypatch.setenv(name, env[name])
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    instance.event_log_storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
    instance.add_dynamic_partitions(experiments_partitions.name, SLUGS)  # discovery finds nothing new

    bin_dir = Path(sys.executable).parent
    daemon = subprocess.Popen([str(bin_dir / "dagster-daemon"), "run", "-w", "workspace.yaml"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=(tmp_path / "daemon.log").open("w"),
                              start_new_session=True)
    try:
        subprocess.run(
            [str(bin_dir / "dagster"), "job", "backfill", "-w", "workspace.yaml", "-j", "experiment_analysis",
             "--partitions", ",".join(SLUGS), "--tags", json.dumps(rerun_tags(DATE)), "--noprompt"],
            cwd=REPO, env=env, check=True, capture_output=True, text=True, timeout=300,
        )
        holder = wait_for(
            lambda: next(iter(instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots), None),
            DRAIN_TIMEOUT, "a run to take the warehouse slot",
        )
        killed = holder.run_id
        for pid in run_pids(instance, killed):
            os.kill(pid, signal.SIGKILL)

        def drained() -> list[dg.DagsterRun]:
            runs = instance.get_runs(dg.RunsFilter(job_name="experiment_analysis"))
            return runs if len(runs) >= len(SLUGS) and all(r.is_finished for r in runs) else []

        runs = wait_for(drained, DRAIN_TIMEOUT, "every queued run to finish")
    finally:
        os.killpg(daemon.pid, signal.SIGKILL)  # the daemon, its code server and any run worker left
        daemon.wait()

    assert instance.get_run_by_id(killed).status == dg.DagsterRunStatus.FAILURE
    # the backfill's runs never retry (it is complete once every run is launched): the others succeeded
    assert {r.tags["dagster/partition"] for r in runs if r.status == dg.DagsterRunStatus.SUCCESS} == (
        set(SLUGS) - {instance.get_run_by_id(killed).tags["dagster/partition"]})
    assert not instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots
    slug = instance.get_run_by_id(killed).tags["dagster/partition"]
    instance.dispose()
    # the daemon's run-failure sensor logged the dead run for its experiment
    assert any(killed in message for message in log_rows(sample.home, slug)["message"])
