"""Fixtures of the `browser` tier: Debian's chromium driven by Playwright (no browser download), and one demo run
shared by every browser test of the session (it takes a minute or two).

The browser tier of .ci/run installs chromium and sets CHROMIUM_EXECUTABLE. With the variable set, a missing
chromium or Playwright fails the tests; without it (a developer's machine, the main test line) they are skipped.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jetstream_assets_tests.fixtures_sample import CLI, cli_env, new_dagster_home

CHROMIUM_EXECUTABLE = "CHROMIUM_EXECUTABLE"
# without the background-networking flags chromium keeps dialling Google's hosts, which this network refuses
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@dataclass(frozen=True)
class DemoHome:
    home: Path
    dagster_home: Path
    env: dict[str, str]  # the CLI's environment for this home

    @property
    def results(self) -> Path:
        return self.home / "bucket" / "results"


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """A headless chromium from CHROMIUM_EXECUTABLE; skipped when the variable is unset, failing when it names
    no executable or Playwright is not installed."""
    executable = os.environ.get(CHROMIUM_EXECUTABLE)
    if not executable:
        pytest.skip(f"{CHROMIUM_EXECUTABLE} is not set (the browser tier of .ci/run sets it)")
    assert os.access(executable, os.X_OK), f"{CHROMIUM_EXECUTABLE}={executable} is not an executable"
    from playwright.sync_api import sync_playwright  # the `browser` extra; an ImportError fails the test

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory, chromium) -> DemoHome:
    """`jetstream-assets demo` run into a fresh home and Dagster instance."""
    root = tmp_path_factory.mktemp("browser")
    home, dagster_home = root / "home", new_dagster_home(root / "dagster_home")
    env = cli_env(home, dagster_home, experimenter_url="")
    env.pop("EXPERIMENTER_URL")  # the demo writes and uses its own snapshot
    done = subprocess.run([CLI, "demo", "--home", str(home)], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    env["EXPERIMENTER_URL"] = str(home / "experimenter_v8.json")
    return DemoHome(home, dagster_home, env)


def screenshot_dir(tmp_path: Path, variable: str) -> Path:
    """Where a test saves its screenshots: the folder in `variable` (to refresh the README's), else tmp_path."""
    folder = Path(os.environ.get(variable) or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
