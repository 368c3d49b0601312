"""`jetstream-assets validate-config PATH... [--no-dry-run] [--platform APP]`: resolve metric-hub configs as
Jetstream's validate_config does (each experiment config against its Experimenter record), then dry-run
their SQL on the warehouse (validate_dry_run)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from jetstream_assets.experimenter.client import ExperimenterError, fetch_experimenter_payload
from jetstream_assets.experimenter.models import Experiment
from jetstream_assets.experimenter.parse import parse_experiments
from jetstream_assets.core.platforms import PLATFORMS
from jetstream_assets.metric_hub.validation import DEFAULT_PLATFORM, Validator
from jetstream_assets.settings import bundled_experimenter_snapshot, bundled_metric_hub, setting

if TYPE_CHECKING:
    from jetstream_assets.engines.warehouse import Warehouse


def experimenter_records(source: str | None = None) -> tuple[dict[str, Experiment], str | None]:
    """Experimenter's records by slug (EXPERIMENTER_URL, else the bundled sample), and a warning when
    they cannot be read: configs are then checked against placeholders, not refused."""
    source = source or setting("EXPERIMENTER_URL") or bundled_experimenter_snapshot()
    try:
        payload = fetch_experimenter_payload(source)
    except ExperimenterError as e:
        return {}, f"Experimenter records unavailable ({e}); configs are checked on placeholder experiments"
    parsed = parse_experiments(payload, today=dt.date.today())
    return {e.slug: e for e in parsed.experiments}, None


def validate_paths(
    paths: list[Path],
    *,
    dry_run: bool = True,
    warehouse: Warehouse | None = None,
    platform: str = DEFAULT_PLATFORM,
    experiments: dict[str, Experiment] | None = None,
) -> int:
    """Print every problem with its file, field/line and reason, and every WARNING (a key we do not act
    on); 0 when every file is valid, 1 otherwise. An experiment config is resolved against its Experimenter
    record, else on `platform` with placeholder dates."""
    if experiments is None:
        experiments, unavailable = experimenter_records()
        if unavailable:
            print(f"WARNING {unavailable}")
    validator = Validator(
        metric_hub_path=setting("METRIC_HUB_PATH") or bundled_metric_hub(), platform=platform,
        experiments=experiments,
    )
    checks = [check for path in paths for check in validator.check_path(path)]
    invalid: set[Path] = set()
    for check in checks:
        for warning in check.warnings:
            print(f"WARNING {warning}")
        if check.error is not None:
            print(f"INVALID {check.error}")
            invalid.add(check.file)
    if dry_run and not invalid:
        from jetstream_assets.validate_dry_run import dry_run_config

        if warehouse is None:
            from jetstream_assets.dagster_defs.resources import initialized_resources

            warehouse = initialized_resources()["warehouse"].get_warehouse()
        for check in checks:
            if check.config is not None:
                for problem in dry_run_config(warehouse, check.config, str(check.file)):
                    print(f"INVALID {problem}")
                    invalid.add(check.file)
    if invalid:
        print(f"{len(invalid)} of {len(checks)} files invalid")
    else:
        print(f"OK: {len(checks)} files in {', '.join(str(p) for p in paths)}")
    return 1 if invalid else 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """validate-config's arguments (the CLI's sub-command takes the same)."""
    parser.add_argument("paths", nargs="+", help="config files or metric-hub folders")
    parser.add_argument("--no-dry-run", action="store_true", help="only parse; don't dry-run the SQL")
    parser.add_argument(
        "--platform", default=DEFAULT_PLATFORM, choices=sorted(PLATFORMS),
        help="the app of an experiment config that has no Experimenter record (default: firefox_desktop)",
    )

