"""A metric-hub config that uses every feature (jetstream_assets_tests/data/metric-hub-full), analysed
through the Dagster assets on a small sample: `[experiment]` overrides, every period, every statistic
and pre-treatment, data sources, segments, an exposure signal, an outcome with a parameter, Jinja
helpers and a custom enrollment query."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from mozilla_nimbus_schemas.jetstream import AnalysisErrors, Metadata, Statistics

from jetstream_assets.analysis.exports import metadata_payload
from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.resources import (
    BucketResource,
    ExperimenterResource,
    MetricHubResource,
    WarehouseResource,
)
from jetstream_assets.experimenter.parse import parse_experiments
from jetstream_assets.metric_hub.loader import MetricHub
from jetstream_assets.sample.designs import BranchDesign, ExperimentDesign
from jetstream_assets.sample.experimenter_payload import experimenter_payload
from jetstream_assets.sample.telemetry import generate_telemetry, write_telemetry
from jetstream_assets_tests.fixtures_sample import ANALYSIS_ASSETS, load_snapshot
from jetstream_assets_tests.small_sample import log_rows, query, relations

METRIC_HUB = Path(__file__).parent / "data" / "metric-hub-full"
FULL = "full-config-experiment"
CUSTOM = "custom-enrollment-experiment"
FULL_TABLE = "full_config_experiment"
CUSTOM_TABLE = "custom_enrollment_experiment"
ANALYSIS_DATE = dt.date(2026, 10, 1)  # the configured end date: every period of FULL is ready
CUSTOM_DATE = dt.date(2026, 9, 11)  # the first weekly window of CUSTOM (enrollment 2026-09-01..04)
SAMPLE_SIZE = 60
STORED_NAME = {"bootstrap_mean": "mean", "linear_model_mean": "mean_lm"}
BRANCHES = ("control", "treatment")


def designs() -> list[ExperimentDesign]:
    common = dict(
        start_date=dt.date(2026, 9, 1),
        enrollment_end_date=dt.date(2026, 9, 3),
        end_date=None,
        proposed_enrollment=3,
        branches=(BranchDesign("control"), BranchDesign("treatment", 1, {"active_hours_sum": 1.2})),
        outcomes=(),
        exposure_rate=0.8,
    )
    return [
        ExperimentDesign(slug=FULL, n_clients=600, **common),
        ExperimentDesign(slug=CUSTOM, n_clients=300, **common),
    ]


@dataclass
class FullRun:
    home: Path
    metric_hub: Path
    results: dict[str, dg.ExecuteInProcessResult]

    @property
    def bucket(self) -> Path:
        return self.home / "bucket"

    def json(self, key: str):
        return json.loads((self.bucket / key).read_text())


def analyse(instance: dg.DagsterInstance, resources: dict, slug: str, date: dt.date) -> dg.ExecuteInProcessResult:
    instance.add_dynamic_partitions(experiments_partitions.name, [slug])
    return dg.materialize(
        ANALYSIS_ASSETS, partition_key=slug, resources=resources, instance=instance, raise_on_error=False,
        tags={"jetstream/analysis_date": date.isoformat(), "jetstream/rerun": "true"},
    )


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> FullRun:
    root = tmp_path_factory.mktemp("full_config")
    home = root / "home"
    home.mkdir()
    # a copy outside any git work tree: outcomes have no commit hash
    metric_hub = Path(shutil.copytree(METRIC_HUB, root / "metric-hub"))
    telemetry = generate_telemetry(designs(), data_start=dt.date(2026, 8, 4), data_end=ANALYSIS_DATE,
                                   background_clients=100, seed=7)
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        write_telemetry(con, telemetry)
    payload_file = home / "experimenter_v8.json"
    payload_file.write_text(json.dumps(experimenter_payload(designs())))
    resources = {
        "warehouse": WarehouseResource(home=str(home)),
        "metric_hub": MetricHubResource(path=str(metric_hub)),
        "experimenter": ExperimenterResource(url=str(payload_file)),
        "bucket": BucketResource(home=str(home)),
    }
    with dg.instance_for_test() as instance:
        assert load_snapshot(instance, resources).success
        results = {FULL: analyse(instance, resources, FULL, ANALYSIS_DATE),
                   CUSTOM: analyse(instance, resources, CUSTOM, CUSTOM_DATE)}
    return FullRun(home, metric_hub, results)


def configured_statistics(run: FullRun) -> dict[str, dict[str, set[str]]]:
    """period suffix -> metric -> statistic config names, read from the TOML files themselves."""
    hub = run.metric_hub
    own = tomllib.loads((hub / "jetstream" / f"{FULL}.toml").read_text())["metrics"]
    defaults = tomllib.loads((hub / "jetstream" / "defaults" / "firefox_desktop.toml").read_text())["metrics"]
    outcome = tomllib.loads((hub / "jetstream" / "outcomes" / "firefox_desktop" / "search_depth.toml").read_text())
    statistics = {name: set(table.get("statistics", {})) for name, table in defaults.items() if isinstance(table, dict)}
    for name, table in own.items():
        if isinstance(table, dict) and "statistics" in table:
            statistics[name] = set(table["statistics"])  # the experiment's statistics replace the defaults'
    for name, table in outcome["metrics"].items():
        statistics.setdefault(name, set(table["statistics"]))
    lists = {AnalysisPeriod.from_config_key(k): v for k, v in own.items() if isinstance(v, list)}
    lists[AnalysisPeriod.WEEK] = lists[AnalysisPeriod.WEEK] + defaults["weekly"]
    for period in (AnalysisPeriod.WEEK, AnalysisPeriod.OVERALL):  # an outcome without lists: weekly and overall
        lists[period] = lists[period] + list(outcome["metrics"])
    return {p.table_suffix: {m: statistics[m] for m in names} for p, names in lists.items()}


def test_every_asset_materializes(full_run: FullRun) -> None:
    for slug, result in full_run.results.items():
        assert result.success, slug
        keys = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        assert {"mozanalysis/enrollments", "mozanalysis/metrics", "mozanalysis/statistics",
                "bucket/statistics_json", "bucket/metadata_json"} <= keys, slug
    assert log_rows(full_run.home, FULL).query("log_level == 'ERROR'").empty


def test_contract_tables_and_views_exist(full_run: FullRun) -> None:
    tables = relations(full_run.home)
    expected_tables = {f"enrollments_{FULL_TABLE}"}
    expected_views = set()
    windows = {"week": 4, "days28": 1, "overall": 1, "preenrollment_week": 1, "preenrollment_days28": 1}
    for period, count in windows.items():
        suffix = AnalysisPeriod(period).table_suffix
        for basis in ("enrollments", "exposures"):
            expected_tables |= {f"{FULL_TABLE}_{basis}_{period}_{n}" for n in range(1, count + 1)}
            expected_views.add(f"{FULL_TABLE}_{basis}_{suffix}")
        expected_tables |= {f"statistics_{FULL_TABLE}_{period}_{n}" for n in range(1, count + 1)}
        expected_views.add(f"statistics_{FULL_TABLE}_{suffix}")
    assert {t for t in expected_tables if tables.get(t) != "BASE TABLE"} == set()
    assert {v for v in expected_views if tables.get(v) != "VIEW"} == set()
    assert f"statistics_{FULL_TABLE}_week_5" not in tables and f"statistics_{FULL_TABLE}_daily" not in tables
    # the daily metric of CUSTOM (enrollment ends 2026-09-04) is on the enrollments basis only
    assert {t for t in tables if t.startswith(f"{CUSTOM_TABLE}_enrollments_day_")} == {
        f"{CUSTOM_TABLE}_enrollments_day_{n}" for n in range(1, 9)}
    assert not [t for t in tables if re.fullmatch(rf"{CUSTOM_TABLE}_exposures_(day_[0-9]+|daily)", t)]
    assert tables[f"statistics_{CUSTOM_TABLE}_daily"] == "VIEW"


def test_every_configured_statistic_is_computed_per_segment_and_basis(full_run: FullRun) -> None:
    segments = {"all", "heavy_users", "regular_users"}
    for suffix, metrics in configured_statistics(full_run).items():
        rows = query(full_run.home, f"SELECT DISTINCT metric, statistic, segment, analysis_basis "
                                    f"FROM mozanalysis.statistics_{FULL_TABLE}_{suffix}")
        found = set(rows.itertuples(index=False, name=None))
        for metric, statistics in metrics.items():
            bases = ("enrollments", "exposures")
            for statistic in statistics:
                stored = STORED_NAME.get(statistic, statistic)
                missing = {(s, b) for s in segments for b in bases if (metric, stored, s, b) not in found}
                assert not missing, f"{suffix}: {metric}/{statistic} missing for {sorted(missing)}"
        assert {("identity", "count", s, "enrollments") for s in segments} <= found, suffix


def test_exposure_signal_keeps_fewer_clients_than_enrollments(full_run: FullRun) -> None:
    clients = query(full_run.home, f"""
        SELECT analysis_basis, SUM(point) AS clients FROM mozanalysis.statistics_{FULL_TABLE}_week_1
        WHERE metric = 'identity' AND segment = 'all' GROUP BY analysis_basis""")
    by_basis = dict(zip(clients["analysis_basis"], clients["clients"]))
    assert 0 < by_basis["exposures"] < by_basis["enrollments"]
    exposed = query(full_run.home, f"SELECT COUNT(*) AS n FROM mozanalysis.{FULL_TABLE}_exposures_week_1")
    assert exposed["n"][0] == by_basis["exposures"]


def test_sample_size_reduces_enrollments(full_run: FullRun) -> None:
    enrolled = query(full_run.home, f"SELECT COUNT(*) AS n, MAX(e.sample_id) AS top FROM mozanalysis.enrollments_{FULL_TABLE} x "
                                    "JOIN (SELECT DISTINCT client_id, sample_id FROM firefox_desktop.events_stream) e "
                                    "ON e.client_id = x.analysis_id")
    in_telemetry = query(full_run.home, "SELECT COUNT(DISTINCT client_id) AS n FROM firefox_desktop.events_stream "
                                        "WHERE event_name = 'enrollment' AND json_extract_string(event_extra, '$.experiment') = ?",
                         [FULL])
    assert enrolled["top"][0] < SAMPLE_SIZE
    assert 0.4 * in_telemetry["n"][0] < enrolled["n"][0] < 0.8 * in_telemetry["n"][0]


def test_custom_enrollment_query_selects_the_enrollments(full_run: FullRun) -> None:
    enrolled = query(full_run.home, f"SELECT analysis_id FROM mozanalysis.enrollments_{CUSTOM_TABLE} ORDER BY 1")
    expected = query(full_run.home, """
        SELECT DISTINCT client_id FROM firefox_desktop.events_stream
        WHERE event_name = 'enrollment' AND json_extract_string(event_extra, '$.experiment') = ? AND sample_id < 50
        ORDER BY 1""", [CUSTOM])
    assert list(enrolled["analysis_id"]) == list(expected["client_id"])
    for suffix, metric, statistic in (("weekly", "active_hours", "mean"), ("daily", "daily_hours", "sum")):
        stats = query(full_run.home, f"SELECT DISTINCT metric, statistic, analysis_basis "
                                     f"FROM mozanalysis.statistics_{CUSTOM_TABLE}_{suffix}")
        bases = ("enrollments",) if suffix == "daily" else ("enrollments", "exposures")
        expected = {(m, st, b) for m, st in ((metric, statistic), ("identity", "count")) for b in bases}
        assert set(stats.itertuples(index=False, name=None)) == expected, suffix


def test_covariate_adjustment_narrows_the_interval(full_run: FullRun) -> None:
    rows = query(full_run.home, f"""
        SELECT metric, upper - lower AS width FROM mozanalysis.statistics_{FULL_TABLE}_overall_1
        WHERE statistic = 'mean_lm' AND comparison = 'difference' AND branch = 'treatment'
          AND comparison_to_branch = 'control' AND segment = 'all' AND analysis_basis = 'enrollments'""")
    width = dict(zip(rows["metric"], rows["width"]))
    assert 0 < width["hours"] < width["hours_unadjusted"]


def test_reference_branch_override_and_all_pairs(full_run: FullRun) -> None:
    pairs = query(full_run.home, f"SELECT DISTINCT branch, comparison_to_branch FROM mozanalysis.statistics_{FULL_TABLE}_weekly "
                                 "WHERE comparison IS NOT NULL")
    assert set(pairs.itertuples(index=False, name=None)) == {("treatment", "control"), ("control", "treatment")}


def test_metadata_has_outcome_and_external_config(full_run: FullRun) -> None:
    metadata = full_run.json(f"metadata/metadata_{FULL_TABLE}.json")
    Metadata.model_validate(metadata)
    outcome = metadata["outcomes"]["search_depth"]
    assert outcome["friendly_name"] == "Search depth"
    assert outcome["metrics"] == ["multi_search_days"] and outcome["default_metrics"] == ["multi_search_days"]
    assert outcome["commit_hash"] is None  # the hub is not in a git work tree
    assert metadata["external_config"] == {  # Jetstream: every key, values only where Experimenter differs
        "reference_branch": "treatment",
        "end_date": "2026-10-01",
        "start_date": None,  # the config repeats Experimenter's start date
        "enrollment_period": 2,
        "skip": False,
        "url": f"https://github.com/mozilla/metric-hub/blob/main/jetstream/{FULL}.toml",
    }
    assert metadata["version_info"] is None and metadata["version_date"] is None
    assert metadata["metrics"]["days_of_use"]["friendly_name"] == "Days Of Use"
    custom_metadata = full_run.json(f"metadata/metadata_{CUSTOM_TABLE}.json")
    assert custom_metadata["metrics"]["daily_hours"]["analysis_bases"] == ["enrollments"]
    assert custom_metadata["external_config"] is None  # no Experimenter value overridden
    assert metadata["metrics"]["ad_clicks"]["bigger_is_better"] is False


def test_parameter_and_jinja_helpers_reach_the_sql(full_run: FullRun) -> None:
    weekly = query(full_run.home, f"SELECT multi_search_days, searched FROM mozanalysis.{FULL_TABLE}_enrollments_week_1")
    assert weekly["multi_search_days"].max() > 0
    assert set(weekly["searched"].dropna()) == {True, False}
    days28 = query(full_run.home, f"SELECT max_uri, uri_count FROM mozanalysis.{FULL_TABLE}_enrollments_days28_1")
    assert 0 < days28["max_uri"].max() <= days28["uri_count"].max()


def test_every_export_validates(full_run: FullRun) -> None:
    statistics_files = sorted((full_run.bucket / "statistics").glob("statistics_*.json"))
    exported = {p.stem for p in statistics_files}
    assert exported == {f"statistics_{FULL_TABLE}_{p.table_suffix}" for p in AnalysisPeriod if p != AnalysisPeriod.DAY} | {
        f"statistics_{CUSTOM_TABLE}_daily", f"statistics_{CUSTOM_TABLE}_weekly"}
    for path in statistics_files:
        payload = json.loads(path.read_text())
        assert payload, path.name
        Statistics.model_validate(payload)
    for slug in (FULL_TABLE, CUSTOM_TABLE):
        Metadata.model_validate(full_run.json(f"metadata/metadata_{slug}.json"))
        AnalysisErrors.model_validate(full_run.json(f"errors/errors_{slug}.json"))


# --- outcomes' commit_hash "where known" ------------------------------------------------------------


def git(repo: Path, *args: str) -> str:
    """git in a throw-away repository, with an identity and no user/system configuration."""
    env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "PATH": os.environ["PATH"],
           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def test_outcome_commit_hash_is_the_last_commit_touching_the_outcome_file(tmp_path: Path) -> None:
    repo = tmp_path / "metric-hub"
    shutil.copytree(METRIC_HUB, repo)
    outcome_file = repo / "jetstream" / "outcomes" / "firefox_desktop" / "search_depth.toml"
    experiment = parse_experiments(experimenter_payload(designs()), today=ANALYSIS_DATE).experiments[0]
    assert experiment.slug == CUSTOM
    experiment = dataclasses.replace(experiment, outcomes=("search_depth",))

    def resolved_hash() -> str | None:
        [outcome] = MetricHub(repo).resolve(experiment).outcomes
        return outcome.commit_hash

    git(repo, "init", "-q")
    assert resolved_hash() is None  # a work tree, but the file was never committed
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "hub")
    outcome_file.write_text(outcome_file.read_text().replace("Days with several searches.", "Search-heavy days."))
    git(repo, "commit", "-q", "-am", "outcome edited")
    touching = git(repo, "rev-parse", "HEAD")
    (repo / "jetstream" / f"{CUSTOM}.toml").write_text("# unrelated edit\n")
    git(repo, "commit", "-q", "-am", "unrelated")
    assert git(repo, "rev-parse", "HEAD") != touching

    assert resolved_hash() == touching
    metadata = metadata_payload(MetricHub(repo).resolve(experiment), dt.datetime(2026, 10, 2))
    Metadata.model_validate(metadata)
    assert metadata["outcomes"]["search_depth"]["commit_hash"] == touching
