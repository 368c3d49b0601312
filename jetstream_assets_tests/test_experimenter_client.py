"""Experimenter v8: fetching (real HTTP and files), parsing, and the monitoring snapshot rows."""

from __future__ import annotations

import datetime as dt
import json
import socket
import traceback
from pathlib import Path
from typing import Any

import duckdb
import pytest

from jetstream_assets.core.schema import Field, column_names, duckdb_type
from jetstream_assets.experimenter.client import (
    ExperimenterError,
    display_source,
    fetch_experimenter_payload,
)
from jetstream_assets.experimenter.models import Branch
from jetstream_assets.experimenter.parse import (
    ExperimentParseError,
    derive_status,
    parse_experiment,
    parse_experiments,
)
from jetstream_assets.experimenter.snapshot import EXPERIMENTER_EXPERIMENTS_SCHEMA, snapshot_rows
from jetstream_assets_tests.http_server import StubHttpServer, serve_json

TODAY = dt.date(2025, 6, 10)


def v8_record(slug: str = "newtab-tiles-layout-v2", **overrides: Any) -> dict[str, Any]:
    """A realistic Experimenter v8 record (reference §C3 plus the v8 additions)."""
    record: dict[str, Any] = {
        "schemaVersion": "1.12.0",
        "slug": slug,
        "id": slug,
        "appName": "firefox_desktop",
        "appId": "firefox-desktop",
        "channel": "release",
        "channels": ["release"],
        "userFacingName": "New Tab Tiles Layout v2",
        "isEnrollmentPaused": True,
        "isRollout": False,
        "isFirefoxLabsOptIn": False,
        "bucketConfig": {
            "randomizationUnit": "group_id",
            "namespace": "firefox-desktop-newtab-release-1",
            "start": 1200,
            "count": 1000,
            "total": 10000,
        },
        "featureIds": ["newtab"],
        "outcomes": [{"slug": "newtab_visibility", "priority": "primary"}],
        "segments": [{"slug": "new_users"}],
        "branches": [
            {"slug": "control", "ratio": 1, "features": [{"featureId": "newtab", "value": {}}]},
            {
                "slug": "treatment",
                "ratio": 1,
                "features": [{"featureId": "newtab", "value": {"tilesPerRow": 8}}],
            },
        ],
        "targeting": "(browserSettings.update.channel == \"release\")",
        "startDate": "2025-05-20",
        "enrollmentEndDate": "2025-06-03",
        "endDate": "2025-07-01",
        "proposedDuration": 42,
        "proposedEnrollment": 14,
        "referenceBranch": "control",
        "publishedDate": "2025-05-19T17:02:11Z",
    }
    record.update(overrides)
    return record


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- fetching ---------------------------------------------------------------------------


def test_fetch_over_http_returns_the_array(experimenter_server: StubHttpServer) -> None:
    payload = [v8_record("a"), v8_record("b")]
    experimenter_server.respond(payload)

    assert experimenter_server.url.endswith("/api/v8/experiments/")
    assert fetch_experimenter_payload(experimenter_server.url) == payload
    assert experimenter_server.requests == 1


def test_serve_json_helper_serves_outside_fixtures() -> None:
    with serve_json([v8_record("a")]) as server:
        assert [r["slug"] for r in fetch_experimenter_payload(server.url)] == ["a"]
        with pytest.raises(ExperimenterError, match="HTTP 404"):
            fetch_experimenter_payload(server.url.replace("v8", "v6"), retry_delay=0)


def test_fetch_from_local_path_and_file_url(tmp_path: Path) -> None:
    payload = [v8_record("from-file")]
    path = tmp_path / "experiments.json"
    path.write_text(json.dumps(payload))

    assert fetch_experimenter_payload(str(path)) == payload
    assert fetch_experimenter_payload(path.as_uri()) == payload


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ExperimenterError, match="file not found") as err:
        fetch_experimenter_payload(str(missing))
    assert str(missing) in str(err.value)


