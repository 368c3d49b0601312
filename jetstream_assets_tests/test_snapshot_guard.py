"""The Experimenter snapshot never goes backwards by accident: an answer that parses to nothing, or
that lacks most of the live experiments, or that never finishes arriving, keeps the last good
snapshot and fails the snapshot step, and `jetstream-assets run` exits non-zero.

Everything is real: an HTTP server on 127.0.0.1, the DuckDB warehouse, Dagster's executor and the
CLI as a subprocess."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import dagster as dg
import pytest

from jetstream_assets.dagster_defs.resources import ExperimenterResource, WarehouseResource
from jetstream_assets.experimenter.client import ExperimenterError, fetch_experimenter_payload
from jetstream_assets.experimenter.parse import parse_experiments
from jetstream_assets.experimenter.snapshot_guard import SnapshotRefused, check_snapshot_change
from jetstream_assets.sample.designs import BranchDesign, ExperimentDesign
from jetstream_assets.sample.experimenter_payload import experimenter_payload
from jetstream_assets_tests.fixtures_sample import BackgroundCommand, cli_env, load_snapshot, new_dagster_home
from jetstream_assets_tests.http_server import StubHttpServer
from jetstream_assets_tests.small_sample import snapshot_rows

TODAY = dt.datetime.now(dt.timezone.utc).date()
LIVE = [f"live-experiment-{i}" for i in range(1, 5)]
ENDED = "ended-experiment"
TRICKLE_INTERVAL = 0.05  # seconds per byte: the small payload would take minutes to arrive
DEADLINE = "1"  # EXPERIMENTER_FETCH_DEADLINE_SECONDS of the trickle scenarios


def design(slug: str, *, end: dt.date | None = None) -> ExperimentDesign:
    start = TODAY - dt.timedelta(days=30)
    return ExperimentDesign(
        slug=slug, start_date=start, enrollment_end_date=start + dt.timedelta(days=6), end_date=end,
        proposed_enrollment=7, branches=(BranchDesign("control"), BranchDesign("treatment")), n_clients=0,
        reference_branch="control",
    )


GOOD_DESIGNS = [*(design(s) for s in LIVE), design(ENDED, end=TODAY - dt.timedelta(days=3))]
GOOD_PAYLOAD = experimenter_payload(GOOD_DESIGNS)


def all_bad(payload: list[dict]) -> list[dict]:
    """The same records, each with a malformed end date."""
    return [record | {"endDate": "next week"} for record in payload]


def only(slugs: list[str]) -> list[dict]:
    return [record for record in GOOD_PAYLOAD if record["slug"] in slugs]


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    [failure] = result.get_step_failure_events()
    return failure.step_failure_data.error.to_string()


# --- the fetch's wall-clock deadline -------------------------------------------------------------


def test_trickling_server_ends_at_the_deadline_naming_the_url(experimenter_server: StubHttpServer) -> None:
    experimenter_server.respond_trickle(GOOD_PAYLOAD, TRICKLE_INTERVAL)
    body_bytes = len(json.dumps(GOOD_PAYLOAD))

    with pytest.raises(ExperimenterError) as err:
        fetch_experimenter_payload(experimenter_server.url, timeout=30, deadline_seconds=float(DEADLINE))

    message = str(err.value)
    assert experimenter_server.url in message
    assert "no complete answer within the 1s deadline" in message and "still arriving" in message
    # every byte arrived well inside the 30 s per-read timeout: only the deadline can have ended it
    assert 0 < experimenter_server.body_bytes_sent < body_bytes / 4


def test_retries_never_outlast_the_deadline(experimenter_server: StubHttpServer) -> None:
    experimenter_server.respond_raw(503, "busy")

    with pytest.raises(ExperimenterError, match=r"within the 1s deadline \(HTTP 503.*after 1 attempt"):
        fetch_experimenter_payload(experimenter_server.url, attempts=5, retry_delay=60, deadline_seconds=1)

    assert experimenter_server.requests == 1  # the 60 s back-off was cut to the deadline, no retry after it


# --- the guard itself ----------------------------------------------------------------------------


def parsed(payload: list[dict]):
    return parse_experiments(payload, today=TODAY).experiments


def test_guard_counts_only_live_experiments_gone_from_the_answer() -> None:
    previous = {e.slug: e for e in parsed(GOOD_PAYLOAD)}
    # the ended one and half of the live ones gone: at the limit, accepted
    check_snapshot_change(previous, parsed(only(LIVE[:2])), records=2)
    with pytest.raises(SnapshotRefused, match=r"3 of the 4 live experiments .* \(75% > the allowed 50%"):
        check_snapshot_change(previous, parsed(only(LIVE[:1])), records=1)
    check_snapshot_change(previous, parsed(only(LIVE[:1])), records=1, max_live_loss=1.0)
    check_snapshot_change({}, parsed(only(LIVE[:1])), records=1)  # a first load has nothing to lose


@pytest.mark.parametrize("answer", [[], all_bad(GOOD_PAYLOAD)], ids=["empty", "all bad"])
def test_guard_refuses_an_answer_with_no_usable_experiment(answer: list[dict]) -> None:
    with pytest.raises(SnapshotRefused, match=rf"no usable experiment \({len(answer)} records"):
        check_snapshot_change({}, parsed(answer), records=len(answer), max_live_loss=1.0)


@pytest.mark.parametrize("field, value, setting", [
    ("max_live_loss", "half", "JETSTREAM_SNAPSHOT_MAX_LIVE_LOSS"),
    ("max_live_loss", "1.5", "JETSTREAM_SNAPSHOT_MAX_LIVE_LOSS"),
    ("fetch_deadline_seconds", "0", "EXPERIMENTER_FETCH_DEADLINE_SECONDS"),
])
def test_a_bad_guard_setting_is_named(field: str, value: str, setting: str) -> None:
    resource = ExperimenterResource(**{field: value})
    with pytest.raises(dg.Failure, match=rf"{setting}='{value}' is not a number"):
        resource.live_loss_limit if field == "max_live_loss" else resource.deadline_seconds  # noqa: B018


# --- the snapshot step, through Dagster ----------------------------------------------------------

SCENARIOS = {
    "empty array": ([], "no usable experiment (0 records"),
    "all records bad": (all_bad(GOOD_PAYLOAD), f"no usable experiment ({len(GOOD_PAYLOAD)} records"),
    "75% of live lost": (only([LIVE[0], ENDED]), "3 of the 4 live experiments of the last snapshot are missing"),
    "trickling server": (GOOD_PAYLOAD, "no complete answer within the 1s deadline"),
}


def serve(server: StubHttpServer, scenario: str) -> None:
    answer, _ = SCENARIOS[scenario]
    if scenario == "trickling server":
        server.respond_trickle(answer, TRICKLE_INTERVAL)
    else:
        server.respond(answer)


def resources(home: Path, url: str) -> dict:
    return {
        "warehouse": WarehouseResource(home=str(home)),
        "experimenter": ExperimenterResource(url=url, fetch_deadline_seconds=DEADLINE),
    }


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_bad_answer_fails_the_snapshot_step_and_keeps_the_last_good_snapshot(
    scenario: str, experimenter_server: StubHttpServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    experimenter_server.respond(GOOD_PAYLOAD)
    assert load_snapshot(instance, resources(tmp_path, experimenter_server.url)).success
    before = snapshot_rows(tmp_path)
    assert [r["normandy_slug"] for r in before] == sorted([*LIVE, ENDED])

    serve(experimenter_server, scenario)
    result = load_snapshot(instance, resources(tmp_path, experimenter_server.url))

    assert not result.success
    text = failure_text(result)
    assert experimenter_server.url in text and SCENARIOS[scenario][1] in text
    assert snapshot_rows(tmp_path) == before


def test_all_bad_records_are_each_reported_before_the_step_fails(
    experimenter_server: StubHttpServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    experimenter_server.respond(all_bad(GOOD_PAYLOAD))
    result = load_snapshot(instance, resources(tmp_path, experimenter_server.url))
    warnings = [
        e.user_message for e in instance.all_logs(result.run_id)
        if e.level == logging.WARNING and "Experimenter record skipped" in e.user_message
    ]
    assert len(warnings) == len(GOOD_PAYLOAD)
    assert all("endDate" in w and experimenter_server.url in w for w in warnings)
    assert "no usable experiment" in failure_text(result)


def test_answer_within_the_allowed_loss_replaces_the_snapshot(
    experimenter_server: StubHttpServer, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    experimenter_server.respond(GOOD_PAYLOAD)
    assert load_snapshot(instance, resources(tmp_path, experimenter_server.url)).success
    experimenter_server.respond(only(LIVE[:2]))  # half the live ones and the ended one gone
    assert load_snapshot(instance, resources(tmp_path, experimenter_server.url)).success
    assert [r["normandy_slug"] for r in snapshot_rows(tmp_path)] == LIVE[:2]


# --- `jetstream-assets run` ----------------------------------------------------------------------

CLI_SCENARIOS = ["empty array", "all records bad", "trickling server"]


def test_run_exits_non_zero_and_keeps_the_snapshot(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    servers = {scenario: StubHttpServer() for scenario in CLI_SCENARIOS}
    try:
        commands, before = {}, {}
        for scenario, server in servers.items():
            home = tmp_path / scenario.replace(" ", "-")
            server.respond(GOOD_PAYLOAD)
            assert load_snapshot(instance, resources(home, server.url)).success
            before[scenario] = snapshot_rows(home)
            serve(server, scenario)
            env = cli_env(home, new_dagster_home(home / "dagster_home"), server.url,
                          EXPERIMENTER_FETCH_DEADLINE_SECONDS=DEADLINE)
            # a date before every start: nothing to analyse, so only the snapshot decides the exit code
            commands[scenario] = (home, BackgroundCommand(["run", "--date", "2020-01-01"], env))
        for scenario, (home, command) in commands.items():
            done = command.result()
            assert done.returncode == 1, (scenario, done.stdout, done.stderr[-2000:])
            assert "Experimenter snapshot NOT refreshed" in done.stdout, scenario
            assert snapshot_rows(home) == before[scenario], scenario
    finally:
        for server in servers.values():
            server.close()
