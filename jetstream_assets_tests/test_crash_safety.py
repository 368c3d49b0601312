"""Nothing published is lost or half-written (CONTRACT §6), tried as an operator would: a real
`jetstream-assets rerun` is killed with SIGKILL while it builds metrics, while it builds statistics and
while it exports the bucket files. The kill points are found by watching the warehouse (a staging table of
that step appears) and the bucket (an export starts), not by timing. After each kill every table, view and
file published before is still there with the same rows and bytes; the daily run that follows publishes
exactly what a clean run does.

One home serves the whole story (a clean rerun gives the reference, then each kill), because every later
command must reproduce that reference: the experiment's data never changes in between.
"""

from __future__ import annotations

import json

import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from jetstream_assets.core.naming import table_slug
from jetstream_assets.engines.duckdb_connections import SharedFileConnections
from jetstream_assets.engines.publication import STAGING_PREFIX
from jetstream_assets_tests.fixtures_sample import CLI, cli_env, new_dagster_home
from jetstream_assets_tests.small_sample import (
    RESULTS_DATASET,
    TAB_GROUPS,
    relations,
    small_demo_designs,
    table_contents,
    write_small_sample,
)

DATE = "2026-10-11"  # every window of tab-groups-live is ready: pre-enrollment week, weeks 1 and 2
SLUG = table_slug(TAB_GROUPS)
_RUN_TIME = re.compile(rb'(?<="analysis_start_time": )"[^"]*"')
KILL_POINT_TIMEOUT_SECONDS = 600.0  # the machine may be busy; the points are reached in seconds otherwise


@dataclass
class Home:
    root: Path
    env: dict[str, str]

    @property
    def warehouse(self) -> Path:
        return self.root / "home" / "warehouse.duckdb"

    @property
    def bucket(self) -> Path:
        return self.root / "home" / "bucket"

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([CLI, *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([CLI, *args], env=self.env, capture_output=True, text=True, timeout=900)

    def published(self) -> dict[str, pd.DataFrame]:
        """Every table and view of the experiment (not staging leftovers) with all its rows, sorted."""
        names = [n for n in relations(self.root / "home") if SLUG in n and not n.startswith(STAGING_PREFIX)]
        return {n: table_contents(self.root / "home", n) for n in names}

    def files(self) -> dict[str, bytes]:
        """Every bucket file's bytes; the metadata's `analysis_start_time` (the time of the run that wrote it)
        is the only part that differs from run to run."""
        return {str(p.relative_to(self.bucket)): _RUN_TIME.sub(b"<run time>", p.read_bytes())
                for p in sorted(self.bucket.rglob("*")) if p.is_file()}

    def staging_tables(self) -> list[str]:
        """Staging tables of the experiment, read as another run would: the command lets this reader in
        between two of its operations."""
        connections = SharedFileConnections(str(self.warehouse), {"access_mode": "READ_ONLY"}, lock_wait_seconds=600)
        with connections.connection() as con:
            rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = ?",
                               [RESULTS_DATASET]).fetchall()
        return [n for (n,) in rows if n.startswith(STAGING_PREFIX) and SLUG in n]


def kill_when(process: subprocess.Popen, reached: Callable[[], bool], what: str, every: float) -> None:
    deadline = time.monotonic() + KILL_POINT_TIMEOUT_SECONDS
    while not reached():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the command ended before {what}: {out[-2000:]}{err[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{what} not reached within {KILL_POINT_TIMEOUT_SECONDS} s")
        time.sleep(every)
    process.kill()  # SIGKILL: no handler, no cleanup runs
    process.communicate()


def building(home: Home, table_kind: str) -> Callable[[], bool]:
    """A staging table of that kind exists: the step is between its first build and its swap."""
    return lambda: any(n.split("__", 1)[1].startswith(table_kind) for n in home.staging_tables())


def exporting(home: Home) -> Callable[[], bool]:
    """The statistics export started: a temporary file is being written or a first file was replaced."""
    folder = home.bucket / "statistics"
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}

    def started() -> bool:
        now = {p.name: p.stat().st_mtime_ns for p in folder.iterdir() if p.exists()}
        return any(n.endswith(".tmp") for n in now) or any(before.get(n) != t for n, t in now.items()
                                                           if not n.endswith(".tmp"))
    return started


def assert_same_tables(home: Home, reference: dict[str, pd.DataFrame]) -> None:
    published = home.published()
    assert sorted(published) == sorted(reference), "a table or view of the experiment is missing or extra"
    for name, rows in reference.items():
        pd.testing.assert_frame_equal(published[name], rows, check_exact=True, obj=name)


ERRORS_FILE = f"errors/errors_{SLUG}.json"


def assert_same_files(home: Home, reference: dict[str, bytes]) -> None:
    """Every file as the clean run wrote it, but the errors export, which reports the killed runs (each next
    start marks a killed run failed with an ERROR row) and nothing else, and the results page drawn from it."""
    files = home.files()
    temporary = [n for n in files if n not in reference]
    assert not [n for n in temporary if n.endswith(".json")], "a temporary file looks like a published one"
    assert json.loads(reference[ERRORS_FILE]) == []
    rows = json.loads(files[ERRORS_FILE])
    assert all(r["log_level"] == "ERROR" and " failed" in r["message"] for r in rows), rows
    exact = [n for n in reference if n != ERRORS_FILE and not n.startswith("results/")]
    assert {n: files.get(n) for n in exact} == {n: reference[n] for n in exact}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    root = tmp_path_factory.mktemp("crash")
    designs = [d for d in small_demo_designs(200) if d.slug == TAB_GROUPS]
    sample = write_small_sample(root / "home", designs)
    env = cli_env(sample.home, new_dagster_home(root / "dagster_home"), str(sample.experimenter_json))
    return Home(root, env)


def test_kill_at_any_step_leaves_the_published_state_and_the_next_run_completes_it(home: Home) -> None:
    clean = home.run("rerun", "--experiment-slug", TAB_GROUPS, "--date", DATE)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    reference_tables, reference_files = home.published(), home.files()
    assert f"statistics_{SLUG}_week_2" in reference_tables and f"statistics/statistics_{SLUG}_weekly.json" in reference_files

    rerun = ("rerun", "--experiment-slug", TAB_GROUPS, "--date", DATE)
    # opening the warehouse to look costs the command time: look every 0.1 s; the bucket is cheap to watch
    for what, kill_point, every in [("metrics are being built", lambda: building(home, SLUG), 0.1),
                                    ("statistics are being built", lambda: building(home, "statistics_"), 0.1),
                                    ("the bucket files are being exported", lambda: exporting(home), 0.001)]:
        kill_when(home.start(*rerun), kill_point(), what, every)
        assert_same_tables(home, reference_tables)
        assert_same_files(home, reference_files)

    daily = home.run("run", "--date", DATE)
    assert daily.returncode == 0, daily.stdout + daily.stderr
    assert_same_tables(home, reference_tables)
    assert_same_files(home, reference_files)
    assert sorted(home.files()) == sorted(reference_files)  # a killed writer's temporary file is gone too
    assert json.loads(home.files()[ERRORS_FILE]), "the killed runs are reported in the errors export"
    assert home.staging_tables() == []  # the killed runs' staging tables were dropped by the next steps
