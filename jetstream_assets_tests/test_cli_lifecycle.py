"""How `jetstream-assets` ends when it cannot finish, with real subprocesses on the small sample:
SIGTERM stops the whole run (exit 143, no further experiment, no run left STARTED), a `kill -9`'d run
is marked failed and logged by the next start, and unusable files and settings end in one line on
stderr (exit 1, the traceback only with --verbose)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest

from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.run_tags import daily_tags
from jetstream_assets.dagster_defs.sensors import analysis_run_failure_sensor
from jetstream_assets_tests.fixtures_sample import ANALYSIS_ASSETS, CLI, cli_env, new_dagster_home
from jetstream_assets_tests.small_sample import (
    ONBOARDING,
    TAB_GROUPS,
    analysis_resources,
    log_rows,
    small_demo_designs,
    write_small_sample,
)

RERUN_DATE = "2026-10-11"  # pre-enrollment week and two weekly windows: each experiment's run takes a while
QUICK_DATE = "2026-10-05"  # no window ready: a run that only checks enrollments
UNFINISHED = {dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED}


def _homes(root: Path) -> tuple[Path, Path, dict[str, str]]:
    designs = [d for d in small_demo_designs(300) if d.slug in (TAB_GROUPS, ONBOARDING)]
    sample = write_small_sample(root / "home", designs)
    dagster_home = new_dagster_home(root / "dagster_home")
    return sample.home, dagster_home, cli_env(sample.home, dagster_home, str(sample.experimenter_json))


def analysis_runs(dagster_home: Path) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        return list(reversed(instance.get_runs(dg.RunsFilter(job_name="experiment_analysis"))))


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([CLI, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_a_running_step(dagster_home: Path, command: subprocess.Popen, timeout: float = 240) -> dg.DagsterRun:
    """The first analysis run once one of its steps has started (the analysis code is running)."""
    deadline = time.monotonic() + timeout
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        while time.monotonic() < deadline:
            assert command.poll() is None, command.communicate()
            for run in instance.get_runs(dg.RunsFilter(job_name="experiment_analysis")):
                if instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.STEP_START).records:
                    return run
            time.sleep(0.1)
    raise AssertionError("no analysis step started in time")


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory):
    """A rerun of two experiments sent SIGTERM while the first one's analysis runs."""
    home, dagster_home, env = _homes(tmp_path_factory.mktemp("sigterm"))
    command = start(["rerun", "--experiment-slug", TAB_GROUPS, "--experiment-slug", ONBOARDING, "--date", RERUN_DATE],
                    env)
    try:
        wait_for_a_running_step(dagster_home, command)
        command.send_signal(signal.SIGTERM)
        stdout, stderr = command.communicate(timeout=120)
    finally:
        command.kill()
    return subprocess.CompletedProcess(command.args, command.returncode, stdout, stderr), dagster_home


def test_sigterm_stops_the_whole_run_with_exit_143_and_one_line(interrupted) -> None:
    done, _ = interrupted
    assert done.returncode == 143, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    [line] = lines
    assert line == (f"jetstream-assets: interrupted by SIGTERM during {TAB_GROUPS}: its published results were "
                    "left as they were; 1 experiment not started")
    assert f"{ONBOARDING}: started" not in done.stdout


def test_sigterm_starts_no_further_experiment_and_leaves_no_run_started(interrupted) -> None:
    _, dagster_home = interrupted
    [run] = analysis_runs(dagster_home)  # the second experiment never got a run
    assert run.tags["dagster/partition"] == TAB_GROUPS
    assert run.status == dg.DagsterRunStatus.FAILURE
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert not [r for r in instance.get_runs() if r.status in UNFINISHED]


def test_a_killed_run_is_marked_failed_and_logged_by_the_next_start(tmp_path: Path) -> None:
    home, dagster_home, env = _homes(tmp_path)
    command = start(["rerun", "--experiment-slug", TAB_GROUPS, "--date", RERUN_DATE], env)
    try:
        killed = wait_for_a_running_step(dagster_home, command)
    finally:
        command.kill()  # SIGKILL: nothing of the process runs after it
        command.communicate()
    [left] = analysis_runs(dagster_home)
    assert left.status == dg.DagsterRunStatus.STARTED  # what a kill -9 leaves behind

    after = subprocess.run([CLI, "run", "--date", QUICK_DATE, "--experiment-slug", ONBOARDING],
                           env=env, capture_output=True, text=True, timeout=300)

    assert after.returncode == 0, after.stdout + after.stderr
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
    [row] = log_rows(home, TAB_GROUPS).to_dict("records")
    assert row["log_level"] == "ERROR"
    assert killed.run_id in row["message"] and "is gone (killed or crashed)" in row["message"]


