"""Bad analysis input (the issue's list): configuration mistakes fail their experiment with the file,
line and names involved; problems met while computing (failing SQL, a missing table, an unknown
statistic parameter, an all-zero reference branch, a branch without clients, NaN and infinite values)
cost only the metric or statistic concerned. Each leaves a `monitoring.logs` row with its coordinates."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from mozilla_nimbus_schemas.jetstream import AnalysisErrors

from jetstream_assets_tests.fixtures_sample import ANALYSIS_ASSETS, load_snapshot
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.run_tags import daily_tags
from jetstream_assets_tests.small_sample import (
    TAB_GROUPS_WEEK_READY,
    analysis_resources,
    like_tab_groups,
    log_rows,
    relations,
    table_contents,
    write_small_sample,
)

METRIC_HUB = Path(__file__).parent / "data" / "metric-hub-full"
RUN_DATE = TAB_GROUPS_WEEK_READY[0]  # the first weekly window of every experiment here
SYNTAX_ERROR = "syntax-error-experiment"
UNKNOWN_STATISTIC = "unknown-statistic-experiment"
UNKNOWN_DATA_SOURCE = "unknown-data-source-experiment"
RUNTIME = "runtime-problems-experiment"
RUNTIME_TABLE = "runtime_problems_experiment"
EMPTY_BRANCH = "treatment-b"  # listed by Experimenter for RUNTIME, nobody enrolled in it

CONFIGS = {
    # line 3 is broken
    SYNTAX_ERROR: """\
[metrics]
weekly = ["active_hours"]
[metrics.active_hours.statistics.bootstrap_mean
""",
    UNKNOWN_STATISTIC: """\
[metrics]
weekly = ["active_hours"]

[metrics.active_hours.statistics.no_such_statistic]
""",
    UNKNOWN_DATA_SOURCE: """\
[metrics]
weekly = ["orphan"]

[metrics.orphan]
select_expression = "COUNT(*)"
data_source = "no_such_source"
statistics = { sum = {} }
""",
    RUNTIME: """\
[metrics]
weekly = ["bad_parameter", "broken_sql", "missing_table", "zero_control", "infinite", "not_a_number",
          "log_of_zero"]

[metrics.bad_parameter]
select_expression = '{{agg_sum("active_hours_sum")}}'
data_source = "clients_daily"
statistics = { bootstrap_mean = { num_samples = 100, no_such_parameter = 1 }, sum = {} }

[metrics.broken_sql]
select_expression = "SUM(no_such_column)"
data_source = "clients_daily"
statistics = { sum = {} }

[metrics.missing_table]
select_expression = "COUNT(*)"
data_source = "missing_table"
statistics = { sum = {} }

[metrics.zero_control]
# control clients are all zeros: no relative uplift against control
select_expression = '''{{agg_sum("IF(e.branch = 'control', 0, active_hours_sum)")}}'''
data_source = "clients_daily"
statistics = { bootstrap_mean = { num_samples = 200 }, linear_model_mean = {} }

[metrics.infinite]
select_expression = "IF(SUM(active_hours_sum) > 3, CAST('inf' AS FLOAT64), SUM(active_hours_sum))"
data_source = "clients_daily"
statistics = { bootstrap_mean = { num_samples = 200 } }

[metrics.not_a_number]
select_expression = "IF(COUNT(*) > 3, CAST('nan' AS FLOAT64), 1.0)"
data_source = "clients_daily"
statistics = { bootstrap_mean = { num_samples = 200 } }

[metrics.log_of_zero]
select_expression = '{{agg_sum("ad_clicks_count_all")}}'
data_source = "clients_daily"
statistics = { bootstrap_mean = { num_samples = 200, pre_treatments = ["log"] } }

[data_sources.missing_table]
from_expression = "moz-fx-data-shared-prod.telemetry.no_such_table"
experiments_column_type = "none"
""",
}


@dataclass
class BadRun:
    home: Path
    metric_hub: Path
    results: dict[str, dg.ExecuteInProcessResult]

    def errors(self, slug: str) -> pd.DataFrame:
        rows = log_rows(self.home, slug)
        return rows[rows["log_level"] == "ERROR"]

    def failure(self, slug: str) -> str:
        [failure] = [e for e in self.results[slug].get_step_failure_events()
                     if e.step_key == "mozanalysis__enrollments"]
        return failure.step_failure_data.error.to_string()

    def config_file(self, slug: str) -> str:
        return str(self.metric_hub / "jetstream" / f"{slug}.toml")

    def errors_file(self, slug: str) -> list[dict]:
        payload = json.loads((self.home / "bucket" / "errors" / f"errors_{slug.replace('-', '_')}.json").read_text())
        AnalysisErrors.model_validate(payload)
        return payload


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory) -> BadRun:
    root = tmp_path_factory.mktemp("analysis_bad_input")
    sample = write_small_sample(root / "home", [like_tab_groups(slug, clients=240) for slug in CONFIGS])
    payload = json.loads(sample.experimenter_json.read_text())
    [runtime] = [e for e in payload if e["slug"] == RUNTIME]
    runtime["branches"].append({**runtime["branches"][-1], "slug": EMPTY_BRANCH})
    sample.experimenter_json.write_text(json.dumps(payload))
    hub = Path(shutil.copytree(METRIC_HUB, root / "metric-hub"))
    for slug, text in CONFIGS.items():
        (hub / "jetstream" / f"{slug}.toml").write_text(text)
    resources = analysis_resources(sample.home, metric_hub_path=str(hub))
    results = {}
    with dg.instance_for_test() as instance:
        assert load_snapshot(instance, resources).success
        instance.add_dynamic_partitions(experiments_partitions.name, list(CONFIGS))
        for slug in CONFIGS:
            results[slug] = dg.materialize(ANALYSIS_ASSETS, partition_key=slug, tags=daily_tags(RUN_DATE),
                                           resources=resources, instance=instance, raise_on_error=False)
    return BadRun(sample.home, hub, results)


# --- configuration mistakes: the experiment fails, naming the file, line and field -------------------


@pytest.mark.parametrize("slug, line, names", [
    (SYNTAX_ERROR, 3, ["TOML syntax error"]),
    (UNKNOWN_STATISTIC, 4, ["metrics.active_hours.statistics.no_such_statistic", "unknown statistic"]),
    (UNKNOWN_DATA_SOURCE, 6, ["metrics.orphan.data_source", "no_such_source"]),
])
def test_config_mistake_fails_its_experiment_with_file_line_and_names(bad_run: BadRun, slug: str, line: int,
                                                                      names: list[str]) -> None:
    assert not bad_run.results[slug].success
    location = f"{bad_run.config_file(slug)}:{line}"
    failure = bad_run.failure(slug)
    for text in [slug, location, *names]:
        assert text in failure, (text, failure)
    errors = bad_run.errors(slug)
    assert len(errors) >= 1
    assert errors["message"].str.contains(location, regex=False).all()
    assert set(errors["exception_type"]) == {"ConfigError"}
    assert any(location in e["message"] for e in bad_run.errors_file(slug))
    assert not [t for t in relations(bad_run.home) if slug.replace("-", "_") in t and not t.startswith("enrollments_")]


def test_unknown_statistic_log_row_names_metric_and_statistic(bad_run: BadRun) -> None:
    errors = bad_run.errors(UNKNOWN_STATISTIC)
    assert set(errors["metric"]) == {"active_hours"}
    assert set(errors["statistic"]) == {"no_such_statistic"}


# --- problems met while computing: only the metric or statistic concerned is lost --------------------


def runtime_statistics(bad_run: BadRun) -> pd.DataFrame:
    return table_contents(bad_run.home, f"statistics_{RUNTIME_TABLE}_week_1")


def test_runtime_problems_leave_the_experiment_analysed(bad_run: BadRun) -> None:
    materialized = {e.asset_key.to_user_string() for e in bad_run.results[RUNTIME].get_asset_materialization_events()}
    assert {"mozanalysis/enrollments", "mozanalysis/metrics", "mozanalysis/statistics"} <= materialized
    stats = runtime_statistics(bad_run)
    computed = set(stats[["metric", "statistic"]].itertuples(index=False, name=None))
    assert {("identity", "count"), ("bad_parameter", "sum"), ("zero_control", "mean"), ("zero_control", "mean_lm"),
            ("not_a_number", "mean")} <= computed
    assert not {m for m, _ in computed} & {"infinite", "log_of_zero"}  # refused and logged, not published as NULL
    assert not {m for m, _ in computed} & {"broken_sql", "missing_table"}
    assert ("bad_parameter", "mean") not in computed


@pytest.mark.parametrize("metric, data_source", [("broken_sql", "clients_daily"), ("missing_table", "missing_table")])
def test_failing_metric_sql_is_logged_per_basis(bad_run: BadRun, metric: str, data_source: str) -> None:
    errors = bad_run.errors(RUNTIME)
    rows = errors[errors["metric"] == metric]
    assert set(rows["analysis_basis"]) == {"enrollments", "exposures"}
    assert set(rows["analysis_period"]) == {"week"}
    for message in rows["message"]:
        assert RUNTIME in message and metric in message and data_source in message


def test_unknown_statistic_parameter_is_logged_with_its_coordinates(bad_run: BadRun) -> None:
    errors = bad_run.errors(RUNTIME)
    rows = errors[(errors["metric"] == "bad_parameter") & (errors["statistic"] == "bootstrap_mean")]
    assert set(rows["segment"]) == {"all"}
    assert set(rows["analysis_basis"]) == {"enrollments", "exposures"}
    assert set(rows["exception_type"]) == {"StatisticConfigError"}
    for message in rows["message"]:
        assert RUNTIME in message and "no_such_parameter" in message and "bootstrap_mean" in message


def test_all_zero_reference_branch_skips_only_that_reference(bad_run: BadRun) -> None:
    errors = bad_run.errors(RUNTIME)
    rows = errors[errors["metric"] == "zero_control"]
    assert set(rows["statistic"]) == {"bootstrap_mean", "linear_model_mean"}
    assert rows["message"].str.contains("control").all()
    stats = runtime_statistics(bad_run)
    compared = stats[(stats["metric"] == "zero_control") & stats["comparison"].notna()]
    assert set(compared["comparison_to_branch"]) == {"treatment"}  # control as reference was skipped
    assert set(compared["branch"]) == {"control"}


def test_branch_without_clients_counts_zero(bad_run: BadRun) -> None:
    stats = runtime_statistics(bad_run)
    counts = stats[(stats["metric"] == "identity") & (stats["analysis_basis"] == "enrollments")]
    assert dict(zip(counts["branch"], counts["point"]))[EMPTY_BRANCH] == 0
    assert EMPTY_BRANCH not in set(stats.loc[stats["metric"] != "identity", "branch"])


def test_branch_without_clients_is_warned(bad_run: BadRun) -> None:
    warnings = log_rows(bad_run.home, RUNTIME).query("log_level == 'WARNING'")
    assert warnings["message"].str.contains(EMPTY_BRANCH).any()


def statistics_per_metric(bad_run: BadRun) -> dict[tuple[str, str], int]:
    stats = runtime_statistics(bad_run)
    return stats.groupby(["metric", "statistic"]).size().to_dict()


# rows of the metrics unaffected by NaN or infinite values: one per branch and basis for a count (3 branches,
# the empty one included), a sum has no comparisons; every other statistic a row per branch and comparison
UNAFFECTED = {("identity", "count"): 6, ("bad_parameter", "sum"): 4, ("zero_control", "mean"): 8}


@pytest.mark.parametrize("metric", ["infinite", "log_of_zero"])
def test_infinite_values_refuse_the_statistic_with_an_error_naming_metric_and_statistic(
    bad_run: BadRun, metric: str
) -> None:
    errors = bad_run.errors(RUNTIME)
    rows = errors[errors["metric"] == metric]
    assert sorted(rows["analysis_basis"]) == ["enrollments", "exposures"]  # one row per basis
    assert set(rows["statistic"]) == {"bootstrap_mean"} and set(rows["segment"]) == {"all"}
    assert set(rows["exception_type"]) == {"StatisticComputationError"}
    for message in rows["message"]:
        assert f"statistic bootstrap_mean of metric {metric} failed" in message
        assert "infinite value(s)" in message and "remove_indefinites" in message
    published = statistics_per_metric(bad_run)
    assert not [key for key in published if key[0] == metric]  # refused, not published as NULL or inf
    assert UNAFFECTED.items() <= published.items()  # the other metrics' statistics are all there


def test_nan_values_are_warned_and_left_out_like_nulls(bad_run: BadRun) -> None:
    # NaN and NULL are the same once in pandas; the warehouse tells them apart and the user is warned
    warnings = log_rows(bad_run.home, RUNTIME).query("log_level == 'WARNING'")
    rows = warnings[warnings["metric"] == "not_a_number"]
    assert sorted(rows["analysis_basis"]) == ["enrollments", "exposures"]
    for message in rows["message"]:
        assert "metric not_a_number has" in message and "NaN value(s)" in message and "left out like NULLs" in message
    assert not bad_run.errors(RUNTIME)["metric"].eq("not_a_number").any()
    stats = runtime_statistics(bad_run)
    mean = stats[stats["metric"] == "not_a_number"]
    assert set(mean["statistic"]) == {"mean"}
    assert len(mean) == 12  # 2 branches x (the branch + 2 comparisons) x 2 bases; the empty branch has no mean
    assert np.isfinite(mean[["point", "lower", "upper"]].to_numpy(dtype=float)).all()
    # every value left is 1.0 (the SQL's other case): means of 1, differences and uplifts of 0
    assert set(mean.loc[mean["comparison"].isna(), "point"]) == {1.0}
    assert set(mean.loc[mean["comparison"].notna(), "point"]) == {0.0}
