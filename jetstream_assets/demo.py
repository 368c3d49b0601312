"""`jetstream-assets demo`: the bundled sample written into JETSTREAM_HOME, then the whole pipeline."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from jetstream_assets.sample.designs import DEMO_BROKEN_METRIC_SLUG, DEMO_SRM_SLUG
from jetstream_assets.settings import setting

# experiments whose checks fail on purpose
BROKEN_ON_PURPOSE = (DEMO_SRM_SLUG, DEMO_BROKEN_METRIC_SLUG)


def _print_checks(report) -> None:
    print(f"\nAsset checks (failures planted on purpose in {' and '.join(BROKEN_ON_PURPOSE)}):")
    for outcome in report.outcomes:
        if not outcome.checks:
            continue
        print(f"  {outcome.slug}")
        for check in outcome.checks:
            verdict = "passed" if check.passed else "FAILED"
            name = f"{check.asset_key.to_user_string()} {check.check_name}"
            print(f"    {name:<45} {verdict:<6} {check.severity.value:<5} {check.description or ''}")


def _summary(report) -> None:
    from jetstream_assets.dagster_defs.resources import initialized_resources

    resources = initialized_resources()
    warehouse = resources["warehouse"].get_warehouse()
    bucket_root = Path(resources["bucket"].get_bucket().root)
    print("\nTables:")
    for dataset in (warehouse.dataset, warehouse.monitoring_dataset):
        for name in warehouse.list_tables(dataset):
            print(f"  {dataset}.{name}")
    print(f"\nFiles in {bucket_root}:")
    for path in sorted(bucket_root.rglob("*.json")):
        print(f"  {path.relative_to(bucket_root)}")
    print("\nPlanted effect (search-shortcuts-complete, overall, treatment vs control, relative uplift of mean):")
    frame = warehouse.query(
        f"SELECT metric, point, lower, upper FROM {warehouse.table_ref(warehouse.dataset, 'statistics_search_shortcuts_complete_overall')} "
        "WHERE statistic = 'mean' AND comparison = 'relative_uplift' AND branch = 'treatment' "
        "AND comparison_to_branch = 'control' AND segment = 'all' AND analysis_basis = 'enrollments' ORDER BY metric"
    ) if warehouse.table_exists(warehouse.dataset, "statistics_search_shortcuts_complete_overall") else None
    if frame is not None:
        for row in frame.itertuples():
            print(f"  {row.metric:<16} {row.point:+.3f}  [{row.lower:+.3f}, {row.upper:+.3f}]")


def run_demo() -> int:
    from jetstream_assets.sample.demo import write_demo_sample
    from jetstream_assets.sample.designs import DEMO_ANALYSIS_DATE
    from jetstream_assets.sample.telemetry import CLIENTS_DAILY_TABLE, EVENTS_TABLE

    home = Path(setting("JETSTREAM_HOME")).expanduser().absolute()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["JETSTREAM_HOME"] = str(home)
    snapshot = home / "experimenter_v8.json"
    print(f"Writing the bundled sample into {home} ...")
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        telemetry = write_demo_sample(con, snapshot)
    print(f"  {EVENTS_TABLE}: {len(telemetry.events):,} rows, "
          f"{CLIENTS_DAILY_TABLE}: {len(telemetry.clients_daily):,} rows")
    os.environ.setdefault("EXPERIMENTER_URL", str(snapshot))

    from jetstream_assets.runner import daily_run
    from jetstream_assets.cli import _print_report

    print(f"Analysing every experiment up to {DEMO_ANALYSIS_DATE} (one Dagster run per experiment) ...")
    report = daily_run(DEMO_ANALYSIS_DATE, rerun=True)
    _print_report(report)
    _print_checks(report)
    _summary(report)
    print(f"\nRuns are recorded in DAGSTER_HOME={os.environ['DAGSTER_HOME']}; open the UI with:\n"
          f"  DAGSTER_HOME={os.environ['DAGSTER_HOME']} JETSTREAM_HOME={home} dagster dev -w workspace.yaml")
    return 1 if report.failed else 0
