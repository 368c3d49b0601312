"""`jetstream-assets demo`: the bundled sample written into JETSTREAM_HOME, then the whole pipeline."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from jetstream_assets.console import ProgressPrinter, print_report
from jetstream_assets.sample.designs import DEMO_BROKEN_METRIC, DEMO_BROKEN_METRIC_SLUG, DEMO_SRM_SLUG
from jetstream_assets.settings import setting

# experiments whose checks fail on purpose, and what the user sees of it while they run
PLANTED_FAILURES = {
    DEMO_SRM_SLUG: "planted failure: a 58/42 split where 50/50 was planned; its sample_ratio check will FAIL",
    DEMO_BROKEN_METRIC_SLUG: f"planted failure: metric {DEMO_BROKEN_METRIC} reads a column that does not exist; "
    "expect ERROR lines for it below, its checks will FAIL, and its other metrics are still published",
}
CHECK_HEADER = ("experiment", "asset", "check", "result", "severity", "description")


def _print_checks(report) -> None:
    print(f"\nAsset checks (failures planted on purpose in {' and '.join(PLANTED_FAILURES)}):")
    rows = [
        (o.slug, c.asset_key.to_user_string(), c.check_name, "passed" if c.passed else "FAILED",
         c.severity.value, c.description or "")
        for o in report.outcomes for c in o.checks
    ]
    # every column padded to its widest cell but the last (the description), which runs on
    widths = [max(len(row[i]) for row in [CHECK_HEADER, *rows]) for i in range(len(CHECK_HEADER) - 1)] + [0]
    rule = tuple("-" * w for w in widths[:-1]) + ("-" * len(CHECK_HEADER[-1]),)
    for row in [CHECK_HEADER, rule, *rows]:
        print("  " + "  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths)).rstrip())


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
    print("\nResults pages (open in a browser, offline):")
    for path in sorted(bucket_root.glob("results/*.html")):
        print(f"  {path.as_uri()}")
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
    from jetstream_assets.sample.demo_sample import write_demo_sample
    from jetstream_assets.sample.designs import DEMO_ANALYSIS_DATE
    from jetstream_assets.sample.telemetry import CLIENTS_DAILY_TABLE, EVENTS_TABLE

    home = Path(setting("JETSTREAM_HOME")).expanduser().absolute()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["JETSTREAM_HOME"] = str(home)
    snapshot = home / "experimenter_v8.json"
    print(f"Writing the bundled sample into {home} ...", flush=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        telemetry = write_demo_sample(con, snapshot)
    print(f"  {EVENTS_TABLE}: {len(telemetry.events):,} rows, "
          f"{CLIENTS_DAILY_TABLE}: {len(telemetry.clients_daily):,} rows")
    os.environ.setdefault("EXPERIMENTER_URL", str(snapshot))

    from jetstream_assets.runner import daily_run

    print(f"Analysing every experiment up to {DEMO_ANALYSIS_DATE} (one Dagster run each) ...", flush=True)
    report = daily_run(DEMO_ANALYSIS_DATE, rerun=True, progress=ProgressPrinter(PLANTED_FAILURES))
    print()
    print_report(report)
    _print_checks(report)
    _summary(report)
    print(f"\nRuns are recorded in DAGSTER_HOME={os.environ['DAGSTER_HOME']}; open the UI with:\n"
          f"  DAGSTER_HOME={os.environ['DAGSTER_HOME']} JETSTREAM_HOME={home} dagster dev -w workspace.yaml")
    return 1 if report.failed else 0
