"""The Dagster UI's own API: a real `dagster-webserver` on 127.0.0.1 serving workspace.yaml, on an
instance where two experiments of the small demo sample were analysed. It lists every asset, check,
schedule and sensor a user looks for; shows each experiment's check results side by side; and the
runs the UI's buttons launch ("Execute" on a check for one partition, "Materialize" of every
per-experiment asset for one partition) succeed.

The instance uses Dagster's DefaultRunCoordinator so the webserver launches runs itself: with the
default queued coordinator a run waits for the daemon, which `dagster dev` would add.
"""

import dataclasses
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests

from jetstream_assets.dagster_defs.run_tags import rerun_tags
from jetstream_assets.definitions import defs
from jetstream_assets.sample.designs import DEMO_SRM_SLUG
from jetstream_assets_tests.cheap_metric_hub import write_cheap_metric_hub
from jetstream_assets_tests.fixtures_sample import analyse, load_snapshot
from jetstream_assets_tests.small_sample import (
    TAB_GROUPS,
    TAB_GROUPS_WEEK_READY,
    analysis_resources,
    small_demo_designs,
    write_small_sample,
)

REPO = Path(__file__).resolve().parents[1]
ANALYSED = (DEMO_SRM_SLUG, TAB_GROUPS)
DATE = TAB_GROUPS_WEEK_READY[-1]  # pip-nudge-srm's first weekly window is ready too
PER_EXPERIMENT_ASSETS = [["mozanalysis", "enrollments"], ["mozanalysis", "metrics"], ["mozanalysis", "statistics"],
                         ["bucket", "statistics_json"], ["bucket", "metadata_json"], ["bucket", "errors_json"]]

QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
  }
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes { name location { name } schedules { name } sensors { name } jobs { name } }
    }
  }
}
"""

CHECK_STATUSES = """
query($path: [String!]!) {
  assetNodes(assetKeys: [{path: $path}]) {
    assetChecksOrError { ... on AssetChecks { checks { name partitionStatuses {
      ... on AssetCheckDefaultPartitionStatuses { succeededPartitions failedPartitions }
    } } } }
  }
}
"""

CHECK_EXECUTIONS = """
query($path: [String!]!, $name: String!) {
  assetCheckExecutions(assetKey: {path: $path}, checkName: $name, limit: 20) {
    partition status evaluation { severity description }
  }
}
"""

LAUNCH = """
mutation($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

RUN = """
query($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run { status stepStats { stepKey status } }
  }
}
"""


@dataclasses.dataclass(frozen=True)
class Ui:
    url: str
    location: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _analysed_instance(root: Path) -> dict[str, str]:
    """A DAGSTER_HOME and JETSTREAM_HOME where ANALYSED were re-analysed up to DATE; returns the
    environment the webserver needs to serve them."""
    sample = write_small_sample(root / "home", [d for d in small_demo_designs() if d.slug in ANALYSED])
    hub = write_cheap_metric_hub(root / "metric-hub")
    dagster_home = root / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
    )
    resources = analysis_resources(sample.home, metric_hub_path=str(hub))
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert load_snapshot(instance, resources).success
        for slug in ANALYSED:
            analyse(instance, resources, slug, DATE, rerun=True)
    return {"DAGSTER_HOME": str(dagster_home), "JETSTREAM_HOME": str(sample.home),
            "EXPERIMENTER_URL": str(sample.experimenter_json), "METRIC_HUB_PATH": str(hub)}


def graphql(ui: Ui, query: str, **variables) -> dict:
    response = requests.post(f"{ui.url}/graphql", json={"query": query, "variables": variables}, timeout=120)
    body = response.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("JETSTREAM_", "DAGSTER_")) and k not in ("EXPERIMENTER_URL", "METRIC_HUB_PATH")}
    env |= _analysed_instance(tmp_path_factory.mktemp("ui"))
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{url}/server_info", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dagster-webserver did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.5)
        (repository,) = graphql(Ui(url, ""), QUERY)["repositoriesOrError"]["nodes"]
        yield Ui(url, repository["location"]["name"])
    finally:
        process.terminate()
        process.wait(timeout=30)