def test_unreachable_host_is_retried_then_reported() -> None:
    url = f"http://127.0.0.1:{closed_port()}/api/v8/experiments/"
    with pytest.raises(ExperimenterError) as err:
        fetch_experimenter_payload(url, timeout=2, attempts=2, retry_delay=0)
    message = str(err.value)
    assert url in message
    assert "unreachable" in message and "2 attempt" in message


def test_silent_server_times_out() -> None:
    with socket.socket() as listener:
        # The kernel accepts the connection but nobody ever answers.
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/api/v8/experiments/"
        with pytest.raises(ExperimenterError, match=r"timed out after 0.2s \(gave up after 2"):
            fetch_experimenter_payload(url, timeout=0.2, attempts=2, retry_delay=0)


def test_http_500_is_retried_up_to_attempts(experimenter_server: StubHttpServer) -> None:
    experimenter_server.respond_raw(500, "internal error")
    with pytest.raises(ExperimenterError, match="HTTP 500") as err:
        fetch_experimenter_payload(experimenter_server.url, attempts=3, retry_delay=0)
    assert experimenter_server.url in str(err.value)
    assert experimenter_server.requests == 3


def test_transient_5xx_recovers_on_retry(experimenter_server: StubHttpServer) -> None:
    experimenter_server.queue_raw(503, "busy")
    experimenter_server.respond([v8_record("a")])

    payload = fetch_experimenter_payload(experimenter_server.url, attempts=2, retry_delay=0)

    assert [r["slug"] for r in payload] == ["a"]
    assert experimenter_server.requests == 2


def test_http_4xx_is_not_retried(experimenter_server: StubHttpServer) -> None:
    experimenter_server.respond_raw(403, "forbidden")
    with pytest.raises(ExperimenterError, match="HTTP 403"):
        fetch_experimenter_payload(experimenter_server.url, attempts=3, retry_delay=0)
    assert experimenter_server.requests == 1


def test_garbage_body_is_not_json(experimenter_server: StubHttpServer) -> None:
    experimenter_server.respond_raw(200, "<html>maintenance</html>", content_type="text/html")
    with pytest.raises(ExperimenterError, match="not JSON") as err:
        fetch_experimenter_payload(experimenter_server.url)
    assert experimenter_server.url in str(err.value)


def test_json_object_instead_of_array(experimenter_server: StubHttpServer) -> None:
    experimenter_server.respond({"detail": "paginated?", "results": []})
    with pytest.raises(ExperimenterError, match="expected a JSON array.*got a JSON object") as err:
        fetch_experimenter_payload(experimenter_server.url)
    assert experimenter_server.url in str(err.value)


def test_messages_never_carry_credentials_or_query(experimenter_server: StubHttpServer) -> None:
    experimenter_server.respond_raw(500, "boom")
    secret_url = experimenter_server.url.replace("http://", "http://bob:hunter2@") + "?token=s3cr3t"

    with pytest.raises(ExperimenterError) as err:
        fetch_experimenter_payload(secret_url, attempts=1)

    message = str(err.value)
    assert "hunter2" not in message and "s3cr3t" not in message and "bob" not in message
    assert experimenter_server.url in message
    assert not _leaks_secret(err.value)


def test_unreachable_message_hides_credentials() -> None:
    url = f"http://bob:hunter2@127.0.0.1:{closed_port()}/api/v8/experiments/?token=s3cr3t"
    with pytest.raises(ExperimenterError) as err:
        fetch_experimenter_payload(url, timeout=2, attempts=1)
    assert "unreachable" in str(err.value)
    assert not _leaks_secret(err.value)


def _leaks_secret(error: BaseException) -> bool:
    """Whether the full traceback (chained exceptions included) repeats the URL's secrets."""
    text = "".join(traceback.format_exception(error))
    return "hunter2" in text or "s3cr3t" in text


def test_display_source_strips_userinfo_query_and_fragment() -> None:
    assert (
        display_source("https://u:p@exp.example:8443/api/v8/experiments/?k=v#x")
        == "https://exp.example:8443/api/v8/experiments/"
    )
    assert display_source("/data/experiments.json") == "/data/experiments.json"


