"""The bundled sample: synthetic telemetry tables and the Experimenter v8 snapshot."""

from __future__ import annotations

import datetime as dt
import json
import zlib

import duckdb
import pandas as pd
import pytest
from mozilla_nimbus_schemas.experimenter_apis.experiments import (
    DesktopAllVersionsNimbusExperiment,
)

from jetstream_assets.sample.demo_sample import write_demo_sample
from jetstream_assets.sample.designs import (
    DEMO_DESIGNS,
    UNKNOWN_BRANCH,
    BranchDesign,
    ExperimentDesign,
)
from jetstream_assets.sample.experimenter_payload import experimenter_payload
from jetstream_assets.sample.telemetry import SampleTelemetry, generate_telemetry, write_telemetry

DATA_START = dt.date(2026, 8, 1)
DATA_END = dt.date(2026, 9, 20)
ALPHA = ExperimentDesign(
    slug="alpha-test",
    start_date=dt.date(2026, 8, 29),
    enrollment_end_date=dt.date(2026, 9, 4),
    end_date=dt.date(2026, 9, 20),
    proposed_enrollment=7,
    branches=(
        BranchDesign("control", 1),
        BranchDesign("treatment", 1, {"active_hours_sum": 1.30}),
    ),
    n_clients=4_000,
    unknown_branch_clients=25,
)
BETA = ExperimentDesign(
    slug="beta-live",
    start_date=dt.date(2026, 9, 5),
    enrollment_end_date=dt.date(2026, 9, 11),
    end_date=None,
    proposed_enrollment=7,
    branches=(BranchDesign("control", 2), BranchDesign("a", 1), BranchDesign("b", 1)),
    n_clients=2_000,
    exposure_rate=0.5,
    unenroll_rate=0.1,
)
NO_TELEMETRY = ExperimentDesign(
    slug="not-started",
    start_date=dt.date(2026, 9, 30),
    enrollment_end_date=None,
    end_date=None,
    proposed_enrollment=7,
    branches=(BranchDesign("control"), BranchDesign("treatment")),
    n_clients=0,
)
DESIGNS = (ALPHA, BETA)
BACKGROUND = 400
SEED = 7

CONTRACT_COLUMNS = {
    "events_stream": [
        ("client_id", "VARCHAR"),
        ("submission_timestamp", "TIMESTAMP"),
        ("sample_id", "INTEGER"),
        ("event_category", "VARCHAR"),
        ("event_name", "VARCHAR"),
        ("event_extra", "JSON"),
    ],
    "clients_daily": [
        ("client_id", "VARCHAR"),
        ("submission_date", "DATE"),
        ("sample_id", "INTEGER"),
        ("active_hours_sum", "DOUBLE"),
        ("subsession_hours_sum", "DOUBLE"),
        ("scalar_parent_browser_engagement_total_uri_count_sum", "BIGINT"),
        ("search_count_all", "BIGINT"),
        ("ad_clicks_count_all", "BIGINT"),
        ("experiments", "MAP(VARCHAR, VARCHAR)"),
    ],
}

ENROLLMENTS_SQL = """
SELECT client_id,
       ANY_VALUE(event_extra ->> 'branch') AS branch,
       CAST(MIN(submission_timestamp) AS DATE) AS enrollment_date,
       COUNT(*) AS n_events,
       COUNT(DISTINCT event_extra ->> 'branch') AS n_branches
FROM firefox_desktop.events_stream
WHERE event_category = 'nimbus_events' AND event_name = 'enrollment'
  AND event_extra ->> 'experiment' = ?
GROUP BY client_id
"""


def _generate(seed: int = SEED) -> SampleTelemetry:
    return generate_telemetry(
        DESIGNS + (NO_TELEMETRY,),
        data_start=DATA_START,
        data_end=DATA_END,
        background_clients=BACKGROUND,
        seed=seed,
    )


@pytest.fixture(scope="module")
def telemetry() -> SampleTelemetry:
    return _generate()


@pytest.fixture(scope="module")
def con(telemetry: SampleTelemetry) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    write_telemetry(connection, telemetry)
    yield connection
    connection.close()


def _enrollments(con: duckdb.DuckDBPyConnection, slug: str) -> pd.DataFrame:
    return con.execute(ENROLLMENTS_SQL, [slug]).df()


def _mean_sum_by_branch(
    con: duckdb.DuckDBPyConnection, slug: str, column: str, first_day: int, last_day: int
) -> pd.Series:
    """Mean over enrolled clients of the column summed over days [first, last] since enrollment."""
    return con.execute(
        f"""
        WITH e AS ({ENROLLMENTS_SQL})
        SELECT e.branch, AVG(COALESCE(s.total, 0)) AS mean
        FROM e LEFT JOIN (
            SELECT e.client_id, SUM(c.{column}) AS total
            FROM e JOIN telemetry.clients_daily c USING (client_id)
            WHERE c.submission_date BETWEEN e.enrollment_date + ? AND e.enrollment_date + ?
            GROUP BY e.client_id
        ) s USING (client_id)
        GROUP BY e.branch
        """,
        [slug, first_day, last_day],
    ).df().set_index("branch")["mean"]


