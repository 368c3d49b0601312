"""A UI-launched run against the CLI's run of the same work: one demo experiment's partition, re-analysed.

- CLI, in process: `runner.analyse(..., rerun=True)`, what `jetstream-assets rerun` does per experiment
  (one `execute_in_process` run in an already started process).
- CLI, the command: `jetstream-assets rerun --experiment-slug S --date D` as a user types it (its
  start-up, the Experimenter snapshot refresh, the analysis and the monitoring assets).
- UI: `dagster-webserver -w workspace.yaml` on 127.0.0.1, and the request the UI's "Materialize" on a
  partition sends: GraphQL `launchPipelineExecution` of the implicit asset job with the `dagster/partition`
  tag and no date tag (so the run analyses up to the last day of data, the same windows as the CLI's
  rerun on that day). The instance launches runs directly (`DefaultRunCoordinator`: no daemon, so no
  schedule or sensor launches runs of its own meanwhile); each run gets its own run worker process, as
  under `dagster dev`. Timed from the request to the run's end, as a user waits.
- The 10-minute Experimenter snapshot schedule's job, launched the same way.

Medians of --repeats runs; writes docs/benchmarks/ui_runs.md.

    python benchmarks/bench_ui_runs.py [--repeats 3] [--slug pip-nudge-srm]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import requests

REPO = Path(__file__).resolve().parents[1]
LOCATION = "jetstream_assets"
ANALYSIS_ASSETS = [["mozanalysis", "enrollments"], ["mozanalysis", "metrics"], ["mozanalysis", "statistics"],
                   ["bucket", "statistics_json"], ["bucket", "metadata_json"]]
SNAPSHOT_JOB = "experimenter_snapshot"

LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}"""
RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status startTime endTime } }
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def prepare(root: Path) -> tuple[Path, Path]:
    """The demo's telemetry and Experimenter snapshot in a fresh JETSTREAM_HOME, and a fresh DAGSTER_HOME."""
    from jetstream_assets.sample.demo import write_demo_sample

    home, dagster_home = root / "home", root / "dagster_home"
    home.mkdir()
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        "run_coordinator:\n  module: dagster.core.run_coordinator\n  class: DefaultRunCoordinator\n"
    )
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        write_demo_sample(con, home / "experimenter_v8.json")
    os.environ.update(JETSTREAM_HOME=str(home), DAGSTER_HOME=str(dagster_home),
                      EXPERIMENTER_URL=str(home / "experimenter_v8.json"))
    return home, dagster_home


def cli_seconds(slug: str, date: dt.date, repeats: int) -> list[float]:
    from jetstream_assets.runner import analyse, dagster_instance, experiments_to_analyse, refresh_snapshot

    instance = dagster_instance(os.environ["JETSTREAM_HOME"])
    assert refresh_snapshot(instance).success
    assert experiments_to_analyse(instance, date, [slug]) == [slug]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        outcome = analyse(instance, slug, date, rerun=True)
        times.append(time.perf_counter() - started)
        assert outcome.status == "analysed", outcome
    return times


