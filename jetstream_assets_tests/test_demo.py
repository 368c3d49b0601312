"""The bundled demo end to end: `jetstream-assets demo` as a user runs it, at full size (~50,000 clients)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from mozilla_nimbus_schemas.jetstream import AnalysisErrors, Metadata, Statistics

from jetstream_assets.sample.designs import DEMO_BROKEN_METRIC, DEMO_BROKEN_METRIC_SLUG, DEMO_DESIGNS, DEMO_SRM_SLUG

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


def check_evaluations(home: Path) -> dict[str, dict[str, dg.AssetCheckEvaluation]]:
    """experiment -> check name -> evaluation, read back from the demo's Dagster instance."""
    found: dict[str, dict[str, dg.AssetCheckEvaluation]] = {}
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        for run in instance.get_runs(dg.RunsFilter(job_name="experiment_analysis")):
            events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
            found[run.tags["dagster/partition"]] = {
                e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data for e in events
            }
    return found


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
    for slug in ("search-shortcuts-complete", "tab-groups-live", "onboarding-custom-metrics", DEMO_SRM_SLUG,
                 DEMO_BROKEN_METRIC_SLUG):  # a broken metric costs only that metric
        assert f"analysed  {slug}" in out
    assert "skipped   brand-new-experiment" in out
    assert "FAILED" in out  # the planted check failures are printed
    assert "mozanalysis.statistics_tab_groups_live_weekly" in out
    assert "statistics/statistics_search_shortcuts_complete_overall.json" in out


def test_demo_talks_while_it_works(demo_home):
    """A line as each experiment starts and ends (with seconds), the planted failures announced before
    they run, the check table under a header, and each error on stderr on one line."""
    _, done = demo_home
    out = done.stdout
    for slug in ("search-shortcuts-complete", "tab-groups-live", DEMO_SRM_SLUG, DEMO_BROKEN_METRIC_SLUG):
        assert re.search(rf"^\[\d/\d\] {slug}: started$", out, re.MULTILINE)
        assert re.search(rf"^\[\d/\d\] {slug}: analysed in \d+\.\d s$", out, re.MULTILINE)
    started = out.index(f"{DEMO_BROKEN_METRIC_SLUG}: started")
    announced = out.index(f"planted failure: metric {DEMO_BROKEN_METRIC}")
    assert started < announced < out.index(f"{DEMO_BROKEN_METRIC_SLUG}: analysed in")
    assert out.index(f"{DEMO_SRM_SLUG}: started") < out.index("planted failure: a 58/42 split")
    assert re.search(r"^  experiment +asset +check +result +severity +description$", out, re.MULTILINE)
    errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR - ")]
    assert errors and all(DEMO_BROKEN_METRIC in line for line in errors)
    # DuckDB's error comes with its candidate columns and the SQL on further lines: folded into one
    assert all("Binder Error" in line and "Candidate bindings" in line for line in errors)
    assert all(line.startswith(("WARNING - ", "ERROR - ")) for line in done.stderr.splitlines())


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


def test_sample_ratio_check_fails_only_for_the_planted_mismatch(demo_home):
    home, done = demo_home
    evaluations = check_evaluations(home)
    analysed = {"search-shortcuts-complete", "tab-groups-live", "onboarding-custom-metrics", DEMO_SRM_SLUG,
                DEMO_BROKEN_METRIC_SLUG}
    assert analysed <= set(evaluations)
    for slug in analysed:
        check = evaluations[slug]["sample_ratio"]
        assert check.passed == (slug != DEMO_SRM_SLUG), (slug, check.description)
    srm = evaluations[DEMO_SRM_SLUG]["sample_ratio"]
    assert srm.severity == dg.AssetCheckSeverity.ERROR
    assert srm.metadata["observed_share"].value == {"control": 0.58, "treatment": 0.42}
    srm_line = next(line for line in done.stdout.splitlines() if "sample_ratio" in line and "FAILED" in line)
    assert "58.0%" in srm_line and "chi-square p" in srm_line


def test_broken_metric_is_logged_fails_completeness_and_the_others_have_statistics(demo_home):
    home, _ = demo_home
    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
        errors = con.execute(
            "SELECT metric, message FROM monitoring.logs WHERE experiment = ? AND log_level = 'ERROR'",
            [DEMO_BROKEN_METRIC_SLUG],
        ).fetchall()
        metrics = {m for (m,) in con.execute(
            "SELECT DISTINCT metric FROM mozanalysis.statistics_sidebar_broken_metric_week_1").fetchall()}
    assert errors and all(metric == DEMO_BROKEN_METRIC and DEMO_BROKEN_METRIC in message for metric, message in errors)
    assert {"active_hours", "uri_count", "search_count", "days_of_use", "searched"} <= metrics
    assert DEMO_BROKEN_METRIC not in metrics
    checks = check_evaluations(home)[DEMO_BROKEN_METRIC_SLUG]
    assert not checks["statistics_completeness"].passed
    assert checks["statistics_completeness"].metadata["incomplete_metrics"].value == [f"{DEMO_BROKEN_METRIC}/mean"]
    assert not checks["analysis_errors"].passed
    published = list((home / "bucket" / "statistics").glob("statistics_sidebar_broken_metric_*.json"))
    assert published and all(
        DEMO_BROKEN_METRIC not in {row["metric"] for row in json.loads(p.read_text())} for p in published
    )
    for slug in ("search-shortcuts-complete", "tab-groups-live", "onboarding-custom-metrics", DEMO_SRM_SLUG):
        assert check_evaluations(home)[slug]["statistics_completeness"].passed, slug
