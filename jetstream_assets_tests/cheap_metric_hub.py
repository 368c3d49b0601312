"""A metric-hub folder with the bundled definitions and two cheap weekly metrics as the defaults, so an
analysis step takes about a second."""

from __future__ import annotations

import shutil
from pathlib import Path

from jetstream_assets.settings import bundled_metric_hub

CHEAP_DEFAULTS = """
[metrics]
weekly = ["active_hours", "searched"]

[metrics.active_hours.statistics.bootstrap_mean]
num_samples = 200

[metrics.searched.statistics.binomial]
"""


def write_cheap_metric_hub(root: Path, configs: dict[str, str] | None = None) -> Path:
    """`root` as a metric-hub checkout: the bundled definitions, the cheap defaults for Firefox desktop,
    and `configs` as `jetstream/<slug>.toml`."""
    shutil.copytree(Path(bundled_metric_hub()) / "definitions", root / "definitions")
    (root / "jetstream" / "defaults").mkdir(parents=True)
    (root / "jetstream" / "defaults" / "firefox_desktop.toml").write_text(CHEAP_DEFAULTS)
    for slug, text in (configs or {}).items():
        (root / "jetstream" / f"{slug}.toml").write_text(text)
    return root