def cli_command_seconds(slug: str, date: dt.date, repeats: int) -> list[float]:
    cli = str(Path(sys.executable).with_name("jetstream-assets"))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([cli, "rerun", "--experiment-slug", slug, "--date", date.isoformat()], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def import_seconds(repeats: int) -> list[float]:
    """A fresh interpreter importing the code location: what every run worker pays before its first step."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import jetstream_assets.definitions"], check=True)
        times.append(time.perf_counter() - started)
    return times


class Webserver:
    """`dagster-webserver` on a free port of 127.0.0.1, stopped (with its code server) on exit."""

    def __init__(self) -> None:
        self.url = f"http://127.0.0.1:{_free_port()}"
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml", "-h", "127.0.0.1",
             "-p", self.url.rsplit(":", 1)[1]],
            cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def __enter__(self) -> "Webserver":
        deadline = time.monotonic() + 180
        while True:
            try:
                if requests.get(f"{self.url}/server_info", timeout=2).ok and self._location_loaded():
                    return self
            except requests.ConnectionError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.log.seek(0)
                raise RuntimeError(f"dagster-webserver did not start: {self.log.read().decode()[-3000:]}")
            time.sleep(1)

    def _location_loaded(self) -> bool:
        data = self.graphql("{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }")
        entries = data["workspaceOrError"]["locationEntries"]
        return any(e["name"] == LOCATION and e["loadStatus"] == "LOADED" for e in entries)

    def __exit__(self, *exc) -> None:
        os.killpg(self.process.pid, 15)  # the whole session: webserver and code server
        self.process.wait(timeout=60)
        self.log.close()

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                                 timeout=120)
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        return body["data"]

    def launch_and_wait(self, params: dict) -> tuple[float, float]:
        """(seconds from the request to the run's end, the run's own start-to-end seconds)."""
        started = time.time()
        launched = self.graphql(LAUNCH, {"params": params})["launchPipelineExecution"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise RuntimeError(launched)
        run_id = launched["run"]["runId"]
        while True:
            run = self.graphql(RUN, {"runId": run_id})["runOrError"]
            if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
                break
            time.sleep(0.25)
        waited = time.time() - started
        if run["status"] != "SUCCESS":
            raise RuntimeError(f"run {run_id} ended {run['status']}")
        return waited, run["endTime"] - run["startTime"]


def _selector(job: str, assets: list[list[str]] | None = None) -> dict:
    selector = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "pipelineName": job}
    if assets is not None:
        selector["assetSelection"] = [{"path": path} for path in assets]
        selector["assetCheckSelection"] = []
    return selector


def ui_seconds(dev: Webserver, slug: str, repeats: int) -> list[tuple[float, float]]:
    params = {"selector": _selector("__ASSET_JOB", ANALYSIS_ASSETS), "mode": "default", "runConfigData": {},
              "executionMetadata": {"tags": [{"key": "dagster/partition", "value": slug}]}}
    return [dev.launch_and_wait(params) for _ in range(repeats)]


def snapshot_seconds(dev: Webserver, repeats: int) -> list[tuple[float, float]]:
    params = {"selector": _selector(SNAPSHOT_JOB), "mode": "default", "runConfigData": {}}
    return [dev.launch_and_wait(params) for _ in range(repeats)]


def report(slug: str, repeats: int, cli: list[float], command: list[float], imports: list[float],
           ui: list[tuple[float, float]], snapshot: list[tuple[float, float]], load: float) -> str:
    cli_median = statistics.median(cli)
    command_median = statistics.median(command)
    import_median = statistics.median(imports)
    ui_median = statistics.median(w for w, _ in ui)
    ui_run_median = statistics.median(r for _, r in ui)
    snap_median = statistics.median(w for w, _ in snapshot)
    snap_run_median = statistics.median(r for _, r in snapshot)

    def seconds(values) -> str:
        return ", ".join(f"{v:.1f}" for v in values)

    return f"""# UI-launched runs vs the CLI

`python benchmarks/bench_ui_runs.py --repeats {repeats} --slug {slug}` on {dt.date.today()}.
Machine: {_machine()}; 1-minute load average {load:.1f} when it finished (other work shared the cores,
which inflates every number alike: compare the ratios).

One demo experiment (`{slug}`, the full demo telemetry) re-analysed up to the last day of data:
enrollments (cached), metrics, statistics and the statistics and metadata exports.

| path | median (s) | runs (s) |
|---|---|---|
| CLI in process: `runner.analyse(rerun=True)`, as `jetstream-assets rerun` per experiment | {cli_median:.1f} | {seconds(cli)} |
| CLI command: `jetstream-assets rerun --experiment-slug {slug} --date ...` | {command_median:.1f} | {seconds(command)} |
| a fresh interpreter importing `jetstream_assets.definitions` | {import_median:.1f} | {seconds(imports)} |
| UI: `launchPipelineExecution` on `dagster-webserver`, request to end of run | {ui_median:.1f} | {seconds(w for w, _ in ui)} |
| UI: the same runs, the run's own start to end | {ui_run_median:.1f} | {seconds(r for _, r in ui)} |
| UI: `{SNAPSHOT_JOB}` job (the 10-minute schedule's run), request to end | {snap_median:.1f} | {seconds(w for w, _ in snapshot)} |
| UI: `{SNAPSHOT_JOB}`, the run's own start to end | {snap_run_median:.1f} | {seconds(r for _, r in snapshot)} |

**Ratio UI / CLI command: {ui_median / command_median:.2f}; UI / CLI in process: {ui_median / cli_median:.2f};
the run's own time / CLI in process: {ui_run_median / cli_median:.2f}** (target: at most 1.5).

The steps of a UI run now run in one process (`Definitions(executor=in_process_executor)`), so the run
itself takes what the CLI's takes. What is left is the run worker's start-up: Dagster launches every run
in a fresh interpreter (the code server spawns it) that imports the code location before its first
step, as the CLI command does once. Before, Dagster's default multiprocess executor also started a
process per step, each importing the code location again: 126 s against the CLI's 9 s for one demo
experiment (issue 12). The snapshot job's run is seconds; its request-to-end time is that start-up.
The lever left is that import: `python -X importtime -c "import jetstream_assets.definitions"` puts
scipy.stats, mozilla_nimbus_schemas and dagster_gcp (with its Dataproc client) among the largest parts;
importing them where they are used would shorten every UI run and every CLI command alike.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--slug", default="pip-nudge-srm")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks" / "ui_runs.md")
    args = parser.parse_args()
    from jetstream_assets.sample.designs import DEMO_ANALYSIS_DATE

    # the webserver may still be flushing its run history as it stops: leftovers are not an error
    with tempfile.TemporaryDirectory(prefix="bench_ui_runs_", ignore_cleanup_errors=True) as root:
        prepare(Path(root))
        cli = cli_seconds(args.slug, DEMO_ANALYSIS_DATE, args.repeats)
        print(f"CLI: {cli}", flush=True)
        command = cli_command_seconds(args.slug, DEMO_ANALYSIS_DATE, args.repeats)
        print(f"CLI command: {command}", flush=True)
        imports = import_seconds(args.repeats)
        print(f"imports: {imports}", flush=True)
        with Webserver() as dev:
            ui = ui_seconds(dev, args.slug, args.repeats)
            print(f"UI: {ui}", flush=True)
            snapshot = snapshot_seconds(dev, args.repeats)
            print(f"snapshot: {snapshot}", flush=True)
    text = report(args.slug, args.repeats, cli, command, imports, ui, snapshot, os.getloadavg()[0])
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
