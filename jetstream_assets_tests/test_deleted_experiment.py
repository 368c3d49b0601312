"""A partition whose experiment was deleted from Experimenter (no longer in the snapshot): a backfill over
it fails with an error naming the slug, as the UI shows it, and a monitoring.logs row."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from jetstream_assets_tests.fixtures_sample import ANALYSIS_ASSETS, load_snapshot
from jetstream_assets_tests.small_sample import analysis_resources, like_tab_groups, log_rows, write_small_sample

KEPT, DELETED = "kept-experiment", "deleted-experiment"


def test_backfill_of_a_deleted_experiment_fails_naming_the_slug(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    sample = write_small_sample(tmp_path / "home",
                                [like_tab_groups(KEPT, clients=50), like_tab_groups(DELETED, clients=50)])
    resources = analysis_resources(sample.home)
    assert load_snapshot(instance, resources).success
    instance.add_dynamic_partitions("jetstream_experiments", [KEPT, DELETED])
    # the experiment is deleted in Experimenter; the next snapshot no longer has it, its partition stays
    sample.experimenter_json.write_text(json.dumps([e for e in sample.payload if e["slug"] != DELETED]))
    assert load_snapshot(instance, resources).success

    result = dg.materialize(ANALYSIS_ASSETS, partition_key=DELETED, resources=resources, instance=instance,
                            tags={"dagster/backfill": "test-backfill"}, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    shown = failure.event_specific_data.error.message  # the step's error, as the run page shows it
    assert f"experiment '{DELETED}' is not in monitoring.experimenter_experiments_v1" in shown
    assert "deleted from Experimenter" in shown
    errors = log_rows(sample.home, DELETED).query("log_level == 'ERROR'")
    assert len(errors) == 1 and DELETED in errors["message"].iloc[0]
