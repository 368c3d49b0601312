"""A backfill from the UI, run by the backfill daemon's own iteration (`execute_backfill_iteration`) on
the code location loaded as the daemon loads it, with runs launched in this process: over every
partition, where one experiment is skipped, it ends COMPLETED_SUCCESS.

The daemon needs every requested (asset, partition) materialized: a skip that materialized nothing
would leave its partition "without status" and end the backfill COMPLETED_FAILED, as the dated
backfill below shows. Private Dagster imports (no public API drives the daemon): pinned to 1.13.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.backfill import execute_backfill_iteration

from jetstream_assets.dagster_defs.jobs import ANALYSIS_KEYS
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets import definitions
from jetstream_assets.dagster_defs.run_tags import daily_tags
from jetstream_assets_tests.cheap_metric_hub import write_cheap_metric_hub
from jetstream_assets_tests.fixtures_sample import load_snapshot
from jetstream_assets_tests.small_sample import analysis_resources, small_demo_designs, write_small_sample

REPO = Path(__file__).resolve().parents[1]
COMPLETE = "search-shortcuts-complete"  # ended 2026-10-12: the date-less rerun stops at its end date
NOT_ENROLLED = "brand-new-experiment"  # enrollment not complete: skipped
# runs launched synchronously in this process, as soon as the daemon submits them
INSTANCE = {
    "run_launcher": {"module": "dagster._core.launcher.sync_in_memory_run_launcher", "class": "SyncInMemoryRunLauncher"},
    "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
}
# Dagster's default executor starts a process per step; in process keeps the test short
RUN_CONFIG = {"execution": {"config": {"in_process": {}}}} if definitions.defs.executor is None else None


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A workspace context like the daemon's, on an instance where the sample's snapshot is loaded."""
    sample = write_small_sample(tmp_path / "home", [d for d in small_demo_designs() if d.slug in (COMPLETE, NOT_ENROLLED)])
    hub = write_cheap_metric_hub(tmp_path / "metric-hub")
    for name, value in {"JETSTREAM_HOME": sample.home, "EXPERIMENTER_URL": sample.experimenter_json,
                        "METRIC_HUB_PATH": hub}.items():
        monkeypatch.setenv(name, str(value))
    # the code location below imports the definitions module, which binds its settings when imported
    importlib.reload(definitions)
    with dg.instance_for_test(overrides=INSTANCE) as instance:
        assert load_snapshot(instance, analysis_resources(sample.home, metric_hub_path=str(hub))).success
        instance.add_dynamic_partitions(experiments_partitions.name, [COMPLETE, NOT_ENROLLED])
        origin = InProcessCodeLocationOrigin(
            LoadableTargetOrigin(module_name="jetstream_assets.definitions", working_directory=str(REPO)),
            location_name="jetstream_assets",
        )
        with create_test_daemon_workspace_context(InProcessWorkspaceLoadTarget(origin), instance) as context:
            yield context
    monkeypatch.undo()
    importlib.reload(definitions)


def backfill(context, partitions: list[str], tags: dict[str, str]) -> BulkActionStatus:
    """Submit a backfill of every per-experiment asset as the UI does, and iterate the daemon until it ends."""
    instance = context.instance
    instance.add_backfill(PartitionBackfill.from_asset_partitions(
        backfill_id="ui-backfill", asset_graph=definitions.defs.resolve_asset_graph(), partition_names=partitions,
        asset_selection=ANALYSIS_KEYS, backfill_timestamp=time.time(), tags=tags, dynamic_partitions_store=instance,
        all_partitions=False, title=None, description=None, run_config=RUN_CONFIG,
    ))
    for _ in range(20):
        list(execute_backfill_iteration(context, logging.getLogger("backfill")))
        status = instance.get_backfill("ui-backfill").status
        if status != BulkActionStatus.REQUESTED:
            return status
    return status


def test_a_backfill_over_every_partition_with_a_skipped_experiment_completes_successfully(daemon):
    assert backfill(daemon, [COMPLETE, NOT_ENROLLED], {}) == BulkActionStatus.COMPLETED_SUCCESS
    runs = daemon.instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": "ui-backfill"}))
    assert sorted(r.tags["dagster/partition"] for r in runs) == [NOT_ENROLLED, COMPLETE]
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)


def test_a_skip_that_materializes_nothing_would_fail_the_backfill(daemon):
    # a dated run records the skip as an observation only: the daemon then marks the partition failed
    assert backfill(daemon, [NOT_ENROLLED], daily_tags(dt.date(2026, 10, 12))) == BulkActionStatus.COMPLETED_FAILED