def launch(ui: Ui, partition: str, assets: list[list[str]], checks: list[tuple[list[str], str]] | None,
           tags: dict[str, str] | None = None) -> dict:
    """Launch the implicit asset job as the UI does, wait for the run to end, and return it."""
    params = {
        "selector": {
            "repositoryLocationName": ui.location, "repositoryName": "__repository__", "pipelineName": "__ASSET_JOB",
            "assetSelection": [{"path": p} for p in assets],
            "assetCheckSelection": None if checks is None else [
                {"assetKey": {"path": p}, "name": n} for p, n in checks],
        },
        "executionMetadata": {"tags": [{"key": k, "value": v}
                                       for k, v in ({"dagster/partition": partition} | (tags or {})).items()]},
        "mode": "default",
    }
    if defs.executor is None:
        # Dagster's default executor runs each step in its own process (seconds each on a loaded CI
        # machine); the launchpad's in-process choice keeps the test short
        params["runConfigData"] = {"execution": {"config": {"in_process": {}}}}
    launched = graphql(ui, LAUNCH, params=params)["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + 600
    while True:
        run = graphql(ui, RUN, runId=run_id)["runOrError"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED") or time.monotonic() > deadline:
            return run
        time.sleep(1)


def test_server_info(ui):
    assert requests.get(f"{ui.url}/server_info", timeout=10).json()["dagster_webserver_version"] == dg.__version__


def test_graphql_lists_assets_checks_schedules_and_sensors(ui):
    data = graphql(ui, QUERY)
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assert set(nodes) == {
        "monitoring/experimenter_experiments_v1", "monitoring/logs", "monitoring/query_cost_v1",
        "mozanalysis/enrollments", "mozanalysis/metrics", "mozanalysis/statistics",
        "bucket/statistics_json", "bucket/metadata_json", "bucket/errors_json", "bucket/results_html",
    }
    checks = {
        (key, c["name"]): c["blocking"]
        for key, n in nodes.items()
        for c in (n["assetChecksOrError"] or {}).get("checks", [])
    }
    assert checks == {
        ("mozanalysis/enrollments", "sample_ratio"): False,
        ("mozanalysis/enrollments", "enrollment_volume"): False,
        ("mozanalysis/enrollments", "unenrollment_rate"): False,
        ("mozanalysis/statistics", "statistics_completeness"): True,
        ("mozanalysis/statistics", "analysis_errors"): False,
        ("bucket/statistics_json", "export_contract"): True,
        ("monitoring/query_cost_v1", "no_query_above_cost_alert"): False,
    }
    (repository,) = data["repositoriesOrError"]["nodes"]
    assert {s["name"] for s in repository["schedules"]} == {
        "experimenter_snapshot_every_10_minutes", "daily_analysis", "monitoring_daily", "query_cost_daily_schedule",
    }
    assert {s["name"] for s in repository["sensors"]} == {
        "experiment_discovery_sensor", "config_change_sensor", "analysis_run_failure_sensor",
    }
    assert {"experiment_analysis", "experimenter_snapshot", "monitoring_daily", "query_cost_daily"} <= {
        j["name"] for j in repository["jobs"]
    }


def test_each_experiment_shows_its_own_check_results(ui):
    (node,) = graphql(ui, CHECK_STATUSES, path=["mozanalysis", "enrollments"])["assetNodes"]
    statuses = {c["name"]: c["partitionStatuses"] for c in node["assetChecksOrError"]["checks"]}
    # the SRM failure and the pass on another experiment, visible at once
    assert statuses["sample_ratio"] == {"succeededPartitions": [TAB_GROUPS], "failedPartitions": [DEMO_SRM_SLUG]}
    executions = graphql(ui, CHECK_EXECUTIONS, path=["mozanalysis", "enrollments"], name="sample_ratio")
    latest = {}
    for execution in executions["assetCheckExecutions"]:  # newest first
        latest.setdefault(execution["partition"], execution)
    assert latest[DEMO_SRM_SLUG]["status"] == "FAILED"
    assert latest[DEMO_SRM_SLUG]["evaluation"]["severity"] == "ERROR"
    assert "58.0%" in latest[DEMO_SRM_SLUG]["evaluation"]["description"]
    assert latest[TAB_GROUPS]["status"] == "SUCCEEDED"


def test_execute_on_a_check_for_one_partition_succeeds(ui):
    run = launch(ui, DEMO_SRM_SLUG, [], [(["mozanalysis", "enrollments"], "sample_ratio")])
    assert run["status"] == "SUCCESS", run
    assert [s["stepKey"] for s in run["stepStats"]] == ["mozanalysis__enrollments_sample_ratio"]
    executions = graphql(ui, CHECK_EXECUTIONS, path=["mozanalysis", "enrollments"], name="sample_ratio")
    newest = executions["assetCheckExecutions"][0]
    assert newest["partition"] == DEMO_SRM_SLUG and newest["status"] == "FAILED"


def test_materializing_every_per_experiment_asset_of_one_partition_succeeds(ui):
    # the date tag a user can add in the launch dialog keeps the run to the sample's data
    run = launch(ui, TAB_GROUPS, PER_EXPERIMENT_ASSETS, None, rerun_tags(DATE))
    assert run["status"] == "SUCCESS", run
    steps = {s["stepKey"]: s["status"] for s in run["stepStats"]}
    assert set(steps.values()) == {"SUCCESS"}
    # every per-experiment asset and every check on them ran once
    assert len(steps) == len(PER_EXPERIMENT_ASSETS) + 6
