"""The asset checks on crafted samples: each one passing and failing, evaluated per experiment partition
after its asset through `dg.materialize` (enrollment health, statistics completeness, logged errors, the
export contract), re-evaluated on their own as the UI's "Execute" does, plus the rules' edge cases on
plain numbers."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
from dagster._core.event_api import PartitionKeyFilter  # no public import in 1.13
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
import pandas as pd
import pytest
from mozilla_nimbus_schemas.jetstream import Statistics

from jetstream_assets.analysis.health import WindowStatistics, sample_ratio_mismatch, statistics_completeness
from jetstream_assets.analysis.plan import AnalysisPlan, PeriodPlan
from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.core.windows import ExperimentDates
from jetstream_assets.dagster_defs.analysis_assets import ENROLLMENTS_KEY, STATISTICS_KEY, enrollments, metrics, statistics
from jetstream_assets.dagster_defs.checks import (
    ANALYSIS_CHECKS,
    analysis_errors_check,
    enrollment_volume_check,
    export_contract_check,
    sample_ratio,
    statistics_completeness_check,
    unenrollment_rate,
)
from jetstream_assets.dagster_defs.export_assets import STATISTICS_JSON_KEY, statistics_json
from jetstream_assets.dagster_defs.freshness import DAILY_STATISTICS_FRESHNESS
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.run_tags import daily_tags
from jetstream_assets.experimenter.models import Branch, Experiment
from jetstream_assets.metric_hub.models import AnalysisConfig, DataSource, Metric, StatisticSpec
from jetstream_assets.sample.designs import BranchDesign
from jetstream_assets_tests.cheap_metric_hub import write_cheap_metric_hub
from jetstream_assets_tests.fixtures_sample import load_snapshot
from jetstream_assets_tests.small_sample import analysis_resources, like_tab_groups, write_small_sample

RUN_DATE = dt.date(2026, 10, 4)  # the first weekly window of like_tab_groups() experiments is ready
HEALTHY = "healthy-large"  # 1,200 clients, balanced, 3% unenrollment
SRM = "srm-three-branches"  # Experimenter 2:1:1, telemetry 1:1:1, 600 clients
UNENROLLING = "unenrolling"  # half the clients unenroll
BROKEN = "broken-metric"  # its config adds a metric whose SQL fails
LOST = "lost-window"  # its first weekly window is dropped before the second one is analysed
NEVER = "never-analysed"  # a partition without any materialization
WEEKLY_FILE = "statistics/statistics_healthy_large_weekly.json"

BROKEN_CONFIG = """
[metrics]
weekly = ["no_such_metric_column"]

