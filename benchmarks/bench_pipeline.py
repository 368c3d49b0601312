"""One experiment's full partition materialization on the embedded engine, at several scales, and a
daily incremental run against a full rerun at the same date.

    python benchmarks/bench_pipeline.py                       # 10k, 100k and 1M enrolled clients
    python benchmarks/bench_pipeline.py --clients 10000 --repeats 1

Shape (issue 5/5): 2 branches, 7 days of enrollment then 28 days of clients_daily, 10 metrics, 1 segment,
both analysis bases, on the embedded engine. Telemetry is generated with the bundled generator outside the
timed part. Each timed materialization runs in a fresh process, so its peak RSS is the pipeline's own
(Dagster and pandas included). Results go to docs/benchmarks/pipeline.md and pipeline_scaling.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import duckdb

from jetstream_assets.sample.designs import BranchDesign, ExperimentDesign
from jetstream_assets.sample.experimenter_payload import experimenter_payload
from jetstream_assets.sample.telemetry import generate_telemetry, write_telemetry

SLUG = "bench-experiment"
START = dt.date(2026, 1, 1)
ENROLLMENT_END = dt.date(2026, 1, 7)  # E = 7, last enrollment day L = Jan 8
ANALYSIS_DATE = dt.date(2026, 2, 4)  # L + 27: the 4th weekly window becomes ready
DATA_START = START - dt.timedelta(days=7)  # the segment looks at the week before enrollment
REPO = Path(__file__).resolve().parents[1]

METRICS = {  # 10 metrics over clients_daily: 8 means, 2 proportions
    "active_hours": "{{agg_sum('active_hours_sum')}}",
    "subsession_hours": "{{agg_sum('subsession_hours_sum')}}",
    "uri_count": "{{agg_sum('scalar_parent_browser_engagement_total_uri_count_sum')}}",
    "search_count": "{{agg_sum('search_count_all')}}",
    "ad_clicks": "{{agg_sum('ad_clicks_count_all')}}",
    "days_of_use": "COUNT(DISTINCT submission_date)",
    "max_daily_hours": "COALESCE(MAX(active_hours_sum), 0)",
    "hours_per_active_day": "COALESCE(SUM(active_hours_sum) / NULLIF(COUNT(DISTINCT submission_date), 0), 0)",
    "searched": "{{agg_any('search_count_all > 0')}}",
    "clicked_ad": "{{agg_any('ad_clicks_count_all > 0')}}",
}
BOOLEAN_METRICS = {"searched", "clicked_ad"}


def write_metric_hub(root: Path) -> None:
    (root / "definitions").mkdir(parents=True)
    (root / "jetstream" / "defaults").mkdir(parents=True)
    definitions = ['[data_sources.clients_daily]\nfrom_expression = "telemetry.clients_daily"\n'
                   'experiments_column_type = "simple"\n']
    for name, sql in METRICS.items():
        definitions.append(f'[metrics.{name}]\nselect_expression = "{sql}"\ndata_source = "clients_daily"\n')
    definitions.append(
        '[segments.heavy_users]\nselect_expression = "COALESCE(SUM(active_hours_sum), 0) > 5"\n'
        'data_source = "clients_daily_pre"\n'
        '[segments.data_sources.clients_daily_pre]\nfrom_expression = "telemetry.clients_daily"\n'
        "window_start = -7\nwindow_end = -1\n"
    )
    (root / "definitions" / "firefox_desktop.toml").write_text("\n".join(definitions))
    defaults = [f"[metrics]\nweekly = {json.dumps(list(METRICS))}\n"]
    for name in METRICS:
        statistic = "binomial" if name in BOOLEAN_METRICS else "bootstrap_mean"
        defaults.append(f"[metrics.{name}.statistics.{statistic}]\n")
    (root / "jetstream" / "defaults" / "firefox_desktop.toml").write_text("\n".join(defaults))
    (root / "jetstream" / f"{SLUG}.toml").write_text('[experiment]\nsegments = ["heavy_users"]\n')


def prepare(home: Path, clients: int) -> None:
    design = ExperimentDesign(
        slug=SLUG, start_date=START, enrollment_end_date=ENROLLMENT_END, end_date=None, proposed_enrollment=7,
        branches=(BranchDesign("control"), BranchDesign("treatment", effects={"active_hours_sum": 1.05})),
        n_clients=clients,
    )
    telemetry = generate_telemetry([design], data_start=DATA_START, data_end=ANALYSIS_DATE, background_clients=0, seed=7)
    home.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(home / "warehouse.duckdb")) as con:
        write_telemetry(con, telemetry)
    (home / "experimenter.json").write_text(json.dumps(experimenter_payload([design])))
    write_metric_hub(home / "metric-hub")


# Runs in a fresh process: untimed set-up (snapshot, partition), then the timed materialization.
WORKER = textwrap.dedent("""
    import json, os, sys, time, datetime as dt
    from jetstream_assets.runner import dagster_instance, refresh_snapshot, analyse
    from jetstream_assets.dagster_defs.resources import initialized_resources
    date, rerun = dt.date.fromisoformat(sys.argv[1]), sys.argv[2] == "rerun"
    instance = dagster_instance(os.environ["JETSTREAM_HOME"])
    refresh_snapshot(instance)
    instance.add_dynamic_partitions("jetstream_experiments", [sys.argv[3]])
    warehouse = initialized_resources()["warehouse"].get_warehouse()
    since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    started = time.perf_counter()
    outcome = analyse(instance, sys.argv[3], date, rerun=rerun)
    seconds = time.perf_counter() - started
    log = warehouse.query_log(since=since)
    scanned = log["total_bytes_processed"].fillna(0).sum() if "total_bytes_processed" in log else 0
    # VmHWM, not ru_maxrss: Linux carries the parent's RSS at fork into an exec'd child's ru_maxrss, so a parent
    # holding the generated telemetry would inflate it; VmHWM is this process's own high-water mark
    hwm_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(json.dumps({"seconds": seconds, "status": outcome.status, "detail": outcome.detail,
                      "max_rss_mib": hwm_kib / 1024,
                      "queries": int(len(log)), "bytes_scanned": int(scanned)}))
