"""The Dagster UI's own API: a real `dagster-webserver` on 127.0.0.1 serving workspace.yaml lists every
asset, check, schedule and sensor a user looks for in the UI."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import requests

REPO = Path(__file__).resolve().parents[1]

QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
  }
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes { schedules { name } sensors { name } jobs { name } }
    }
  }
}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "DAGSTER_HOME": str(home), "JETSTREAM_HOME": str(tmp_path_factory.mktemp("home"))}
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
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_server_info(server):
    assert requests.get(f"{server}/server_info", timeout=10).json()["dagster_webserver_version"] == dg.__version__


def test_graphql_lists_assets_checks_schedules_and_sensors(server):
    response = requests.post(f"{server}/graphql", json={"query": QUERY}, timeout=60)
    data = response.json()["data"]
    nodes = {"/".join(n["assetKey"]["path"]): n for n in data["assetNodes"]}
    assert set(nodes) == {
        "monitoring/experimenter_experiments_v1", "monitoring/logs", "monitoring/query_cost_v1",
        "mozanalysis/enrollments", "mozanalysis/metrics", "mozanalysis/statistics",
        "bucket/statistics_json", "bucket/metadata_json", "bucket/errors_json",
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
        ("mozanalysis/statistics", "statistics_completeness"): False,
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
