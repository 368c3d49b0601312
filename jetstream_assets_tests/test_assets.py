"""The asset graph on a small sample: the snapshot from a real HTTP server, one experiment's analysis
as daily runs and as a rerun, the contract's table names, statistics and bucket files, idempotence
and convergence of daily runs and reruns."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import dagster as dg
import pandas as pd
import pytest
from mozilla_nimbus_schemas.jetstream import AnalysisErrors, Metadata, Statistics

from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets_tests.fixtures_sample import analyse, load_snapshot, materializations
from jetstream_assets_tests.small_sample import (
    TAB_GROUPS,
    TAB_GROUPS_PREENROLLMENT_READY,
    TAB_GROUPS_WEEK_READY,
    SmallSample,
    analysis_resources,
    canonical_rows,
    query,
    relations,
    table_contents,
    write_small_sample,
)

SLUG_TABLE = "tab_groups_live"
BRANCHES = ("control", "treatment-a", "treatment-b")
LAST_DATE = TAB_GROUPS_WEEK_READY[-1]
STATISTICS_KEY_COLUMNS = ["metric", "statistic", "parameter", "branch", "comparison", "comparison_to_branch",
                          "segment", "analysis_basis"]


@dataclass
class Analysed:
    sample: SmallSample
    results: list[dg.ExecuteInProcessResult]


@dataclass(frozen=True)
class State:
    """Everything a run publishes: results tables/views and bucket files."""

    tables: dict[str, pd.DataFrame]
    files: dict[str, bytes]


def published_state(sample: SmallSample) -> State:
    tables = {name: table_contents(sample.home, name) for name in relations(sample.home)}
    files = {str(p.relative_to(sample.bucket)): p.read_bytes() for p in sorted(sample.bucket.rglob("*.json"))}
    return State(tables, files)


def without_start_time(metadata_file: bytes) -> dict:
    """Metadata minus `analysis_start_time`, which records when the run happened (as Jetstream's does)."""
    payload = json.loads(metadata_file)
    payload.pop("analysis_start_time")
    return payload


def assert_same_state(before: State, after: State) -> None:
    assert sorted(after.tables) == sorted(before.tables)
    for name, frame in before.tables.items():
        pd.testing.assert_frame_equal(after.tables[name], frame, obj=name)
    assert sorted(after.files) == sorted(before.files)
    for key, content in before.files.items():
        if key.startswith("metadata/"):
            assert without_start_time(after.files[key]) == without_start_time(content), key
        else:
            assert after.files[key] == content, key


@pytest.fixture(scope="module")
def rerun_analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysed:
    """tab-groups-live re-analysed up to its second weekly window, in its own home and instance."""
    sample = write_small_sample(tmp_path_factory.mktemp("rerun") / "home")
    resources = analysis_resources(sample.home)
    with dg.instance_for_test() as instance:
        assert load_snapshot(instance, resources).success
        result = analyse(instance, resources, TAB_GROUPS, LAST_DATE, rerun=True)
    return Analysed(sample, [result])


@pytest.fixture(scope="module")
def daily_analysis(tmp_path_factory: pytest.TempPathFactory) -> tuple[Analysed, State, State]:
    """Daily runs on each date tab-groups-live gets a new window, then the last date once more;
    returns the runs and the published state before and after the repeated run."""
    sample = write_small_sample(tmp_path_factory.mktemp("daily") / "home")
    resources = analysis_resources(sample.home)
    with dg.instance_for_test() as instance:
        assert load_snapshot(instance, resources).success
        results = [analyse(instance, resources, TAB_GROUPS, d)
                   for d in (TAB_GROUPS_PREENROLLMENT_READY, *TAB_GROUPS_WEEK_READY)]
        first = published_state(sample)
        results.append(analyse(instance, resources, TAB_GROUPS, LAST_DATE))
        again = published_state(sample)
    return Analysed(sample, results), first, again


def test_snapshot_asset_loads_experimenter_from_http(experimenter_server, small_sample: SmallSample,
                                                     instance: dg.DagsterInstance) -> None:
    experimenter_server.respond(small_sample.payload)
    resources = analysis_resources(small_sample.home, experimenter_url=experimenter_server.url)
    result = load_snapshot(instance, resources)
    assert result.success
    assert experimenter_server.requests >= 1
    [materialization] = materializations(result)
    assert materialization.metadata["dagster/row_count"].value == len(small_sample.payload)
    assert materialization.metadata["source"].value == experimenter_server.url
    rows = query(small_sample.home, "SELECT normandy_slug FROM monitoring.experimenter_experiments_v1")
    assert sorted(rows["normandy_slug"]) == sorted(small_sample.slugs)


def test_partitions_are_registered_on_the_instance(instance: dg.DagsterInstance) -> None:
    instance.add_dynamic_partitions(experiments_partitions.name, [TAB_GROUPS, "another-experiment"])
    assert set(instance.get_dynamic_partitions(experiments_partitions.name)) == {TAB_GROUPS, "another-experiment"}


def test_rerun_creates_the_contract_tables_and_views(rerun_analysis: Analysed) -> None:
    assert rerun_analysis.results[0].success
    found = relations(rerun_analysis.sample.home)
    expected_tables = {f"enrollments_{SLUG_TABLE}", f"statistics_{SLUG_TABLE}_preenrollment_week_1"}
    expected_views = {f"statistics_{SLUG_TABLE}_weekly", f"statistics_{SLUG_TABLE}_preenrollment_weekly"}
    for basis in ("enrollments", "exposures"):
        expected_tables |= {f"{SLUG_TABLE}_{basis}_week_1", f"{SLUG_TABLE}_{basis}_week_2",
                            f"{SLUG_TABLE}_{basis}_preenrollment_week_1"}
        expected_views |= {f"{SLUG_TABLE}_{basis}_weekly", f"{SLUG_TABLE}_{basis}_preenrollment_weekly"}
    for n in (1, 2):
        expected_tables.add(f"statistics_{SLUG_TABLE}_week_{n}")
    assert {t for t, kind in found.items() if kind == "BASE TABLE"} == expected_tables
    assert {t for t, kind in found.items() if kind == "VIEW"} == expected_views


def test_weekly_statistics_view_adds_window_index(rerun_analysis: Analysed) -> None:
    home = rerun_analysis.sample.home
    view = table_contents(home, f"statistics_{SLUG_TABLE}_weekly")
    assert set(view["window_index"]) == {1, 2}
    for n in (1, 2):
        window = table_contents(home, f"statistics_{SLUG_TABLE}_week_{n}")
        from_view = view[view["window_index"] == n].drop(columns="window_index")
        assert len(from_view) == len(window)
        pd.testing.assert_frame_equal(canonical_rows(from_view), window, check_dtype=False)


def test_every_materialization_reports_row_count_and_mode(rerun_analysis: Analysed,
                                                          daily_analysis: tuple[Analysed, State, State]) -> None:
    daily, _, _ = daily_analysis
    for analysed, mode in ((rerun_analysis, "rerun"), (daily, "daily")):
        for result in analysed.results:
            events = materializations(result)
            assert events, "a run with a ready window materializes something"
            for m in events:
                assert "dagster/row_count" in m.metadata, m.asset_key
                assert m.partition == TAB_GROUPS
                if "mode" in m.metadata:
                    assert m.metadata["mode"].value == mode
    keys = {m.asset_key.to_user_string() for m in materializations(rerun_analysis.results[0])}
    assert keys == {"mozanalysis/enrollments", "mozanalysis/metrics", "mozanalysis/statistics",
                    "bucket/statistics_json", "bucket/metadata_json", "bucket/errors_json", "bucket/results_html"}
    enrollment = next(m for m in materializations(rerun_analysis.results[0])
                      if m.asset_key == dg.AssetKey(["mozanalysis", "enrollments"]))
    clients = query(rerun_analysis.sample.home, f"SELECT COUNT(*) AS n FROM mozanalysis.enrollments_{SLUG_TABLE}")
    assert enrollment.metadata["dagster/row_count"].value == clients["n"][0] > 0
    assert enrollment.metadata["analysis_date"].value == LAST_DATE.isoformat()


def test_statistics_cover_every_statistic_and_ordered_branch_pair(rerun_analysis: Analysed) -> None:
    stats = table_contents(rerun_analysis.sample.home, f"statistics_{SLUG_TABLE}_week_2")
    assert not stats.duplicated(STATISTICS_KEY_COLUMNS).any()
    counts = stats[(stats["metric"] == "identity") & (stats["statistic"] == "count")]
    assert set(counts["branch"]) == set(BRANCHES) and counts["comparison"].isna().all()
    assert {"mean", "binomial"} <= set(stats["statistic"])
    pairs = set(itertools.permutations(BRANCHES, 2))
    assert len(pairs) == 6
    for statistic in ("mean", "binomial"):
        rows = stats[stats["statistic"] == statistic]
        assert set(rows.loc[rows["comparison"].isna(), "branch"]) == set(BRANCHES)
        for comparison in ("difference", "relative_uplift"):
            compared = rows[rows["comparison"] == comparison]
            for metric, per_metric in compared.groupby("metric"):
                for (segment, basis), cell in per_metric.groupby(["segment", "analysis_basis"]):
                    found = set(zip(cell["branch"], cell["comparison_to_branch"]))
                    assert found == pairs, (statistic, comparison, metric, segment, basis)
                    assert cell["point"].notna().all()
    assert set(stats["analysis_basis"]) == {"enrollments", "exposures"}


def test_exported_files_validate_against_nimbus_schemas(rerun_analysis: Analysed) -> None:
    bucket = rerun_analysis.sample.bucket
    weekly = json.loads((bucket / f"statistics/statistics_{SLUG_TABLE}_weekly.json").read_text())
    Statistics.model_validate(weekly)
    view = table_contents(rerun_analysis.sample.home, f"statistics_{SLUG_TABLE}_weekly")
    assert len(weekly) == len(view)
    assert {r["window_index"] for r in weekly} == {"1", "2"}
    Statistics.model_validate(
        json.loads((bucket / f"statistics/statistics_{SLUG_TABLE}_preenrollment_weekly.json").read_text()))
    metadata = json.loads((bucket / f"metadata/metadata_{SLUG_TABLE}.json").read_text())
    Metadata.model_validate(metadata)
    assert metadata["schema_version"] == 4
    assert {"active_hours", "searched"} <= set(metadata["metrics"])
    assert metadata["metrics"]["active_hours"]["friendly_name"] == "Active hours"
    AnalysisErrors.model_validate(json.loads((bucket / f"errors/errors_{SLUG_TABLE}.json").read_text()))


def test_daily_runs_compute_only_the_window_that_became_ready(daily_analysis: tuple[Analysed, State, State]) -> None:
    daily, first, _ = daily_analysis
    assert all(r.success for r in daily.results)
    pre, week1 = daily.results[:2]
    # the metrics step lists the tables it wrote: `| <period> | <window> | <basis> | <table> | ...`
    written = {r: next(m for m in materializations(r) if m.asset_key.path[-1] == "metrics").metadata["tables"].value
               for r in (pre, week1)}
    assert "| preenrollment_week | 1 |" in written[pre] and "| week |" not in written[pre]
    assert "| week | 1 |" in written[week1] and "preenrollment_week" not in written[week1]
    assert set(first.tables[f"statistics_{SLUG_TABLE}_weekly"]["window_index"]) == {1, 2}


def test_rerunning_the_same_date_changes_nothing(daily_analysis: tuple[Analysed, State, State]) -> None:
    _, first, again = daily_analysis
    assert first.files, "the runs published files"
    assert_same_state(first, again)
    enrollments = again.tables[f"enrollments_{SLUG_TABLE}"]
    assert not enrollments.duplicated(["analysis_id"]).any()
    for n in (1, 2):
        assert not again.tables[f"statistics_{SLUG_TABLE}_week_{n}"].duplicated(STATISTICS_KEY_COLUMNS).any()


def test_rerun_converges_on_the_daily_runs(rerun_analysis: Analysed,
                                           daily_analysis: tuple[Analysed, State, State]) -> None:
    rerun = published_state(rerun_analysis.sample)
    _, _, daily = daily_analysis
    assert sorted(rerun.tables) == sorted(daily.tables)
    for name, frame in daily.tables.items():
        pd.testing.assert_frame_equal(rerun.tables[name], frame, obj=name)
    statistics_files = [k for k in daily.files if k.startswith("statistics/")]
    assert statistics_files
    for key in statistics_files:
        assert rerun.files[key] == daily.files[key], key
