"""The BigQuery-emulator tier cannot pass on nothing in CI: without an emulator its tests fail there
(a developer without one still sees them skipped)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def emulator_tier(**env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("CI", "BQEMULATOR_PYTHON")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "bigquery_emulator",
         "jetstream_assets_tests/test_bigquery_emulator.py"],
        cwd=ROOT, env=base | {"BQEMULATOR_PYTHON": str(ROOT / "no-such-venv" / "bin" / "python"), **env},
        capture_output=True, text=True, timeout=300,
    )


def test_emulator_tier_fails_in_ci_without_an_emulator() -> None:
    in_ci = emulator_tier(CI="true")
    assert in_ci.returncode == 1, in_ci.stdout[-2000:]
    assert "CI: BQEMULATOR_PYTHON is not set" in in_ci.stdout
    assert " passed" not in in_ci.stdout and " skipped" not in in_ci.stdout


def test_ci_runs_the_emulator_tier_as_a_ci_run() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert 'python -m pytest -q -m "not bigquery_emulator and ' in script
    assert 'CI=true BQEMULATOR_PYTHON="$PWD/.venv-bqemulator/bin/python" python -m pytest -q -m bigquery_emulator' in script
