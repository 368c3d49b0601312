"""Two slugs with one table name (`tab-groups-live`, `tab_groups_live`): one owns the tables and bucket
files, the other is refused before anything is written, with an ERROR row naming both."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from jetstream_assets.analysis.table_names import table_name_clash
from jetstream_assets.experimenter.parse import parse_experiments
from jetstream_assets.sample.experimenter_payload import experimenter_payload
from jetstream_assets_tests.fixtures_sample import (
    ANALYSIS_ASSETS,
    BackgroundCommand,
    analyse,
    cli_env,
    load_snapshot,
    new_dagster_home,
)
from jetstream_assets.dagster_defs.partitions import experiments_partitions
from jetstream_assets.dagster_defs.run_tags import daily_tags
from jetstream_assets_tests.small_sample import (
    TAB_GROUPS,
    TAB_GROUPS_WEEK_READY,
    SmallSample,
    analysis_resources,
    like_tab_groups,
    log_rows,
    query,
    relations,
    table_contents,
    write_small_sample,
)

TWIN = "tab_groups_live"  # TAB_GROUPS is "tab-groups-live": the same table name
WEEK_1, WEEK_2 = TAB_GROUPS_WEEK_READY
OWNER_DESIGN = like_tab_groups(TAB_GROUPS, clients=200)
# starts a day earlier: by dates alone it would own the name, so only "published first" protects TAB_GROUPS
TWIN_DESIGN = dataclasses.replace(
    like_tab_groups(TWIN, clients=200), start_date=OWNER_DESIGN.start_date - dt.timedelta(days=1)
)


# --- the rule ------------------------------------------------------------------------------------


def snapshot(*payload_slugs_and_starts: tuple[str, str | None]) -> dict:
    records = [
        {"slug": slug, "startDate": start, "branches": [{"slug": "control", "ratio": 1}]}
        for slug, start in payload_slugs_and_starts
    ]
    return {e.slug: e for e in parse_experiments(records, today=dt.date(2026, 10, 1)).experiments}


def test_owner_is_the_publisher_else_the_earliest_start_else_the_smallest_slug() -> None:
    both = snapshot(("a-b", "2026-09-02"), ("a_b", "2026-09-01"), ("other", "2026-08-01"))
    clash = table_name_clash("a-b", both)
    assert (clash.slug, clash.owner, clash.table_slug, clash.owner_published) == ("a-b", "a_b", "a_b", False)
    assert "a-b" in str(clash) and "a_b" in str(clash)
    assert table_name_clash("a_b", both) is None
    assert table_name_clash("other", both, published=lambda: pytest.fail("no clash: not asked")) is None

    published = table_name_clash("a_b", both, published=lambda: {"a-b"})
    assert (published.owner, published.owner_published) == ("a-b", True)
    assert table_name_clash("a-b", both, published=lambda: {"a-b"}) is None

    same_day = snapshot(("a.b", "2026-09-01"), ("a_b", "2026-09-01"), ("a-b", None))
    assert table_name_clash("a_b", same_day).owner == "a.b"  # "." sorts before "_"
    assert table_name_clash("a-b", same_day).owner == "a.b"  # no start date: last
    assert table_name_clash("a.b", same_day, published=lambda: {"a-b", "a_b"}).owner == "a_b"
    # a slug missing from the snapshot never takes a name another experiment holds
    assert table_name_clash("a-b", snapshot(("a_b", "2026-09-01"))).owner == "a_b"


# --- the real pipeline ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_of_both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SmallSample, BackgroundCommand]]:
    """`jetstream-assets run` with both new in the snapshot, started when the module starts."""
    root = tmp_path_factory.mktemp("clash_run")
    sample = write_small_sample(root / "home", [OWNER_DESIGN, TWIN_DESIGN])
    env = cli_env(sample.home, new_dagster_home(root / "dagster_home"), str(sample.experimenter_json))
    command = BackgroundCommand(["run", "--date", WEEK_1.isoformat()], env)
    yield sample, command
    command.stop()


def published_state(home: Path) -> dict:
    """Every table and view of the shared name with its rows and write time, and every bucket file."""
    name = "tab_groups_live"
    tables = {t: table_contents(home, t).to_json(orient="records") for t in relations(home) if name in t}
    written = query(home, "SELECT table_name, last_modified FROM _jetstream.table_metadata "
                          "WHERE table_name LIKE ? ORDER BY table_name", [f"%{name}%"])
    files = {str(p.relative_to(home / "bucket")): p.read_bytes()
             for p in sorted((home / "bucket").rglob("*")) if p.is_file()}
    return {"tables": tables, "written": written.to_json(orient="records"), "files": files}


def test_a_twin_slug_never_touches_the_published_owners_tables_or_files(
    run_of_both, tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    sample = write_small_sample(tmp_path / "home", [OWNER_DESIGN, TWIN_DESIGN])
    owner_only = tmp_path / "owner_only.json"
    owner_only.write_text(json.dumps(experimenter_payload([OWNER_DESIGN])))
    assert load_snapshot(instance, analysis_resources(sample.home, experimenter_url=str(owner_only))).success
    resources = analysis_resources(sample.home)
    analyse(instance, resources, TAB_GROUPS, WEEK_1)  # published before its twin appeared
    before = published_state(sample.home)
    assert "statistics/statistics_tab_groups_live_weekly.json" in before["files"]
    assert "enrollments_tab_groups_live" in before["tables"]

    assert load_snapshot(instance, resources).success  # Experimenter now lists both
    instance.add_dynamic_partitions(experiments_partitions.name, [TWIN])
    refused = dg.materialize(ANALYSIS_ASSETS, partition_key=TWIN, tags=daily_tags(WEEK_1), resources=resources,
                             instance=instance, raise_on_error=False)

    assert not refused.success
    failure = refused.get_step_failure_events()[0].step_failure_data.error.to_string()
    assert TWIN in failure and TAB_GROUPS in failure and "published results" in failure
    [row] = log_rows(sample.home, TWIN).to_dict("records")
    assert row["log_level"] == "ERROR" and TAB_GROUPS in row["message"] and "`tab_groups_live`" in row["message"]
    assert published_state(sample.home) == before  # tables, their write times and every bucket file

    analyse(instance, resources, TAB_GROUPS, WEEK_2)  # the owner goes on as before
    assert "statistics_tab_groups_live_week_2" in relations(sample.home)
    assert log_rows(sample.home, TAB_GROUPS).query("log_level == 'ERROR'").empty


def test_run_analyses_the_owner_and_fails_the_twin_by_name(run_of_both) -> None:
    sample, command = run_of_both
    done = command.result()
    assert done.returncode == 1, done.stdout + done.stderr[-2000:]
    lines = {line.split()[1]: line for line in done.stdout.splitlines()
             if line.strip().split(" ")[0] in ("analysed", "failed")}
    # neither has published yet: the earlier start date decides
    assert lines[TWIN].split()[0] == "analysed"
    assert lines[TAB_GROUPS].split()[0] == "failed" and TWIN in lines[TAB_GROUPS]
    [row] = log_rows(sample.home, TAB_GROUPS).to_dict("records")
    assert row["log_level"] == "ERROR" and TWIN in row["message"]
    table = query(sample.home, "SELECT analysis_id FROM mozanalysis.enrollments_tab_groups_live")
    table_clients = set(table["analysis_id"])
    assert table_clients and table_clients <= enrolled_in(sample.home, TWIN)  # the twin's tables, not a mix
    assert not table_clients & enrolled_in(sample.home, TAB_GROUPS)


def enrolled_in(home: Path, slug: str) -> set[str]:
    frame = query(home, "SELECT DISTINCT client_id FROM firefox_desktop.events_stream WHERE event_name = 'enrollment' "
                        "AND json_extract_string(event_extra, '$.experiment') = ?", [slug])
    return set(frame["client_id"])
