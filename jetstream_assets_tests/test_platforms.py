"""Every platform reads its own app's tables: enrollments and exposures from `<app dataset>.events_stream`
(the dataset named by the experiment's Experimenter appId and channel), metrics from Glean baseline pings
shaped as in metric-hub's `definitions/fenix.toml` / `firefox_ios.toml` (`{dataset}.baseline`,
`client_info.client_id`, `ping_info.experiments`). A release table holding the same slug is the decoy a
wrong dataset would read."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from jetstream_assets.core.platforms import LEGACY_EVENTS_STREAM, PLATFORMS, app_dataset
from jetstream_assets.dagster_defs.resources import (
    BucketResource,
    ExperimenterResource,
    MetricHubResource,
    WarehouseResource,
)
from jetstream_assets.engines.duckdb_warehouse import DuckDBWarehouse
from jetstream_assets.experimenter.parse import parse_experiment
from jetstream_assets.metric_hub.models import AnalysisConfig
from jetstream_assets.sql.enrollments import build_enrollments_query
from jetstream_assets_tests.fixtures_sample import analyse, load_snapshot
from jetstream_assets_tests.small_sample import log_rows, query

START = dt.date(2026, 5, 1)
ENROLLMENT_END = dt.date(2026, 5, 3)  # E = 3, last enrollment day L = 2026-05-04
FIRST_WEEK = dt.date(2026, 5, 10)  # L + 6: the first weekly window is ready
CLIENTS = 40  # per branch
# (app name, Experimenter appId, channel): one experiment per mobile platform, none on release
MOBILE = [
    ("fenix", "org.mozilla.fenix", "nightly"),
    ("firefox_ios", "org.mozilla.ios.FirefoxBeta", "beta"),
    ("focus_android", "org.mozilla.focus.beta", "beta"),
    ("focus_ios", "org.mozilla.ios.Focus", "release"),
    ("klar_android", "org.mozilla.klar", "release"),
    ("klar_ios", "org.mozilla.ios.Klar", "release"),
]
DECOY_DATASET = {"fenix": "org_mozilla_firefox", "firefox_ios": "org_mozilla_ios_firefox"}


def slug_of(app_name: str) -> str:
    return f"{app_name.replace('_', '-')}-platform-test"


def v8_record(app_name: str, app_id: str, channel: str) -> dict:
    return {
        "slug": slug_of(app_name), "appName": app_name, "appId": app_id, "channel": channel,
        "branches": [{"slug": "control", "ratio": 1}, {"slug": "treatment", "ratio": 1}],
        "startDate": START.isoformat(), "enrollmentEndDate": ENROLLMENT_END.isoformat(), "endDate": None,
        "proposedEnrollment": 3, "referenceBranch": "control", "isRollout": False,
        "bucketConfig": {"randomizationUnit": "nimbus_id", "namespace": f"{app_id}-test", "start": 0,
                         "count": 10000, "total": 10000},
    }


def client_ids(prefix: str) -> list[tuple[str, str]]:
    return [(f"{prefix}-{branch}-{i:03d}", branch) for branch in ("control", "treatment") for i in range(CLIENTS)]


def write_app_tables(con: duckdb.DuckDBPyConnection, dataset: str, slug: str, prefix: str, *, seed: int) -> None:
    """`dataset.events_stream` (enrollment on day i % 3, exposure for every other client) and
    `dataset.baseline` (one ping per active day; treatment clients are active on more days)."""
    rng = np.random.default_rng(seed)
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {dataset}")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {dataset}.events_stream (client_id VARCHAR,
        submission_timestamp TIMESTAMP, sample_id INTEGER, event_category VARCHAR, event_name VARCHAR,
        event_extra JSON)""")
    con.execute(f"""CREATE TABLE IF NOT EXISTS {dataset}.baseline (submission_timestamp TIMESTAMP,
        sample_id INTEGER, client_info STRUCT(client_id VARCHAR),
        ping_info STRUCT(experiments MAP(VARCHAR, STRUCT(branch VARCHAR))),
        metrics STRUCT(timespan STRUCT(glean_baseline_duration STRUCT(value BIGINT))))""")
    events, pings = [], []
    for i, (client, branch) in enumerate(client_ids(prefix)):
        enrolled = dt.datetime.combine(START + dt.timedelta(days=i % 3), dt.time(9))
        extra = json.dumps({"experiment": slug, "branch": branch})
        events.append((client, enrolled, i % 100, "nimbus_events", "enrollment", extra))
        if i % 2:
            events.append((client, enrolled + dt.timedelta(hours=2), i % 100, "nimbus_events", "exposure", extra))
        active = 0.8 if branch == "treatment" else 0.5
        for day in range(14):
            if day == 0 or rng.random() < active:
                ts = enrolled + dt.timedelta(days=day, hours=1)
                pings.append((ts, i % 100, client, slug, branch, int(rng.integers(60, 3600))))
    # a real events_stream has events every day, not only Nimbus ones (the run is bounded by its last day)
    for day in range(17):
        events.append((f"{prefix}-other", dt.datetime.combine(START + dt.timedelta(days=day), dt.time(12)), 0,
                       "glean", "heartbeat", "{}"))
    events_frame = pd.DataFrame(events, columns=["client_id", "ts", "sample_id", "category", "name", "extra"])
    pings_frame = pd.DataFrame(pings, columns=["ts", "sample_id", "client_id", "slug", "branch", "duration"])
    con.register("events_frame", events_frame)
    con.register("pings_frame", pings_frame)
    con.execute(f"INSERT INTO {dataset}.events_stream SELECT * FROM events_frame")
    con.execute(f"""INSERT INTO {dataset}.baseline SELECT ts, sample_id, {{'client_id': client_id}},
        {{'experiments': MAP([slug], [{{'branch': branch}}])}},
        {{'timespan': {{'glean_baseline_duration': {{'value': duration}}}}}} FROM pings_frame""")
    con.unregister("events_frame")
    con.unregister("pings_frame")


