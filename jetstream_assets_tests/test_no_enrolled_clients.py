"""An experiment nobody enrolled in is skipped (Jetstream's skip style), not a crash of the statistics step:
one WARNING row "no enrolled clients", nothing published but the (empty) enrollments cache, the run succeeds."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from jetstream_assets.core.naming import table_slug
from jetstream_assets_tests.fixtures_sample import analyse, load_snapshot
from jetstream_assets_tests.small_sample import (
    analysis_resources,
    like_tab_groups,
    log_rows,
    relations,
    write_small_sample,
)

NOBODY = "nobody-enrolled"


def test_experiment_nobody_enrolled_in_is_skipped_with_a_warning(tmp_path, instance: dg.DagsterInstance) -> None:
    sample = write_small_sample(tmp_path / "home", [like_tab_groups(NOBODY, clients=0)])
    resources = analysis_resources(sample.home)
    assert load_snapshot(instance, resources).success

    result = analyse(instance, resources, NOBODY, dt.date(2026, 10, 11), rerun=True)

    assert result.success
    assert not [m for m in result.get_asset_materialization_events() if m.asset_key.path[0] == "mozanalysis"]
    logs = log_rows(sample.home, NOBODY)
    skips = logs[logs["message"].str.contains("no enrolled clients")]
    assert list(skips["log_level"]) == ["WARNING"]
    assert list(skips["exception_type"]) == ["NoEnrolledClientsException"]
    assert logs[logs["log_level"] == "ERROR"].empty
    assert [n for n in relations(sample.home) if table_slug(NOBODY) in n] == [f"enrollments_{table_slug(NOBODY)}"]
    assert not list(sample.bucket.glob("statistics/*.json"))