""")


def materialize(home: Path, date: dt.date, mode: str) -> dict:
    env = {**os.environ, "JETSTREAM_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home"),
           "EXPERIMENTER_URL": str(home / "experimenter.json"), "METRIC_HUB_PATH": str(home / "metric-hub")}
    (home / "dagster_home").mkdir(exist_ok=True)
    (home / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    done = subprocess.run([sys.executable, "-c", WORKER, date.isoformat(), mode, SLUG], env=env,
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["status"] != "analysed":
        raise RuntimeError(f"benchmark run {mode} {date} did not analyse: {result}")
    return result


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def bench_scale(clients: int, repeats: int, workdir: Path) -> dict:
    home = workdir / f"scale-{clients}"
    prepare(home, clients)
    runs = [materialize(home, ANALYSIS_DATE, "rerun") for _ in range(repeats)]
    # incremental: yesterday's state (every window up to D-1), then the daily run on D
    daily = []
    for _ in range(repeats):
        materialize(home, ANALYSIS_DATE - dt.timedelta(days=1), "rerun")
        daily.append(materialize(home, ANALYSIS_DATE, "daily"))
    return {
        "clients": clients,
        "full_seconds": median(runs, "seconds"), "full_rss_mib": max(r["max_rss_mib"] for r in runs),
        "full_rss_each_mib": [round(r["max_rss_mib"]) for r in runs],
        "daily_rss_each_mib": [round(r["max_rss_mib"]) for r in daily],
        "full_bytes": median(runs, "bytes_scanned"), "full_queries": median(runs, "queries"),
        "daily_seconds": median(daily, "seconds"), "daily_bytes": median(daily, "bytes_scanned"),
        "daily_queries": median(daily, "queries"),
    }


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = next((int(line.split()[1]) // 1024 // 1024 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} cores ({cpu}), {mem} GiB RAM, Python {platform.python_version()}, duckdb {duckdb.__version__}"


def write_report(results: list[dict], out: Path, repeats: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Pipeline benchmark: one experiment's partition on the embedded engine",
        "",
        f"Machine: {machine()}. Measured {dt.date.today()}; medians of {repeats} run(s); "
        "command: `python benchmarks/bench_pipeline.py`.",
        "",
        "Full = a rerun materializing enrollments, every ready window's metrics and statistics (4 weekly windows x 2 bases "
        "x 10 metrics x (all + 1 segment)) and the exports. Daily = the run on the same date after yesterday's state: only "
        "the newly ready window.",
        "",
        "| enrolled clients | full (s) | peak RSS (MiB) | full bytes scanned | daily (s) | daily bytes | daily/full time | daily/full bytes |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        bytes_ratio = f"{r['daily_bytes'] / r['full_bytes']:.2f}" if r["full_bytes"] else "n/a"
        lines.append(
            f"| {r['clients']:,} | {r['full_seconds']:.1f} | {r['full_rss_mib']:.0f} | {r['full_bytes']:,.0f} | "
            f"{r['daily_seconds']:.1f} | {r['daily_bytes']:,.0f} | {r['daily_seconds'] / r['full_seconds']:.2f} | {bytes_ratio} |"
        )
    (out / "pipeline.md").write_text("\n".join(lines) + "\n")
    (out / "pipeline.json").write_text(json.dumps(results, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    clients = [r["clients"] for r in results]
    ax.loglog(clients, [r["full_seconds"] for r in results], "o-", label="full partition (rerun)")
    ax.loglog(clients, [r["daily_seconds"] for r in results], "s-", label="daily incremental")
    ax.set_xlabel("enrolled clients (2 branches)")
    ax.set_ylabel("seconds (median)")
    ax.set_title("jetstream_assets on DuckDB: time against clients")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "pipeline_scaling.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jetstream-bench-") as tmp:
        results = []
        for clients in args.clients:
            result = bench_scale(clients, args.repeats, Path(tmp))
            print(json.dumps(result))
            results.append(result)
    write_report(results, args.out, args.repeats)
    print((args.out / "pipeline.md").read_text())


if __name__ == "__main__":
    main()
