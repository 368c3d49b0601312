"""The code location: it loads, and its assets, jobs, schedules and sensors are the contract's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from jetstream_assets.dagster_defs.engine_kinds import bucket_kinds, warehouse_kinds
from jetstream_assets.definitions import defs

REPO_ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = "jetstream_experiments"

# asset key -> (group, partitioned by experiment)
EXPECTED_ASSETS = {
    "monitoring/experimenter_experiments_v1": ("monitoring", False),
    "monitoring/logs": ("monitoring", False),
    "mozanalysis/enrollments": ("experiment_analysis", True),
    "mozanalysis/metrics": ("experiment_analysis", True),
    "mozanalysis/statistics": ("experiment_analysis", True),
    "bucket/statistics_json": ("experimenter_exports", True),
    "bucket/metadata_json": ("experimenter_exports", True),
    "bucket/errors_json": ("experimenter_exports", True),
    "bucket/results_html": ("experimenter_exports", True),
}


def test_definitions_are_loadable() -> None:
    dg.Definitions.validate_loadable(defs)


@pytest.mark.parametrize("key", sorted(EXPECTED_ASSETS))
def test_asset_key_group_kinds_and_partitions(key: str) -> None:
    node = defs.resolve_asset_graph().get(dg.AssetKey.from_user_string(key))
    group, partitioned = EXPECTED_ASSETS[key]
    assert node.group_name == group
    storage = bucket_kinds() if key.startswith("bucket/") else warehouse_kinds()
    assert storage <= set(node.kinds), f"{key} kinds {node.kinds} lack the storage kind {storage}"
    if partitioned:
        assert isinstance(node.partitions_def, dg.DynamicPartitionsDefinition)
        assert node.partitions_def.name == PARTITIONS
    else:
        assert node.partitions_def is None


def test_every_asset_is_executable_so_any_selection_can_be_backfilled() -> None:
    graph = defs.resolve_asset_graph()
    assert all(node.is_executable and node.is_materializable for node in graph.asset_nodes)
    # the errors export runs last in an analysis run: after both other exports
    assert graph.get(dg.AssetKey(["bucket", "errors_json"])).parent_keys == {
        dg.AssetKey(["bucket", "statistics_json"]), dg.AssetKey(["bucket", "metadata_json"])}


# check -> (asset, blocking); see checks.py for why
EXPECTED_CHECKS = {
    "sample_ratio": ("mozanalysis/enrollments", False),
    "enrollment_volume": ("mozanalysis/enrollments", False),
    "unenrollment_rate": ("mozanalysis/enrollments", False),
    "statistics_completeness": ("mozanalysis/statistics", True),
    "analysis_errors": ("mozanalysis/statistics", False),
    "export_contract": ("bucket/statistics_json", True),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_CHECKS))
def test_per_experiment_checks_are_partitioned_and_in_the_analysis_job(name: str) -> None:
    asset, blocking = EXPECTED_CHECKS[name]
    key = dg.AssetCheckKey(dg.AssetKey.from_user_string(asset), name)
    spec = defs.resolve_asset_graph().get(key)
    # `partitions_def` on a check is a Dagster 1.13 preview: this pins that it is kept on the spec
    assert spec.partitions_def is not None and spec.partitions_def.name == PARTITIONS
    assert spec.blocking == blocking
    assert key in defs.resolve_job_def("experiment_analysis").asset_layer.asset_graph.asset_check_keys


def test_loading_the_definitions_prints_no_preview_warning() -> None:
    code = ("import warnings, dagster as dg; warnings.simplefilter('error', dg.PreviewWarning); "
            "import jetstream_assets.definitions")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_assets_have_an_owner_and_tables_their_dagster_table_metadata() -> None:
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    assert all(s.owners == ["team:experimentation-platform"] for s in specs.values())
    for key in ("mozanalysis/enrollments", "mozanalysis/metrics", "mozanalysis/statistics"):
        assert specs[key].metadata["dagster/table_name"].value.startswith("mozanalysis.")
    schema = specs["mozanalysis/statistics"].metadata["dagster/column_schema"].schema
    assert [c.name for c in schema.columns][:3] == ["metric", "statistic", "parameter"]


def test_analysis_dependencies_follow_jetstream_order() -> None:
    graph = defs.resolve_asset_graph()
    parents = {k: graph.get(dg.AssetKey.from_user_string(k)).parent_keys for k in EXPECTED_ASSETS}
    assert parents["mozanalysis/metrics"] == {dg.AssetKey(["mozanalysis", "enrollments"])}
    assert parents["mozanalysis/statistics"] == {dg.AssetKey(["mozanalysis", "metrics"])}
    assert parents["bucket/statistics_json"] == {dg.AssetKey(["mozanalysis", "statistics"])}
    assert parents["bucket/metadata_json"] == {dg.AssetKey(["mozanalysis", "enrollments"])}


@pytest.mark.parametrize(
    "job, keys",
    [
        ("experiment_analysis", {"mozanalysis/enrollments", "mozanalysis/metrics", "mozanalysis/statistics",
                                 "bucket/statistics_json", "bucket/metadata_json", "bucket/errors_json",
                                 "bucket/results_html"}),
        ("experimenter_snapshot", {"monitoring/experimenter_experiments_v1"}),
        ("monitoring_daily", {"monitoring/logs"}),
    ],
)
def test_jobs_select_their_assets(job: str, keys: set[str]) -> None:
    job_def = defs.resolve_job_def(job)
    selected = {k.to_user_string() for k in job_def.asset_layer.executable_asset_keys}
    assert selected == keys


@pytest.mark.parametrize(
    "name, cron, job",
    [
        ("experimenter_snapshot_every_10_minutes", "*/10 * * * *", "experimenter_snapshot"),
        ("daily_analysis", "0 4 * * *", "experiment_analysis"),
        ("monitoring_daily", "0 3 * * *", "monitoring_daily"),
    ],
)
def test_schedules_run_by_default_in_utc(name: str, cron: str, job: str) -> None:
    schedule = defs.resolve_schedule_def(name)
    assert schedule.cron_schedule == cron
    assert schedule.execution_timezone == "UTC"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.job_name == job


def test_discovery_sensor_resolves_and_runs_by_default() -> None:
    sensor = defs.resolve_sensor_def("experiment_discovery_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.job_name == "experiment_analysis"
    assert {"warehouse"} <= set(sensor.required_resource_keys)


def test_every_required_resource_is_bound() -> None:
    resources = set(defs.resources or {})
    assert {"warehouse", "bucket", "experimenter", "metric_hub"} <= resources


def test_dagster_cli_validates_the_workspace(tmp_path: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").touch()
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run(
        [str(dagster), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr
