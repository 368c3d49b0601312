"""The Dagster UI on the demo's instance, in a real browser (Debian's chromium driven by Playwright): each
experiment's alerts are shown on its own partition. Marker `browser` (see browser_fixtures). Set
DAGSTER_UI_SCREENSHOTS=docs/ui to refresh the README's screenshots."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from jetstream_assets.sample.designs import DEMO_SRM_SLUG
from jetstream_assets_tests.browser_fixtures import DemoHome, screenshot_dir

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
SAMPLE_RATIO_CHECK = "/assets/mozanalysis/enrollments?view=checks&checkDetail=sample_ratio"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dagster_ui(demo_home: DemoHome) -> Iterator[str]:
    """A real `dagster-webserver` on the demo's instance and workspace; yields its base URL."""
    port = _free_port()
    webserver = Path(sys.executable).with_name("dagster-webserver")
    process = subprocess.Popen([str(webserver), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
                               cwd=REPO, env=demo_home.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=5).read()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()[-3000:]
                assert time.monotonic() < deadline, "dagster-webserver did not answer within 180 s"
                time.sleep(1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _open(chromium, url: str):
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(url)
    page.get_by_text("Execution history", exact=True).wait_for(timeout=90_000)  # the check's own tabs
    page.wait_for_timeout(2000)  # Dagster's "join the community" dialog opens a moment after the page
    skip = page.get_by_role("button", name="Skip")
    if skip.count():
        skip.click()
    page.get_by_role("tab", name="Partitions").last.click()  # the check's tab, not the asset's
    return page, problems


def _partition_verdict(page, slug: str) -> str:
    """Select the partition in the check's Partitions tab; the verdict its detail panel shows."""
    page.locator(f'[title="{slug}"]').first.click()  # long keys are shown middle-truncated, titled in full
    panel = page.locator("h3, h2, div").filter(has_text=slug).filter(has_text="Latest execution").last
    panel.wait_for(timeout=30_000)
    text = panel.inner_text()
    return next(v for v in ("Failed", "Passed", "Skipped", "Execution failed") if v in text)


def test_the_failing_sample_ratio_check_is_shown_on_the_srm_experiments_partition(chromium, dagster_ui: str,
                                                                                   tmp_path: Path):
    page, problems = _open(chromium, dagster_ui + SAMPLE_RATIO_CHECK)
    assert _partition_verdict(page, DEMO_SRM_SLUG) == "Failed"
    page.get_by_text("chi-square p = 1.89e-18").first.wait_for(timeout=10_000)
    folder = screenshot_dir(tmp_path, "DAGSTER_UI_SCREENSHOTS")
    page.screenshot(path=str(folder / "sample_ratio_per_partition.png"))
    # the same check passes on a balanced experiment at the same time: alerts are per experiment
    assert _partition_verdict(page, "tab-groups-live") == "Passed"
    assert not problems, problems


def test_the_broken_metrics_partition_shows_its_errors_check_failing(chromium, dagster_ui: str, tmp_path: Path):
    page, problems = _open(chromium, dagster_ui
                           + "/assets/mozanalysis/statistics?view=checks&checkDetail=analysis_errors")
    assert _partition_verdict(page, "sidebar-broken-metric") == "Failed"
    assert _partition_verdict(page, "search-shortcuts-complete") == "Passed"
    page.screenshot(path=str(screenshot_dir(tmp_path, "DAGSTER_UI_SCREENSHOTS") / "analysis_errors_per_partition.png"))
    assert not problems, problems