def test_unsupported_scheme_is_an_experimenter_error() -> None:
    with pytest.raises(ExperimenterError, match="unsupported URL scheme 'ftp'"):
        fetch_experimenter_payload("ftp://example.org/api/v8/experiments/")


# --- parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("end_date", "status"),
    [(None, "Live"), ("2025-06-11", "Live"), ("2025-06-10", "Complete"), ("2025-06-09", "Complete")],
)
def test_status_rule(end_date: str | None, status: str) -> None:
    """Jetstream: "Live" while the end date's midnight is not before now, so the end date itself is Complete."""
    experiment = parse_experiment(v8_record(endDate=end_date), today=TODAY)
    assert experiment.status == status
    assert derive_status(experiment.end_date, TODAY) == status


@pytest.mark.parametrize(("app_name", "app_id", "channel", "dataset"), [
    ("fenix", "org.mozilla.fenix", "nightly", "org_mozilla_fenix"),
    ("fenix", None, "beta", "org_mozilla_firefox_beta"),
    ("fenix", None, None, "fenix"),
    ("firefox_ios", None, "beta", "org_mozilla_ios_firefoxbeta"),
    ("focus_ios", "org.mozilla.ios.Focus", "release", "org_mozilla_ios_focus"),
    (None, None, "nightly", "firefox_desktop"),
])
def test_missing_app_id_is_the_apps_id_on_its_channel(app_name, app_id, channel, dataset) -> None:
    """The dataset names app and channel (Jetstream: lower-cased appId, non-alphanumerics as `_`)."""
    e = parse_experiment(v8_record(appName=app_name, appId=app_id, channel=channel), today=TODAY)
    assert e.dataset == dataset and e.events_stream == f"{dataset}.events_stream"


def test_parse_maps_every_field() -> None:
    record = v8_record()
    e = parse_experiment(record, today=TODAY)

    assert e.slug == "newtab-tiles-layout-v2"
    assert e.branches == (Branch("control", 1.0), Branch("treatment", 1.0))
    assert (e.start_date, e.enrollment_end_date, e.end_date) == (
        dt.date(2025, 5, 20),
        dt.date(2025, 6, 3),
        dt.date(2025, 7, 1),
    )
    assert e.proposed_enrollment == 14 and e.reference_branch == "control"
    assert (e.app_name, e.app_id, e.channel, e.channels) == (
        "firefox_desktop",
        "firefox-desktop",
        "release",
        ("release",),
    )
    assert e.outcomes == ("newtab_visibility",) and e.segments == ("new_users",)
    assert e.is_enrollment_paused and not e.is_rollout and not e.is_firefox_labs_opt_in
    assert not e.is_high_population
    assert e.experiment_type == "v6"
    assert e.bucket_config.randomization_unit == "group_id"
    assert (e.bucket_config.count, e.bucket_config.total) == (1000, 10000)
    assert e.feature_ids == ("newtab",)
    assert e.raw == record and e.raw is not record


def test_app_defaults_and_optional_fields_absent() -> None:
    record = {"slug": "bare", "branches": [{"slug": "control", "ratio": 1}]}
    e = parse_experiment(record, today=TODAY)
    assert (e.app_name, e.app_id) == ("firefox_desktop", "firefox-desktop")
    assert e.start_date is None and e.status == "Live"
    assert e.outcomes == () and e.segments == () and e.channels == ()
    assert e.bucket_config.namespace is None