def write_metric_hub(root: Path, app_name: str, dataset: str) -> None:
    """metric-hub's shapes for a Glean app: the `baseline` data source on `{dataset}` (whose default is the
    experiment's own dataset here), `days_of_use` and `active_hours`, and the experiment's weekly metrics."""
    (root / "definitions").mkdir(parents=True, exist_ok=True)
    (root / "jetstream").mkdir(parents=True, exist_ok=True)
    (root / "definitions" / f"{app_name}.toml").write_text(f'''
[metrics.active_hours]
select_expression = "COALESCE(SUM(metrics.timespan.glean_baseline_duration.value), 0) / 3600.0"
data_source = "baseline"
friendly_name = "Active Hours"

[metrics.days_of_use]
select_expression = "COUNT(DISTINCT DATE(submission_timestamp))"
data_source = "baseline"
friendly_name = "Days of use"

[data_sources.baseline]
from_expression = """(
    SELECT p.*, DATE(p.submission_timestamp) AS submission_date
    FROM `moz-fx-data-shared-prod.{{dataset}}.baseline` p
)"""
client_id_column = "client_info.client_id"
experiments_column_type = "glean"
default_dataset = "{dataset}"
''')
    (root / "jetstream" / f"{slug_of(app_name)}.toml").write_text('''
[metrics]
weekly = ["days_of_use", "active_hours"]

[metrics.days_of_use.statistics.bootstrap_mean]
num_samples = 200

[metrics.active_hours.statistics.linear_model_mean]
''')


@pytest.fixture(scope="module")
def mobile_run(tmp_path_factory: pytest.TempPathFactory):
    """Fenix nightly and Firefox iOS beta analysed end to end through the Dagster assets on DuckDB."""
    import dagster as dg

    root = tmp_path_factory.mktemp("platforms")
    home, hub = root / "home", root / "metric-hub"
    home.mkdir()
    apps = [m for m in MOBILE if m[0] in DECOY_DATASET]
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        for seed, (app_name, app_id, channel) in enumerate(apps):
            dataset = app_dataset(app_name, app_id, channel)
            write_app_tables(con, dataset, slug_of(app_name), app_name, seed=seed)
            write_app_tables(con, DECOY_DATASET[app_name], slug_of(app_name), f"{app_name}-release", seed=99)
            write_metric_hub(hub, app_name, dataset)
    payload = home / "experimenter_v8.json"
    payload.write_text(json.dumps([v8_record(*m) for m in apps]))
    resources = {
        "warehouse": WarehouseResource(home=str(home)),
        "metric_hub": MetricHubResource(path=str(hub)),
        "experimenter": ExperimenterResource(url=str(payload)),
        "bucket": BucketResource(home=str(home)),
    }
    with dg.instance_for_test() as instance:
        assert load_snapshot(instance, resources).success
        results = {app: analyse(instance, resources, slug_of(app), FIRST_WEEK, rerun=True) for app, _, _ in apps}
    return home, results


