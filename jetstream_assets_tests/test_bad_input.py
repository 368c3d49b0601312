"""Contract §6 promises on bad input: a broken Experimenter, and experiments that cannot be (fully)
analysed, next to a healthy one that always is. The experiment scenarios share one `jetstream-assets
run` over six experiments with the same dates (first weekly window ready on RUN_DATE)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from mozilla_nimbus_schemas.jetstream import AnalysisErrors

from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.sample.experimenter_payload import experimenter_payload
from jetstream_assets.settings import bundled_metric_hub
from jetstream_assets_tests.fixtures_sample import BackgroundCommand, cli_env, load_snapshot, new_dagster_home
from jetstream_assets_tests.small_sample import (
    SmallSample,
    analysis_resources,
    like_tab_groups,
    log_rows,
    query,
    relations,
    small_demo_designs,
    table_contents,
    write_small_sample,
)
RUN_DATE = "2026-10-04"

HEALTHY = "healthy-experiment"
NO_ENROLLMENTS = "no-enrollments-yet"
UNKNOWN_BRANCH = "unknown-branch-experiment"
ODD_SLUG = "odd.slug v2"
BROKEN_METRIC = "broken-metric-experiment"
SYNTAX_ERROR = "config-syntax-error"

BROKEN_METRIC_CONFIG = """\
[metrics]
weekly = ["broken_metric"]

[metrics.broken_metric]
select_expression = "SUM(no_such_column)"
data_source = "clients_daily"
statistics = { bootstrap_mean = {} }
"""
# line 5 has the error
SYNTAX_ERROR_CONFIG = """\
[experiment]
enrollment_period = 8

[metrics]
weekly = ["active_hours",,]
"""


# --- one `run` over experiments with bad input next to a healthy one ------------------------------


@dataclass
class BadInputRun:
    sample: SmallSample
    metric_hub: Path
    done: subprocess.CompletedProcess

    def logs(self, slug: str, level: str):
        rows = log_rows(self.sample.home, slug)
        return rows[rows["log_level"] == level]

    def statistics(self, table_slug: str):
        return table_contents(self.sample.home, f"statistics_{table_slug}_week_1")

    def errors_file(self, table_slug: str) -> list[dict]:
        payload = json.loads((self.sample.bucket / "errors" / f"errors_{table_slug}.json").read_text())
        AnalysisErrors.model_validate(payload)
        return payload


@pytest.fixture(scope="module", autouse=True)
def bad_input_command(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[SmallSample, Path, BackgroundCommand]]:
    """Starts the run when the module starts; the Experimenter tests run meanwhile."""
    root = tmp_path_factory.mktemp("bad_input")
    sample = write_small_sample(root / "home", [
        like_tab_groups(HEALTHY),
        like_tab_groups(NO_ENROLLMENTS, clients=0),
        like_tab_groups(UNKNOWN_BRANCH, unknown_branch_clients=40),
        like_tab_groups(ODD_SLUG),
        like_tab_groups(BROKEN_METRIC),
        like_tab_groups(SYNTAX_ERROR),
    ])
    hub = root / "metric-hub"
    shutil.copytree(bundled_metric_hub(), hub)
    (hub / "jetstream" / f"{BROKEN_METRIC}.toml").write_text(BROKEN_METRIC_CONFIG)
    (hub / "jetstream" / f"{SYNTAX_ERROR}.toml").write_text(SYNTAX_ERROR_CONFIG)
    env = cli_env(sample.home, new_dagster_home(root / "dagster_home"), str(sample.experimenter_json),
                  METRIC_HUB_PATH=str(hub))
    command = BackgroundCommand(["run", "--date", RUN_DATE], env)
    yield sample, hub, command
    command.stop()


@pytest.fixture
def bad_input_run(bad_input_command: tuple[SmallSample, Path, BackgroundCommand]) -> BadInputRun:
    sample, hub, command = bad_input_command
    return BadInputRun(sample, hub, command.result())


# --- Experimenter unreachable or answering garbage -----------------------------------------------


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api/v8/experiments/"


def snapshot_rows(home: Path) -> list[dict]:
    """The snapshot table's rows as JSON-able records (it has nested columns), in slug order."""
    frame = query(home, "SELECT * FROM monitoring.experimenter_experiments_v1 ORDER BY normandy_slug")
    return json.loads(frame.to_json(orient="records"))


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    [failure] = result.get_step_failure_events()
    return failure.step_failure_data.error.to_string()