# --- files and settings the CLI cannot use: one line, exit 1 ------------------------------------


@pytest.fixture(scope="module")
def usable(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    home, _, env = _homes(tmp_path_factory.mktemp("usable"))
    return home, env


def _fails_cleanly(env: dict[str, str], *, names: str, args: tuple[str, ...] = ()) -> None:
    command = [CLI, *args, "run", "--date", QUICK_DATE]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    if "--verbose" in args:
        assert "Traceback" in done.stderr
        return
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    [line] = lines
    assert line.startswith("jetstream-assets: ") and names in line
    assert "Traceback" not in done.stdout + done.stderr


def test_a_truncated_warehouse_file_is_named_in_one_line(usable, tmp_path: Path) -> None:
    home, env = usable
    truncated = tmp_path / "home"
    truncated.mkdir()
    (truncated / "warehouse.duckdb").write_bytes((home / "warehouse.duckdb").read_bytes()[:5000])
    env = env | {"JETSTREAM_HOME": str(truncated), "DAGSTER_HOME": str(new_dagster_home(tmp_path / "dh"))}
    _fails_cleanly(env, names=str(truncated / "warehouse.duckdb"))
    _fails_cleanly(env, names=str(truncated / "warehouse.duckdb"), args=("--verbose",))


def test_a_malformed_service_account_key_names_the_setting(usable, tmp_path: Path) -> None:
    _, env = usable
    key = base64.b64encode(json.dumps({"type": "service_account", "project_id": "p"}).encode()).decode()
    env = env | {"JETSTREAM_ENGINE": "bigquery", "JETSTREAM_GCP_CREDENTIALS": key,
                 "DAGSTER_HOME": str(new_dagster_home(tmp_path / "dh"))}
    _fails_cleanly(env, names="JETSTREAM_GCP_CREDENTIALS")


@pytest.mark.parametrize("path", ["no-such-folder", "a-file.toml"])
def test_an_unreadable_metric_hub_path_names_the_setting(usable, tmp_path: Path, path: str) -> None:
    _, env = usable
    (tmp_path / "a-file.toml").write_text("[metrics]\n")
    hub = tmp_path / path
    env = env | {"METRIC_HUB_PATH": str(hub), "DAGSTER_HOME": str(new_dagster_home(tmp_path / "dh"))}
    _fails_cleanly(env, names=f"METRIC_HUB_PATH={hub}")


# --- the run-failure sensor watches every job of an experiment partition ------------------------


def test_run_failure_sensor_logs_a_failed_ui_backfill_run_of_the_implicit_asset_job(tmp_path: Path) -> None:
    """Driven through Dagster's own run-status evaluation (cursor, job matching), not by calling the
    sensor function on a hand-made context."""
    home, _, _ = _homes(tmp_path)
    resources = analysis_resources(home)
    defs = dg.Definitions(assets=ANALYSIS_ASSETS, sensors=[analysis_run_failure_sensor], resources=resources)
    asset_job = defs.resolve_implicit_global_asset_job_def()
    assert asset_job.name == "__ASSET_JOB"
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(experiments_partitions.name, [TAB_GROUPS])

        def tick(cursor: str | None):
            context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources, definitions=defs)
            return analysis_run_failure_sensor.evaluate_tick(context).cursor

        cursor = tick(None)  # the first tick only sets the cursor
        warehouse = home / "warehouse.duckdb"
        intact = warehouse.with_name("intact.duckdb")
        warehouse.rename(intact)
        warehouse.write_bytes(b"not a database" * 100)  # the run fails before the analysis can log
        try:
            failed = asset_job.execute_in_process(
                instance=instance, partition_key=TAB_GROUPS, tags=daily_tags(dt.date.fromisoformat(QUICK_DATE)),
                raise_on_error=False,
            )
        finally:
            intact.replace(warehouse)
        assert not failed.success
        assert log_rows(home, TAB_GROUPS).empty

        tick(cursor)

    [row] = log_rows(home, TAB_GROUPS).to_dict("records")
    assert failed.run_id in row["message"] and "__ASSET_JOB" in row["message"]
