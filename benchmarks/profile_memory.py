"""Peak resident memory of each step of one experiment's full partition materialization (embedded engine).

    python benchmarks/profile_memory.py --clients 300000

Generates the benchmark's telemetry (see bench_pipeline.py), then runs the analysis job in this process while a
thread samples the process's RSS every 50 ms; each sample is attributed to the step running at that moment (from
the run's event log). Prints the peak RSS per step.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import threading
import time
from pathlib import Path

from bench_pipeline import ANALYSIS_DATE, SLUG, prepare


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=300_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jetstream-memory-") as tmp:
        home = Path(tmp)
        prepare(home, args.clients)
        os.environ.update(JETSTREAM_HOME=str(home), DAGSTER_HOME=str(home / "dagster_home"),
                          EXPERIMENTER_URL=str(home / "experimenter.json"), METRIC_HUB_PATH=str(home / "metric-hub"))
        (home / "dagster_home").mkdir()
        (home / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        from jetstream_assets.runner import analyse, dagster_instance, refresh_snapshot

        instance = dagster_instance(str(home))
        refresh_snapshot(instance)
        instance.add_dynamic_partitions("jetstream_experiments", [SLUG])
        samples: list[tuple[float, float]] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                samples.append((time.time(), rss_mib()))
                time.sleep(0.05)

        print(f"RSS before the run: {rss_mib():.0f} MiB")
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        outcome = analyse(instance, SLUG, ANALYSIS_DATE, rerun=True)
        done.set()
        sampler.join()
        starts = sorted(
            (record.event_log_entry.timestamp, record.event_log_entry.step_key)
            for record in instance.get_records_for_run(outcome.run_id).records
            if record.event_log_entry.dagster_event and record.event_log_entry.dagster_event.event_type_value == "STEP_START"
        )
        peaks: dict[str, float] = {}
        for at, rss in samples:
            step = next((key for start, key in reversed(starts) if start <= at), "(run set-up)")
            peaks[step] = max(peaks.get(step, 0.0), rss)
        print(f"{args.clients:,} clients, {outcome.status}; peak RSS per step (MiB):")
        for step, peak in peaks.items():
            print(f"  {step:<40} {peak:8.0f}")


if __name__ == "__main__":
    main()