[metrics.no_such_metric_column]
select_expression = "SUM(no_such_column)"
data_source = "clients_daily"
statistics = { bootstrap_mean = { num_samples = 200 } }
"""


@dataclass
class Crafted:
    home: Path
    resources: dict
    instance: dg.DagsterInstance
    runs: dict[str, dg.ExecuteInProcessResult]

    def checks(self, slug: str) -> dict[str, dg.AssetCheckEvaluation]:
        return {e.check_name: e for e in self.runs[slug].get_asset_check_evaluations()}

    def analyse(self, slug: str, assets: list) -> dg.ExecuteInProcessResult:
        return dg.materialize(assets, partition_key=slug, tags=daily_tags(RUN_DATE), resources=self.resources,
                              instance=self.instance, raise_on_error=False)


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("checks")
    write_small_sample(root / "home", [
        like_tab_groups(HEALTHY, clients=1_200),
        like_tab_groups(SRM, clients=600, branches=(
            BranchDesign("control", 2, assigned_ratio=1), BranchDesign("treatment-a", 1), BranchDesign("treatment-b", 1),
        )),
        like_tab_groups(UNENROLLING, unenroll_rate=0.5),
        like_tab_groups(BROKEN),
        like_tab_groups(LOST),
    ])
    hub = write_cheap_metric_hub(root / "metric-hub", {BROKEN: BROKEN_CONFIG})
    resources = analysis_resources(root / "home", metric_hub_path=str(hub))
    with dg.instance_for_test() as instance:
        assert load_snapshot(instance, resources).success
        instance.add_dynamic_partitions(experiments_partitions.name, [HEALTHY, SRM, UNENROLLING, BROKEN, LOST, NEVER])
        state = Crafted(root / "home", resources, instance, {})
        everything = [enrollments, metrics, statistics, statistics_json, *ANALYSIS_CHECKS]
        for slug in (HEALTHY, BROKEN, LOST):
            state.runs[slug] = state.analyse(slug, everything)
        for slug in (SRM, UNENROLLING):
            state.runs[slug] = state.analyse(slug, [enrollments, sample_ratio, enrollment_volume_check, unenrollment_rate])
        yield state


def execute_checks(definitions: list, slug: str, crafted: Crafted) -> dg.ExecuteInProcessResult:
    """What the UI's "Execute" launches: the checks alone, for one partition (the run's partition tag;
    `partition_key=` wants a selected asset to take the partitions from), with no analysis date tag."""
    checks = [d for d in definitions if isinstance(d, dg.AssetChecksDefinition)]
    return dg.materialize(definitions, selection=dg.AssetSelection.checks(*checks), tags={"dagster/partition": slug},
                          resources=crafted.resources, instance=crafted.instance, raise_on_error=False)


# --- enrollment health on `mozanalysis/enrollments` ----------------------------------------------


def test_healthy_enrollment_passes_every_enrollment_check(crafted: Crafted) -> None:
    checks = crafted.checks(HEALTHY)
    for name in ("sample_ratio", "enrollment_volume", "unenrollment_rate"):
        assert checks[name].passed, checks[name].description
        assert checks[name].asset_key == dg.AssetKey(["mozanalysis", "enrollments"])
    assert checks["enrollment_volume"].metadata["enrolled"].value == 1_200
    assert checks["unenrollment_rate"].metadata["unenrollment_rate"].value < 0.10


def test_three_branch_sample_ratio_mismatch_fails_with_shares_and_p_value(crafted: Crafted) -> None:
    check = crafted.checks(SRM)["sample_ratio"]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    meta = {k: v.value for k, v in check.metadata.items()}
    assert meta["expected_share"] == {"control": 0.5, "treatment-a": 0.25, "treatment-b": 0.25}
    assert meta["observed_share"]["control"] == pytest.approx(1 / 3, abs=0.01)
    assert meta["max_deviation_branch"] == "control" and meta["max_deviation_pp"] > 15
    assert meta["p_value"] < 0.001 and meta["degrees_of_freedom"] == 2
    assert crafted.runs[SRM].success, "an SRM warns; it does not block the analysis"


def test_low_enrollment_warns(crafted: Crafted) -> None:
    check = crafted.checks(SRM)["enrollment_volume"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["enrolled"].value == 600 and check.metadata["enrollment_days"].value >= 3


def test_high_unenrollment_warns_with_the_rate_per_branch(crafted: Crafted) -> None:
    check = crafted.checks(UNENROLLING)["unenrollment_rate"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["unenrollment_rate"].value > 0.10
    assert set(check.metadata["unenrollment_rate_per_branch"].value) == {"control", "treatment"}
    assert crafted.checks(SRM)["unenrollment_rate"].passed


# --- completeness and logged errors on `mozanalysis/statistics` ----------------------------------


def test_complete_statistics_pass_and_are_exported(crafted: Crafted) -> None:
    checks = crafted.checks(HEALTHY)
    assert checks["statistics_completeness"].passed, checks["statistics_completeness"].metadata
    assert checks["statistics_completeness"].metadata["missing_rows"].value == 0
    assert checks["analysis_errors"].passed
    assert checks["export_contract"].passed
    assert crafted.runs[HEALTHY].success


def test_missing_metric_fails_completeness_and_the_other_metrics_are_published(crafted: Crafted) -> None:
    result = crafted.runs[BROKEN]
    check = crafted.checks(BROKEN)["statistics_completeness"]
    # the metric failed with a logged error: reported at WARN, which a blocking check does not block on
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN and check.blocking
    assert check.metadata["incomplete_metrics"].value == ["no_such_metric_column/mean"]
    assert check.metadata["unexplained_missing"].value == [] and check.metadata["not_published"].value == []
    assert result.success  # one bad metric does not hide the experiment's other results
    materialized = {e.asset_key for e in result.get_asset_materialization_events()}
    assert {STATISTICS_KEY, dg.AssetKey(["bucket", "statistics_json"])} <= materialized
    published = list((crafted.home / "bucket" / "statistics").glob("statistics_broken_metric_*.json"))
    assert published
    metrics = {row["metric"] for path in published for row in json.loads(path.read_text())}
    assert "no_such_metric_column" not in metrics and len(metrics) > 1


def test_errors_logged_in_the_run_warn_and_name_the_metric(crafted: Crafted) -> None:
    check = crafted.checks(BROKEN)["analysis_errors"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["errors"].value == 2  # the metric failed on both bases
    assert check.metadata["metrics"].value == ["no_such_metric_column"]


def test_each_evaluation_carries_its_partition_and_a_failing_srm_stays_failing(crafted: Crafted) -> None:
    for slug in (HEALTHY, SRM, UNENROLLING, BROKEN):
        assert {e.partition for e in crafted.runs[slug].get_asset_check_evaluations()} == {slug}
    key = dg.AssetCheckKey(ENROLLMENTS_KEY, "sample_ratio")
    storage = crafted.instance.event_log_storage
    # SRM was evaluated after HEALTHY, and UNENROLLING passed after SRM: each partition keeps its own result
    latest = {slug: storage.get_latest_asset_check_execution_by_key([key], partition_filter=PartitionKeyFilter(key=slug))[key]
              for slug in (HEALTHY, SRM, UNENROLLING)}
    assert {slug: r.status for slug, r in latest.items()} == {
        HEALTHY: AssetCheckExecutionRecordStatus.SUCCEEDED,
        SRM: AssetCheckExecutionRecordStatus.FAILED,
        UNENROLLING: AssetCheckExecutionRecordStatus.SUCCEEDED,
    }
    assert all(r.partition == slug for slug, r in latest.items())


def test_execute_reevaluates_one_partition_from_the_warehouse_without_the_analysis(crafted: Crafted) -> None:
    # what the UI's "Execute" launches: the check alone, for one partition, with no analysis date tag
    result = execute_checks([enrollments, sample_ratio], SRM, crafted)
    assert result.success and not result.get_asset_materialization_events()
    [evaluation] = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.partition == SRM
    assert evaluation.metadata["max_deviation_branch"].value == "control"


def test_a_partition_with_nothing_published_passes_with_the_reason(crafted: Crafted) -> None:
    result = execute_checks([statistics, statistics_completeness_check, analysis_errors_check], NEVER, crafted)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {"statistics_completeness", "analysis_errors"}
    for evaluation in evaluations:
        assert evaluation.passed and evaluation.partition == NEVER
        assert "mozanalysis/statistics has not been materialized" in evaluation.metadata["skipped"].value


def test_lost_windows_fail_completeness_and_the_next_daily_run_publishes_them_again(crafted: Crafted) -> None:
    published = crafted.home / "bucket" / "statistics" / "statistics_lost_window_weekly.json"
    before = published.read_bytes()
    with duckdb.connect(str(crafted.home / "warehouse.duckdb")) as con:  # what a crash mid-rerun left
        for table in ("statistics_lost_window_week_1", "lost_window_enrollments_week_1"):
            con.execute(f"DROP TABLE mozanalysis.{table}")
    # the check, executed on what is published, sees the loss: an ERROR
    result = execute_checks([statistics, statistics_completeness_check], LOST, crafted)
    [completeness] = result.get_asset_check_evaluations()
    assert not completeness.passed and completeness.severity == dg.AssetCheckSeverity.ERROR
    assert {"statistics_lost_window_week_1", "lost_window_enrollments_week_1"} <= set(
        completeness.metadata["not_published"].value)
    # the next daily run computes the windows that should be published and are not, with a WARNING row each
    everything = [enrollments, metrics, statistics, statistics_json, *ANALYSIS_CHECKS]
    result = dg.materialize(everything, partition_key=LOST, tags=daily_tags(dt.date(2026, 10, 11)),
                            resources=crafted.resources, instance=crafted.instance, raise_on_error=False)
    assert result.success
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks["statistics_completeness"].passed
    # the lost window is published again as it was, beside the window that became ready on the run's date
    rows = json.loads(published.read_bytes())
    assert [r for r in rows if r["window_index"] == "1"] == json.loads(before)
    assert {r["window_index"] for r in rows} == {"1", "2"}
    with duckdb.connect(str(crafted.home / "warehouse.duckdb"), read_only=True) as con:
        healed = con.execute("SELECT message FROM monitoring.logs WHERE experiment = ? AND log_level = 'WARNING' "
                             "AND message LIKE '%should have been published%'", [LOST]).fetchall()
    assert any("week window 1" in m for (m,) in healed)


def test_null_estimates_fail_completeness() -> None:
    metric = Metric("m", "SUM(x)", DataSource("ds", "t"), (StatisticSpec("binomial"),), analysis_bases=("enrollments",))
    experiment = Experiment(slug="x", branches=(Branch("a"), Branch("b")), start_date=dt.date(2026, 9, 1),
                            end_date=None, enrollment_end_date=None, proposed_enrollment=7, reference_branch="a")
    config = AnalysisConfig(experiment=experiment, enrollment_period=7, metrics={AnalysisPeriod.WEEK: (metric,)})
    plan = AnalysisPlan(date=RUN_DATE, rerun=False, dates=ExperimentDates(dt.date(2026, 9, 1), 7),
                        periods=(PeriodPlan(AnalysisPeriod.WEEK, (), (metric,)),))
    rows = [{"metric": "identity", "statistic": "count", "branch": b, "comparison": None, "comparison_to_branch": None,
             "point": 10.0, "lower": None, "upper": None} for b in "ab"]
    rows += [{"metric": "m", "statistic": "binomial", "branch": b, "comparison": None, "comparison_to_branch": None,
              "point": 0.5, "lower": 0.4, "upper": 0.6} for b in "ab"]
    rows += [{"metric": "m", "statistic": "binomial", "branch": f, "comparison": c, "comparison_to_branch": r,
              "point": 0.1, "lower": None if (f, c) == ("b", "difference") else 0.0, "upper": 0.2}
             for f, r in (("a", "b"), ("b", "a")) for c in ("difference", "relative_uplift")]
    frame = pd.DataFrame(rows).assign(segment="all", analysis_basis="enrollments")
    result = statistics_completeness(config, plan, [WindowStatistics(AnalysisPeriod.WEEK, 1, "t", frame)])
    assert not result.passed
    assert result.metadata["missing_rows"] == 0 and result.metadata["null_estimate_rows"] == 1
    assert "m/binomial b difference vs a" in result.metadata["null_estimate_examples"][0]
    frame.loc[frame["lower"].isna() & (frame["metric"] == "m"), "lower"] = 0.0
    assert statistics_completeness(config, plan, [WindowStatistics(AnalysisPeriod.WEEK, 1, "t", frame)]).passed


# --- the export contract on `bucket/statistics_json` ---------------------------------------------


def test_a_published_file_missing_rows_of_its_view_fails_the_contract(crafted: Crafted) -> None:
    published = crafted.home / "bucket" / WEEKLY_FILE
    rows = json.loads(published.read_text())
    published.write_text(json.dumps(rows[: len(rows) // 2]))  # valid, newer than the view: not re-exported
    result = execute_checks([statistics_json, export_contract_check], HEALTHY, crafted)
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.partition == HEALTHY
    assert check.metadata["problems"].value[WEEKLY_FILE] == (
        f"{len(rows) // 2:,} rows published, statistics_healthy_large_weekly has {len(rows):,}")


def test_corrupt_published_file_heals_on_the_next_run(crafted: Crafted) -> None:
    published = crafted.home / "bucket" / WEEKLY_FILE
    published.write_text('[{"metric": "half a fil')  # newer than the view: only the contract notices
    result = crafted.analyse(HEALTHY, [statistics_json, export_contract_check])
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.passed and WEEKLY_FILE in check.metadata["files"].value
    Statistics.model_validate(json.loads(published.read_text()))


def test_rows_failing_validation_are_not_published_and_fail_the_contract(crafted: Crafted) -> None:
    published = crafted.home / "bucket" / WEEKLY_FILE
    published.unlink()
    with duckdb.connect(str(crafted.home / "warehouse.duckdb")) as con:  # nimbus knows only two bases
        con.execute("INSERT INTO mozanalysis.statistics_healthy_large_week_1 "
                    "SELECT * REPLACE ('per_day' AS analysis_basis) FROM mozanalysis.statistics_healthy_large_week_1 "
                    "WHERE metric = 'identity' LIMIT 1")
    result = crafted.analyse(HEALTHY, [statistics_json, export_contract_check])
    [check] = result.get_asset_check_evaluations()
    assert not check.passed and check.blocking and check.severity == dg.AssetCheckSeverity.ERROR
    assert "Statistics" in check.metadata["problems"].value[WEEKLY_FILE]
    assert not result.success
    assert not published.exists()


# --- freshness -------------------------------------------------------------------------------------


def test_daily_statistics_go_stale_after_36_hours() -> None:
    policy = statistics.specs_by_key[STATISTICS_KEY].freshness_policy
    assert policy == DAILY_STATISTICS_FRESHNESS
    assert policy.fail_window.to_timedelta() == dt.timedelta(hours=36)


# --- the SRM rule on plain numbers ------------------------------------------------------------------


def test_srm_needs_both_a_tiny_p_value_and_a_five_point_deviation() -> None:
    ratios = {"a": 2, "b": 1, "c": 1}
    # p ~ 1e-20 but every share within 2 points: Experimenter does not alert
    assert sample_ratio_mismatch({"a": 102_000, "b": 49_000, "c": 49_000}, ratios).passed
    # 10 points off, but with 20 clients the chi-square is not significant
    assert sample_ratio_mismatch({"a": 8, "b": 6, "c": 6}, ratios).passed
    failing = sample_ratio_mismatch({"a": 900, "b": 550, "c": 550}, ratios)
    assert not failing.passed and failing.metadata["max_deviation_pp"] == 5.0
    assert sample_ratio_mismatch({}, ratios).passed