@pytest.mark.parametrize("app_name", ["fenix", "firefox_ios"])
def test_mobile_experiment_analyses_end_to_end_from_its_own_app_tables(mobile_run, app_name):
    home, results = mobile_run
    slug, table = slug_of(app_name), slug_of(app_name).replace("-", "_")
    assert results[app_name].success
    enrolled = query(home, f"SELECT analysis_id, branch, exposure_date FROM mozanalysis.enrollments_{table}")
    assert len(enrolled) == 2 * CLIENTS
    assert enrolled.analysis_id.str.startswith(f"{app_name}-").all()
    assert not enrolled.analysis_id.str.contains("-release-").any()  # the release decoy is not read
    assert enrolled.exposure_date.notna().sum() == CLIENTS
    weekly = query(home, f"SELECT * FROM mozanalysis.statistics_{table}_weekly WHERE comparison IS NULL "
                         "AND segment = 'all' AND analysis_basis = 'enrollments'")
    means = weekly[weekly.statistic == "mean"].set_index("branch")["point"]
    assert means["treatment"] > means["control"] > 1  # treatment clients are active on more days
    assert set(weekly.metric) == {"days_of_use", "active_hours", "identity"}
    assert log_rows(home, slug).query("log_level == 'ERROR'").empty


@pytest.mark.parametrize("app_name, app_id, channel", MOBILE)
def test_enrollments_query_reads_the_apps_events_stream(tmp_path: Path, app_name, app_id, channel):
    """SQL level for every mobile platform: the query names `<dataset>.events_stream` of the app and
    channel, and on DuckDB it finds exactly that table's clients."""
    experiment = parse_experiment(v8_record(app_name, app_id, channel), today=FIRST_WEEK)
    dataset = app_dataset(app_name, app_id, channel)
    assert experiment.events_stream == f"{dataset}.events_stream"
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        write_app_tables(con, dataset, experiment.slug, app_name, seed=1)
        write_app_tables(con, "telemetry", experiment.slug, "legacy", seed=2)
    sql = build_enrollments_query(AnalysisConfig(experiment=experiment, enrollment_period=3, metrics={}),
                                  first_enrollment_date=START, last_enrollment_date=START + dt.timedelta(days=3))
    assert f"FROM `moz-fx-data-shared-prod.{dataset}.events_stream`" in sql and "telemetry." not in sql
    frame = DuckDBWarehouse(str(path), "p", "mozanalysis", "monitoring").query(sql)
    assert len(frame) == 2 * CLIENTS and frame.analysis_id.str.startswith(f"{app_name}-").all()


def test_every_supported_platform_has_a_dataset():
    assert {name: app_dataset(name) for name in PLATFORMS} == {
        "firefox_desktop": "firefox_desktop", "fenix": "fenix", "focus_android": "org_mozilla_focus",
        "klar_android": "org_mozilla_klar", "firefox_ios": "org_mozilla_ios_firefoxbeta",
        "focus_ios": "org_mozilla_ios_focus", "klar_ios": "org_mozilla_ios_klar",
    }


def test_a_warehouse_with_only_the_legacy_events_stream_is_read_with_a_warning(tmp_path: Path):
    """Backward compatibility: a desktop warehouse of an earlier version holds telemetry.events_stream."""
    import logging

    from jetstream_assets.analysis.enrollments import events_stream_source

    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        write_app_tables(con, "telemetry", "desktop-exp", "legacy", seed=3)
    warehouse = DuckDBWarehouse(str(path), "p", "mozanalysis", "monitoring")
    record = v8_record("firefox_desktop", "firefox-desktop", "release") | {"slug": "desktop-exp"}
    config = AnalysisConfig(experiment=parse_experiment(record, today=FIRST_WEEK), enrollment_period=3, metrics={})
    log = logging.getLogger("test_platforms.legacy")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    log.addHandler(handler)
    try:
        assert events_stream_source(warehouse, config, log) == LEGACY_EVENTS_STREAM
    finally:
        log.removeHandler(handler)
    [warning] = records
    assert warning.levelno == logging.WARNING and "firefox_desktop.events_stream not found" in warning.getMessage()
    with duckdb.connect(str(path)) as con:
        write_app_tables(con, "firefox_desktop", "desktop-exp", "desktop", seed=4)
    assert events_stream_source(warehouse, config, log) == "`moz-fx-data-shared-prod.firefox_desktop.events_stream`"