def test_tables_have_the_contract_schema(con: duckdb.DuckDBPyConnection) -> None:
    for table, expected in CONTRACT_COLUMNS.items():
        schema = "firefox_desktop" if table == "events_stream" else "telemetry"
        described = con.execute(f"DESCRIBE {schema}.{table}").fetchall()
        assert [(row[0], row[1]) for row in described] == expected


def test_write_replaces_its_tables_and_leaves_others_alone(telemetry: SampleTelemetry) -> None:
    connection = duckdb.connect()
    connection.execute("CREATE SCHEMA telemetry")
    connection.execute("CREATE TABLE telemetry.main_summary AS SELECT 1 AS x")
    connection.execute("CREATE TABLE keep_me AS SELECT 2 AS y")
    write_telemetry(connection, telemetry)
    write_telemetry(connection, telemetry)
    counts = connection.execute(
        "SELECT (SELECT COUNT(*) FROM firefox_desktop.events_stream),"
        " (SELECT COUNT(*) FROM telemetry.clients_daily),"
        " (SELECT x FROM telemetry.main_summary), (SELECT y FROM keep_me)"
    ).fetchone()
    assert counts == (len(telemetry.events), len(telemetry.clients_daily), 1, 2)
    assert not connection.execute(
        "SELECT * FROM duckdb_views() WHERE view_name LIKE '%jetstream_sample%'"
    ).fetchall()


def test_same_seed_gives_identical_frames(telemetry: SampleTelemetry) -> None:
    again = _generate()
    pd.testing.assert_frame_equal(again.events, telemetry.events)
    pd.testing.assert_frame_equal(again.clients_daily, telemetry.clients_daily)
    other = _generate(seed=SEED + 1)
    assert set(other.events.client_id).isdisjoint(telemetry.events.client_id)


def test_branch_shares_follow_ratios(con: duckdb.DuckDBPyConnection) -> None:
    shares = _enrollments(con, BETA.slug)["branch"].value_counts(normalize=True)
    assert shares.to_dict() == pytest.approx({"control": 0.5, "a": 0.25, "b": 0.25}, abs=0.01)
    alpha = _enrollments(con, ALPHA.slug)["branch"].value_counts()
    assert alpha[UNKNOWN_BRANCH] == ALPHA.unknown_branch_clients
    assert alpha["control"] + alpha["treatment"] == ALPHA.n_clients
    assert abs(alpha["control"] - alpha["treatment"]) <= 2


def test_planted_effect_is_recovered_and_absent_before_enrollment(
    con: duckdb.DuckDBPyConnection,
) -> None:
    after = _mean_sum_by_branch(con, ALPHA.slug, "active_hours_sum", 0, 13)
    before = _mean_sum_by_branch(con, ALPHA.slug, "active_hours_sum", -28, -1)
    searches = _mean_sum_by_branch(con, ALPHA.slug, "search_count_all", 0, 13)
    assert after["treatment"] / after["control"] == pytest.approx(1.30, abs=0.06)
    assert before["treatment"] / before["control"] == pytest.approx(1.0, abs=0.06)
    assert searches["treatment"] / searches["control"] == pytest.approx(1.0, abs=0.08)


