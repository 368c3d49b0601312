"""Fixtures and Dagster helpers around the small sample (registered through conftest's `pytest_plugins`)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from jetstream_assets.dagster_defs.analysis_assets import enrollments, metrics, statistics
from jetstream_assets.dagster_defs.checks import ANALYSIS_CHECKS
from jetstream_assets.dagster_defs.export_assets import errors_json, metadata_json, statistics_json
from jetstream_assets.dagster_defs.monitoring_assets import experimenter_experiments_v1
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.results_page_asset import results_html
from jetstream_assets.dagster_defs.run_tags import daily_tags, rerun_tags
from jetstream_assets_tests.small_sample import SmallSample, write_small_sample

CLI = str(Path(sys.executable).with_name("jetstream-assets"))  # the console script of this venv
# the selection of the `experiment_analysis` job
ANALYSIS_ASSETS = [enrollments, metrics, statistics, statistics_json, metadata_json, errors_json, results_html]


@pytest.fixture
def small_sample(tmp_path: Path) -> SmallSample:
    """The small demo sample (telemetry + Experimenter JSON) in a fresh home under tmp_path."""
    return write_small_sample(tmp_path / "home")


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """An ephemeral Dagster instance for one test."""
    with dg.instance_for_test() as inst:
        yield inst


def load_snapshot(instance: dg.DagsterInstance, resources: dict[str, Any]) -> dg.ExecuteInProcessResult:
    """Materialize monitoring.experimenter_experiments_v1 from the resources' Experimenter source."""
    return dg.materialize([experimenter_experiments_v1], resources=resources, instance=instance,
                          raise_on_error=False)


def analyse(
    instance: dg.DagsterInstance, resources: dict[str, Any], slug: str, date: dt.date, *, rerun: bool = False
) -> dg.ExecuteInProcessResult:
    """One run of the analysis job's assets and checks for the partition `slug` (registered if new)."""
    if not instance.has_dynamic_partition(experiments_partitions.name, slug):
        instance.add_dynamic_partitions(experiments_partitions.name, [slug])
    return dg.materialize(
        [*ANALYSIS_ASSETS, *ANALYSIS_CHECKS],
        partition_key=slug,
        tags=rerun_tags(date) if rerun else daily_tags(date),
        resources=resources,
        instance=instance,
    )


def materializations(result: dg.ExecuteInProcessResult) -> list[dg.AssetMaterialization]:
    return [e.materialization for e in result.get_asset_materialization_events()]


class BackgroundCommand:
    """A `jetstream-assets` process started now and awaited later, so slow commands overlap with
    in-process tests (and with each other) on a 2-core machine."""

    def __init__(self, args: list[str], env: dict[str, str]):
        self.args = args
        self._process = subprocess.Popen(
            [CLI, *args],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self._done: subprocess.CompletedProcess | None = None

    def result(self, timeout: float = 300) -> subprocess.CompletedProcess:
        if self._done is None:
            stdout, stderr = self._process.communicate(timeout=timeout)
            self._done = subprocess.CompletedProcess(self.args, self._process.returncode, stdout, stderr)
        return self._done

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.communicate()


def cli_env(home: Path, dagster_home: Path, experimenter_url: str, **extra: str) -> dict[str, str]:
    """The user's environment with only this test's settings (none inherited from the developer's shell)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JETSTREAM_", "DAGSTER_")) and k not in ("EXPERIMENTER_URL", "METRIC_HUB_PATH")}
    return env | {"JETSTREAM_HOME": str(home), "DAGSTER_HOME": str(dagster_home),
                  "EXPERIMENTER_URL": experimenter_url, **extra}


def new_dagster_home(path: Path) -> Path:
    """An empty DAGSTER_HOME (telemetry off: nothing leaves the test machine)."""
    path.mkdir(parents=True)
    (path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return path