def test_unequal_ratios_are_kept() -> None:
    branches = [
        {"slug": "control", "ratio": 1, "features": []},
        {"slug": "treatment-a", "ratio": 3, "features": []},
        {"slug": "treatment-b", "ratio": 6.0, "features": []},
    ]
    e = parse_experiment(v8_record(branches=branches), today=TODAY)
    assert [(b.slug, b.ratio) for b in e.branches] == [
        ("control", 1.0),
        ("treatment-a", 3.0),
        ("treatment-b", 6.0),
    ]
    assert [b["ratio"] for b in snapshot_rows([e])[0]["branches"]] == [1, 3, 6]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"slug": None}, "slug"),
        ({"slug": 12}, "slug"),
        ({"startDate": "2025-13-40"}, "startDate"),
        ({"endDate": 20250101}, "endDate"),
        ({"branches": "control,treatment"}, "branches"),
        ({"branches": [{"slug": "control", "ratio": "one"}]}, "branches[0].ratio"),
        ({"branches": [{"slug": "control", "ratio": 1.5}]}, "branches[0].ratio"),
        ({"branches": [{"slug": "control"}]}, "branches[0].ratio"),
        ({"branches": [{"ratio": 1}]}, "branches[0].slug"),
        ({"branches": [{"slug": "c", "ratio": 1}, {"slug": "c", "ratio": 1}]}, "branches[1].slug"),
        ({"proposedEnrollment": "14"}, "proposedEnrollment"),
        ({"isRollout": "no"}, "isRollout"),
        ({"bucketConfig": [1, 2]}, "bucketConfig"),
        ({"bucketConfig": {"count": 1.5, "total": 10}}, "bucketConfig.count"),
        ({"outcomes": [{"priority": "primary"}]}, "outcomes[0].slug"),
        ({"channels": "release"}, "channels"),
    ],
)
def test_bad_record_names_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ExperimentParseError) as err:
        parse_experiment(v8_record(**overrides), today=TODAY)
    assert err.value.field == field


def test_bad_records_become_problems_without_stopping_the_others() -> None:
    bad_date = v8_record("bad-date", endDate="next week")
    no_slug = v8_record()
    del no_slug["slug"]
    payload = [
        v8_record("good-1"),
        no_slug,
        bad_date,
        "not an object",
        v8_record("bad-branches", branches={"control": 1}),
        v8_record("good-2", endDate="2025-06-01"),
        v8_record("good-1"),
    ]

    result = parse_experiments(payload, today=TODAY)

    assert [(e.slug, e.status) for e in result.experiments] == [
        ("good-1", "Live"),
        ("good-2", "Complete"),
    ]
    assert [(p.index, p.slug, p.field) for p in result.problems] == [
        (1, None, "slug"),
        (2, "bad-date", "endDate"),
        (3, None, "<record>"),
        (4, "bad-branches", "branches"),
        (6, "good-1", "slug"),
    ]
    assert "duplicate" in result.problems[-1].reason
    assert str(result.problems[1]).startswith("experiment bad-date: endDate:")
    assert str(result.problems[0]).startswith("experiment record #1: slug:")


# --- snapshot rows ----------------------------------------------------------------------


def _plausible(field: Field, value: Any) -> bool:
    """Whether a JSON value fits a BigQuery field (NULLs allowed, REPEATED never NULL)."""
    if field.mode == "REPEATED":
        single = Field(field.name, field.type, fields=field.fields)
        return isinstance(value, list) and all(
            v is not None and _plausible(single, v) for v in value
        )
    if value is None:
        return True
    if field.type == "RECORD":
        return list(value) == column_names(field.fields) and all(
            _plausible(f, value[f.name]) for f in field.fields
        )
    checks = {
        "STRING": lambda v: isinstance(v, str),
        "INT64": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "FLOAT64": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "BOOL": lambda v: isinstance(v, bool),
        "DATE": lambda v: isinstance(v, str) and dt.date.fromisoformat(v) is not None,
        "JSON": lambda v: json.loads(json.dumps(v)) == v,
    }
    return checks[field.type](value)


def _rows_for_tests() -> list[dict[str, Any]]:
    unequal = v8_record(
        "unequal",
        branches=[{"slug": "control", "ratio": 1, "features": []}, {"slug": "t", "ratio": 4}],
        endDate=None,
        bucketConfig=None,
    )
    payload = [v8_record("complete", endDate="2025-06-01"), unequal]
    return snapshot_rows(parse_experiments(payload, today=TODAY).experiments)