def test_nimbus_event_shapes(con: duckdb.DuckDBPyConnection, telemetry: SampleTelemetry) -> None:
    activity = telemetry.events[telemetry.events.event_category != "nimbus_events"]
    # one other Glean event a day: the table, like the real one, has every day of the data
    assert set(activity.event_category) == {"glean"} and activity.submission_timestamp.dt.date.is_unique
    assert activity.submission_timestamp.dt.date.max() == DATA_END
    assert telemetry.events.submission_timestamp.is_monotonic_increasing
    events = telemetry.events[telemetry.events.event_category == "nimbus_events"]
    assert set(events.event_name) == {"enrollment", "exposure", "unenrollment"}
    assert {tuple(json.loads(e)) for e in events.event_extra.unique()} == {
        ("experiment", "branch")
    }
    assert events.submission_timestamp.min() >= pd.Timestamp(ALPHA.start_date)
    assert events.submission_timestamp.max() < pd.Timestamp(DATA_END + dt.timedelta(days=1))
    assert NO_TELEMETRY.slug not in {json.loads(e)["experiment"] for e in events.event_extra}

    enrollments = _enrollments(con, BETA.slug)
    assert (enrollments.n_branches == 1).all()
    assert enrollments.enrollment_date.between(
        pd.Timestamp(BETA.start_date), pd.Timestamp(BETA.enrollment_end_date)
    ).all()
    duplicated = (enrollments.n_events > 1).mean()
    assert 0.005 < duplicated < 0.06

    exposed, unenrolled, early = con.execute(
        """
        WITH e AS (
            SELECT client_id, MIN(submission_timestamp) AS enrolled_at
            FROM firefox_desktop.events_stream WHERE event_name = 'enrollment'
              AND event_extra ->> 'experiment' = ? GROUP BY client_id
        )
        SELECT COUNT(DISTINCT client_id) FILTER (WHERE x.event_name = 'exposure'),
               COUNT(DISTINCT client_id) FILTER (WHERE x.event_name = 'unenrollment'),
               COUNT(*) FILTER (WHERE x.submission_timestamp < e.enrolled_at)
        FROM e JOIN firefox_desktop.events_stream x USING (client_id)
        WHERE x.event_name IN ('exposure', 'unenrollment')
        """,
        [BETA.slug],
    ).fetchone()
    # Events after the last telemetry day are dropped, so shares sit a little under the rates.
    assert 0.40 < exposed / len(enrollments) <= BETA.exposure_rate + 0.03
    assert 0.03 < unenrolled / len(enrollments) <= BETA.unenroll_rate + 0.02
    assert early == 0


def test_experiments_map_starts_on_the_enrollment_day(con: duckdb.DuckDBPyConnection) -> None:
    wrong = con.execute(
        f"""
        WITH e AS ({ENROLLMENTS_SQL})
        SELECT COUNT(*) FILTER (WHERE c.submission_date < e.enrollment_date
                                  AND cardinality(c.experiments) > 0),
               COUNT(*) FILTER (WHERE c.submission_date >= e.enrollment_date
                                  AND c.experiments <> MAP([?], [e.branch])),
               COUNT(*) FILTER (WHERE c.submission_date = e.enrollment_date)
        FROM e JOIN telemetry.clients_daily c USING (client_id)
        """,
        [ALPHA.slug, ALPHA.slug],
    ).fetchone()
    assert wrong[:2] == (0, 0)
    assert wrong[2] > 0
    experiment_slugs = con.execute(
        "SELECT DISTINCT unnest(map_keys(experiments)) FROM telemetry.clients_daily"
    ).fetchall()
    assert {s for (s,) in experiment_slugs} == {ALPHA.slug, BETA.slug}


def test_clients_are_unique_with_a_stable_sample_id(telemetry: SampleTelemetry) -> None:
    enrolled = telemetry.events[telemetry.events.event_name == "enrollment"]
    per_client = enrolled.groupby("client_id").event_extra.apply(
        lambda extras: {json.loads(e)["experiment"] for e in extras}
    )
    assert (per_client.map(len) == 1).all()
    assert len(per_client) == sum(d.n_clients + d.unknown_branch_clients for d in DESIGNS)

    columns = ["client_id", "sample_id"]
    sample_ids = pd.concat(
        [telemetry.events[columns], telemetry.clients_daily[columns]]
    ).drop_duplicates()
    assert sample_ids.client_id.is_unique
    crc = sample_ids.client_id.map(lambda c: zlib.crc32(c.encode()) % 100)
    assert (sample_ids.sample_id == crc).all()
    assert sample_ids.sample_id.between(0, 99).all()
    assert sample_ids.sample_id.nunique() == 100


def test_activity_looks_like_clients_daily(telemetry: SampleTelemetry) -> None:
    daily = telemetry.clients_daily
    assert (daily.subsession_hours_sum >= daily.active_hours_sum).all()
    assert (daily.active_hours_sum > 0).all()
    counts = daily[
        [
            "scalar_parent_browser_engagement_total_uri_count_sum",
            "search_count_all",
            "ad_clicks_count_all",
        ]
    ]
    assert (counts >= 0).all().all()
    assert (daily.search_count_all == 0).mean() > 0.2  # zero-inflated
    assert (daily.ad_clicks_count_all > 0).mean() < 0.1  # rare
    assert daily.submission_date.min() == pd.Timestamp(DATA_START)
    assert daily.submission_date.max() == pd.Timestamp(DATA_END)
    enrolled = set(telemetry.events.client_id)
    silent = len(enrolled - set(daily.client_id)) / len(enrolled)
    assert 0.06 < silent < 0.15  # about a tenth never active


