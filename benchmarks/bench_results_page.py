"""How fast a results page of many branches and metrics is written and opened in a browser.

Usage: python benchmarks/bench_results_page.py [--branches 10] [--metrics 60] [--windows 5] [--repeats 5]
       [--chromium /usr/bin/chromium]   (needs the `browser` extra)

The page has both analysis bases and two segments (4 views, one shown), weekly windows, and per metric a
forest plot, a means table and a weekly chart. Browser time = navigation start to the load event, and to the
first contentful paint, in headless chromium (median of `--repeats` fresh pages).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from jetstream_assets.results_page import render_page
from jetstream_assets_tests.test_results_browser import CHROMIUM_ARGS
from jetstream_assets_tests.wide_page import wide_page

TIMINGS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const paint = performance.getEntriesByName('first-contentful-paint')[0];
  return {load: nav.loadEventEnd, paint: paint ? paint.startTime : null};
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--branches", type=int, default=10)
    parser.add_argument("--metrics", type=int, default=60)
    parser.add_argument("--windows", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    data = wide_page(args.branches, args.metrics, windows=args.windows, bases=("enrollments", "exposures"),
                     segments=("all", "heavy_users"))
    started = time.perf_counter()
    html = render_page(data)
    render_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wide.html"
        path.write_text(html)
        loads, paints = [], []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            for _ in range(args.repeats):
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                page.goto(path.as_uri())
                page.wait_for_load_state("load")
                timing = page.evaluate(TIMINGS)
                loads.append(timing["load"])
                paints.append(timing["paint"] or float("nan"))
                page.close()
            browser.close()
    rows = sum(len(r) for r in data.statistics.values())
    print(f"{args.branches} branches × {args.metrics} metrics, {args.windows} weekly windows, 2 bases × 2 segments "
          f"({rows:,} statistics rows)")
    print("| written by Python | page size | first contentful paint | load event |")
    print("|---|---|---|---|")
    print(f"| {render_seconds:.2f} s | {len(html) / 2**20:.1f} MiB | {statistics.median(paints):.0f} ms | "
          f"{statistics.median(loads):.0f} ms |")


if __name__ == "__main__":
    main()