def test_schema_is_bigquery_etls_columns_in_order() -> None:
    assert column_names(EXPERIMENTER_EXPERIMENTS_SCHEMA) == [
        "experimenter_slug", "normandy_slug", "type", "status", "start_date", "end_date",
        "enrollment_end_date", "proposed_enrollment", "reference_branch", "is_high_population",
        "branches", "app_id", "app_name", "channel", "channels", "targeting", "targeted_percent",
        "namespace", "feature_ids", "is_rollout", "outcomes", "segments", "randomization_unit",
        "is_firefox_labs_opt_in", "is_enrollment_paused",
    ]  # fmt: skip
    branches = next(f for f in EXPERIMENTER_EXPERIMENTS_SCHEMA if f.name == "branches")
    assert (branches.type, branches.mode) == ("RECORD", "REPEATED")
    assert [(f.name, f.type) for f in branches.fields] == [
        ("slug", "STRING"),
        ("ratio", "INT64"),
        ("features", "JSON"),
    ]


def test_snapshot_rows_match_the_schema() -> None:
    rows = _rows_for_tests()
    json.dumps(rows)  # serialisable as-is
    for row in rows:
        assert list(row) == column_names(EXPERIMENTER_EXPERIMENTS_SCHEMA)
        for field in EXPERIMENTER_EXPERIMENTS_SCHEMA:
            assert _plausible(field, row[field.name]), (field.name, row[field.name])

    complete, unequal = rows
    assert complete["normandy_slug"] == "complete" and complete["experimenter_slug"] is None
    assert (complete["type"], complete["status"]) == ("v6", "Complete")
    assert complete["end_date"] == "2025-06-01"
    assert complete["targeted_percent"] == pytest.approx(0.1)
    treatment_features = [{"featureId": "newtab", "value": {"tilesPerRow": 8}}]
    assert complete["branches"][1]["features"] == treatment_features
    assert unequal["status"] == "Live"
    assert unequal["targeted_percent"] is None and unequal["namespace"] is None
    assert unequal["branches"] == [
        {"slug": "control", "ratio": 1, "features": []},
        {"slug": "t", "ratio": 4, "features": None},
    ]


def test_snapshot_rows_load_into_duckdb(tmp_path: Path) -> None:
    rows = _rows_for_tests()
    ndjson = tmp_path / "experimenter_experiments_v1.ndjson"
    ndjson.write_text("\n".join(json.dumps(r) for r in rows))
    columns = {f.name: duckdb_type(f) for f in EXPERIMENTER_EXPERIMENTS_SCHEMA}
    ddl = ", ".join(f'"{name}" {type_}' for name, type_ in columns.items())

    con = duckdb.connect()
    con.execute("CREATE SCHEMA monitoring")
    con.execute(f"CREATE TABLE monitoring.experimenter_experiments_v1 ({ddl})")
    con.execute(
        "INSERT INTO monitoring.experimenter_experiments_v1 "
        "SELECT * FROM read_json(?, format = 'newline_delimited', columns = ?)",
        [str(ndjson), columns],
    )

    loaded = con.execute(
        "SELECT normandy_slug, status, end_date, targeted_percent, len(branches),"
        " branches[2].ratio, branches[2].features, outcomes, randomization_unit"
        " FROM monitoring.experimenter_experiments_v1 ORDER BY normandy_slug"
    ).fetchall()
    assert loaded[0][:7] == (
        "complete",
        "Complete",
        dt.date(2025, 6, 1),
        pytest.approx(0.1),
        2,
        1,
        '[{"featureId":"newtab","value":{"tilesPerRow":8}}]',
    )
    assert loaded[0][7:] == (["newtab_visibility"], "group_id")
    assert loaded[1][:7] == ("unequal", "Live", None, None, 2, 4, None)


def test_fetch_then_parse_reports_bad_records(experimenter_server: StubHttpServer) -> None:
    experimenter_server.respond([v8_record("a"), {"slug": "b", "branches": 3}])
    payload = fetch_experimenter_payload(experimenter_server.url)
    result = parse_experiments(payload, today=TODAY)
    assert [e.slug for e in result.experiments] == ["a"]
    assert [(p.slug, p.field) for p in result.problems] == [("b", "branches")]