def test_payload_has_the_v8_fields() -> None:
    payload = json.loads(json.dumps(experimenter_payload(DESIGNS + (NO_TELEMETRY,))))
    assert [p["slug"] for p in payload] == sorted(d.slug for d in DESIGNS + (NO_TELEMETRY,))
    required = {
        "schemaVersion", "slug", "id", "appName", "appId", "channel", "channels",
        "userFacingName", "userFacingDescription", "isEnrollmentPaused", "isRollout",
        "bucketConfig", "featureIds", "outcomes", "segments", "branches", "targeting",
        "startDate", "enrollmentEndDate", "endDate", "proposedDuration", "proposedEnrollment",
        "referenceBranch", "publishedDate", "isFirefoxLabsOptIn", "isHoldback",
    }  # fmt: skip
    for obj in payload:
        assert required <= obj.keys()
        DesktopAllVersionsNimbusExperiment.model_validate(obj)
        assert set(obj["bucketConfig"]) == {
            "randomizationUnit", "namespace", "start", "count", "total"
        }  # fmt: skip
    beta = next(p for p in payload if p["slug"] == BETA.slug)
    ratios = [(b["slug"], b["ratio"]) for b in beta["branches"]]
    assert ratios == [("control", 2), ("a", 1), ("b", 1)]
    assert (beta["startDate"], beta["enrollmentEndDate"], beta["endDate"]) == (
        "2026-09-05",
        "2026-09-11",
        None,
    )
    assert next(p for p in payload if p["slug"] == NO_TELEMETRY.slug)["enrollmentEndDate"] is None


@pytest.mark.parametrize(
    "bad",
    [
        dict(reference_branch="missing"),
        dict(branches=(BranchDesign("control"), BranchDesign("control"))),
        dict(end_date=dt.date(2026, 8, 1)),
    ],
)
def test_invalid_designs_are_rejected(bad: dict) -> None:
    fields = dict(
        slug="x",
        start_date=dt.date(2026, 9, 1),
        enrollment_end_date=dt.date(2026, 9, 7),
        end_date=None,
        proposed_enrollment=7,
        branches=(BranchDesign("control"), BranchDesign("treatment")),
        n_clients=10,
    )
    with pytest.raises(ValueError):
        ExperimentDesign(**(fields | bad))


@pytest.mark.parametrize(
    "ratio, effects", [(0, {}), (1, {"no_such_column": 2.0}), (1, {"active_hours_sum": 0.0})]
)
def test_invalid_branches_are_rejected(ratio: float, effects: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BranchDesign("treatment", ratio, effects)


def test_enrollment_outside_the_telemetry_dates_is_rejected() -> None:
    with pytest.raises(ValueError, match="telemetry dates"):
        generate_telemetry(
            [ALPHA], data_start=dt.date(2026, 9, 1), data_end=DATA_END, background_clients=0, seed=1
        )


def test_demo_sample_plants_its_effects(tmp_path) -> None:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    snapshot = tmp_path / "experimenter" / "experiments.json"
    write_demo_sample(connection, snapshot)

    payload = json.loads(snapshot.read_text())
    assert {p["slug"] for p in payload} == {d.slug for d in DEMO_DESIGNS}
    rollout = next(p for p in payload if p["slug"] == "default-search-rollout")
    assert rollout["isRollout"] is True
    enrolled = dict(
        connection.execute(
            "SELECT event_extra ->> 'experiment', COUNT(DISTINCT client_id)"
            " FROM firefox_desktop.events_stream WHERE event_name = 'enrollment' GROUP BY ALL"
        ).fetchall()
    )
    assert enrolled == {d.slug: d.n_clients for d in DEMO_DESIGNS if d.n_clients}
    assert sum(enrolled.values()) == 50_000

    # The main demo metric: per-client active hours over the overall window, uplift 0.10.
    overall = _mean_sum_by_branch(
        connection, "search-shortcuts-complete", "active_hours_sum", 0, 33
    )
    assert overall["treatment"] / overall["control"] - 1 == pytest.approx(0.10, abs=0.02)
    tab_groups = _mean_sum_by_branch(
        connection, "tab-groups-live", "scalar_parent_browser_engagement_total_uri_count_sum", 0, 13
    )
    assert tab_groups["treatment-a"] / tab_groups["control"] == pytest.approx(1.15, abs=0.05)
    connection.close()


def test_designs_without_clients_give_background_telemetry_only() -> None:
    quiet = generate_telemetry(
        [NO_TELEMETRY], data_start=DATA_START, data_end=DATA_END, background_clients=50, seed=3
    )
    connection = duckdb.connect()
    write_telemetry(connection, quiet)
    counts = connection.execute(
        "SELECT (SELECT COUNT(*) FROM firefox_desktop.events_stream WHERE event_category = 'nimbus_events'),"
        " (SELECT COUNT(DISTINCT client_id) FROM telemetry.clients_daily),"
        " (SELECT COUNT(*) FROM telemetry.clients_daily WHERE cardinality(experiments) > 0)"
    ).fetchone()
    assert counts[0] == 0 and counts[2] == 0
    assert 35 <= counts[1] <= 50