@pytest.mark.parametrize("problem", ["closed port", "garbage", "not an array"])
def test_broken_experimenter_fails_the_snapshot_and_keeps_what_was_there(
    problem: str, experimenter_server, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    payload = experimenter_payload(small_demo_designs())
    slugs = [e["slug"] for e in payload]
    experimenter_server.respond(payload)
    assert load_snapshot(instance, analysis_resources(tmp_path, experimenter_url=experimenter_server.url)).success
    instance.add_dynamic_partitions(experiments_partitions.name, slugs)
    before = snapshot_rows(tmp_path)

    if problem == "closed port":
        url = closed_port_url()
    else:
        url = experimenter_server.url
        body = "<html>Bad gateway</html>" if problem == "garbage" else '{"detail": "maintenance"}'
        experimenter_server.respond_raw(200, body, content_type="application/json")
    result = load_snapshot(instance, analysis_resources(tmp_path, experimenter_url=url))

    assert not result.success
    assert url in failure_text(result)
    after = snapshot_rows(tmp_path)
    assert len(after) == len(payload)
    assert after == before
    assert sorted(instance.get_dynamic_partitions(experiments_partitions.name)) == sorted(slugs)


def outcome_line(run: BadInputRun, slug: str) -> str:
    """The command's summary line of `slug`: `<status> <slug>  (<detail>)`."""
    for line in run.done.stdout.splitlines():
        status, _, rest = line.strip().partition(" ")
        if rest.strip().startswith(slug) and status in ("analysed", "skipped", "failed"):
            return line
    raise AssertionError(f"no outcome for {slug!r} in:\n{run.done.stdout}\n{run.done.stderr[-3000:]}")


def status(run: BadInputRun, slug: str) -> str:
    return outcome_line(run, slug).split()[0]


def test_healthy_experiment_is_analysed_whatever_the_others_do(bad_input_run: BadInputRun) -> None:
    assert bad_input_run.done.returncode == 1, "a failed experiment makes the command fail"
    assert status(bad_input_run, HEALTHY) == "analysed"
    stats = bad_input_run.statistics("healthy_experiment")
    assert {"mean", "binomial", "count"} <= set(stats["statistic"])
    assert bad_input_run.logs(HEALTHY, "ERROR").empty
    assert (bad_input_run.sample.bucket / "statistics" / "statistics_healthy_experiment_weekly.json").is_file()


def test_no_enrollments_yet_is_logged(bad_input_run: BadInputRun) -> None:
    warnings = bad_input_run.logs(NO_ENROLLMENTS, "WARNING")
    assert warnings["message"].str.contains("no enrollments").any()
    clients = query(bad_input_run.sample.home, "SELECT COUNT(*) AS n FROM mozanalysis.enrollments_no_enrollments_yet")
    assert clients["n"][0] == 0
    assert any("no enrollments" in e["message"] for e in bad_input_run.errors_file("no_enrollments_yet"))


def test_unknown_branch_is_warned_and_left_out_of_the_statistics(bad_input_run: BadInputRun) -> None:
    warnings = bad_input_run.logs(UNKNOWN_BRANCH, "WARNING")
    assert warnings["message"].str.contains("unknown-branch").any()
    enrolled = query(
        bad_input_run.sample.home,
        "SELECT branch, COUNT(*) AS n FROM mozanalysis.enrollments_unknown_branch_experiment GROUP BY branch",
    )
    assert dict(zip(enrolled["branch"], enrolled["n"]))["unknown-branch"] == 40  # kept in enrollments
    stats = bad_input_run.statistics("unknown_branch_experiment")
    assert set(stats["branch"]) == {"control", "treatment"}
    assert set(stats["comparison_to_branch"].dropna()) == {"control", "treatment"}
    counts = stats[(stats["statistic"] == "count") & (stats["analysis_basis"] == "enrollments")]
    assert counts["point"].sum() == 400


def test_odd_slug_is_analysed_under_its_sanitised_name(bad_input_run: BadInputRun) -> None:
    warnings = bad_input_run.logs(ODD_SLUG, "WARNING")
    assert warnings["message"].str.contains("odd_slug_v2").any()
    assert bad_input_run.logs(ODD_SLUG, "ERROR").empty, bad_input_run.logs(ODD_SLUG, "ERROR")["message"].tolist()
    tables = relations(bad_input_run.sample.home)
    assert {"enrollments_odd_slug_v2", "statistics_odd_slug_v2_week_1", "statistics_odd_slug_v2_weekly"} <= set(tables)
    assert (bad_input_run.sample.bucket / "statistics" / "statistics_odd_slug_v2_weekly.json").is_file()


def test_odd_slug_never_stops_the_others(bad_input_run: BadInputRun) -> None:
    assert bad_input_run.logs(ODD_SLUG, "WARNING")["message"].str.contains("odd_slug_v2").any()
    for slug in (HEALTHY, UNKNOWN_BRANCH):
        assert status(bad_input_run, slug) == "analysed"


def test_failing_metric_sql_is_logged_and_the_other_metrics_have_statistics(bad_input_run: BadInputRun) -> None:
    errors = bad_input_run.logs(BROKEN_METRIC, "ERROR")
    per_metric = errors[errors["metric"].notna()]
    assert set(per_metric["metric"]) == {"broken_metric"}  # no other metric failed
    assert per_metric["message"].str.contains("broken_metric").all()
    assert set(per_metric["analysis_basis"]) == {"enrollments", "exposures"}
    stats = bad_input_run.statistics("broken_metric_experiment")
    assert "broken_metric" not in set(stats["metric"])
    assert {"active_hours", "uri_count", "search_count", "days_of_use", "searched"} <= set(stats["metric"])
    assert stats.loc[stats["metric"] == "active_hours", "point"].notna().all()
    exported = bad_input_run.errors_file("broken_metric_experiment")
    assert {e["metric"] for e in exported if e["log_level"] == "ERROR" and e["metric"]} == {"broken_metric"}


def test_config_syntax_error_fails_the_step_with_file_and_line(bad_input_run: BadInputRun) -> None:
    location = f"{bad_input_run.metric_hub / 'jetstream' / SYNTAX_ERROR}.toml:5"
    assert status(bad_input_run, SYNTAX_ERROR) == "failed"
    assert location in outcome_line(bad_input_run, SYNTAX_ERROR)
    errors = bad_input_run.logs(SYNTAX_ERROR, "ERROR")
    assert len(errors) >= 1
    assert errors["message"].str.contains(location, regex=False).all()
    assert set(errors["exception_type"]) == {"ConfigError"}
    assert any(location in e["message"] for e in bad_input_run.errors_file("config_syntax_error"))
    assert not any(t.startswith("statistics_config_syntax_error") for t in relations(bad_input_run.sample.home))
