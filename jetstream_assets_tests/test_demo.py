"""The bundled demo end to end: `jetstream-assets demo` as a user runs it, at full size (~50,000 clients)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from mozilla_nimbus_schemas.jetstream import AnalysisErrors, Metadata, Statistics

from jetstream_assets.sample.designs import DEMO_DESIGNS

PLANTED_MAIN_METRIC = {
    design.slug: (branch.slug, branch.effects)
    for design in DEMO_DESIGNS
    for branch in design.branches
    if branch.effects
}


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    home = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JETSTREAM_", "DAGSTER_", "EXPERIMENTER_", "METRIC_HUB"))}
    done = subprocess.run(
        [sys.executable, "-m", "jetstream_assets.cli", "demo", "--home", str(home)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return home, done


def test_demo_recovers_the_planted_effect_on_the_main_metric(demo_home):
    home, _ = demo_home
    planted = dict(DEMO_DESIGNS[[d.slug for d in DEMO_DESIGNS].index("search-shortcuts-complete")].branches[1].effects)
    assert planted["active_hours_sum"] == pytest.approx(1.10)
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        point, lower, upper = con.execute(
            "SELECT point, lower, upper FROM mozanalysis.statistics_search_shortcuts_complete_overall "
            "WHERE metric = 'active_hours' AND statistic = 'mean' AND comparison = 'relative_uplift' "
            "AND branch = 'treatment' AND comparison_to_branch = 'control' AND segment = 'all' "
            "AND analysis_basis = 'enrollments'"
        ).fetchone()
    assert lower < planted["active_hours_sum"] - 1 < upper
    assert lower > 0, "the planted +10% must be detected, not just covered"


def test_demo_prints_experiments_tables_and_files(demo_home):
    _, done = demo_home
    out = done.stdout
    for slug in ("search-shortcuts-complete", "tab-groups-live", "onboarding-custom-metrics"):
        assert f"analysed  {slug}" in out
    assert "skipped   brand-new-experiment" in out
    assert "mozanalysis.statistics_tab_groups_live_weekly" in out
    assert "statistics/statistics_search_shortcuts_complete_overall.json" in out


def test_every_exported_file_validates(demo_home):
    home, _ = demo_home
    files = sorted((home / "bucket").rglob("*.json"))
    kinds = {"statistics": Statistics, "metadata": Metadata, "errors": AnalysisErrors}
    assert {f.parent.name for f in files} == set(kinds)
    for f in files:
        kinds[f.parent.name].model_validate(json.loads(f.read_text()))


def test_three_branch_experiment_compares_every_ordered_pair(demo_home):
    home, _ = demo_home
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        pairs = con.execute(
            "SELECT DISTINCT branch, comparison_to_branch FROM mozanalysis.statistics_tab_groups_live_weekly "
            "WHERE comparison = 'difference' AND statistic = 'mean'"
        ).fetchall()
    branches = ["control", "treatment-a", "treatment-b"]
    assert sorted(pairs) == sorted((a, b) for a in branches for b in branches if a != b)
