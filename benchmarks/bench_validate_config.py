"""validate-config on a whole metric-hub checkout: ours vs the official parser (mozilla-metric-config-parser).

    python benchmarks/bench_validate_config.py /path/to/metric-hub [--repeats 3] [--platform firefox_desktop] [--out docs/benchmarks/validate_config.md] [--verdicts FILE.json]

Both sides check the same files with the same placeholder experiments (no Experimenter record: experiment
configs on `--platform`, dates from `placeholder_dates`; defaults, outcomes and definitions on their own
platform), so their verdicts compare file for file. Ours is timed as one `validate-config PATH --no-dry-run`
call in a fresh process (`jetstream-assets validate-config`, as a user runs it); the official side loads the collection the way
Jetstream does (`ConfigCollection.from_github_repos([root, root/jetstream])`) and validates each file as
Jetstream's `validate_config` does, without the BigQuery dry run, each file on a deep copy of the
collection (resolving mutates shared definitions, so verdicts would depend on file order). An experiment config that one side rejects
on `--platform` is tried on every other platform too: the first that accepts it is "its own platform" (there
is no Experimenter here to say so).

Needs a git work tree (the official parser reads commit dates) and the dev dependencies (the official parser).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from jetstream_assets.metric_hub.platforms import PLATFORMS
from jetstream_assets.metric_hub.validation import DEFAULT_PLATFORM, Validator, layout_files, placeholder_dates


NOTES = """\
Notes:

- Ours is our own metric-hub layer (no official parser inside): it reaches the official verdicts and checks the
  whole checkout in one process well within 15 s on 2 cores, where the official parser needs tens of seconds only
  to load the collection; and it locates every problem as `file:line: field: reason`.
- Where verdicts differ, the official parser refuses a config only because it drops an experiment config's own
  `[parameters]` (`AnalysisSpec.merge` does not merge them, only outcomes' parameters are): the metrics using them
  fail there. Ours renders them and prints a WARNING that Jetstream ignores them.
- Official verdicts are `Config.validate` (defaults, then the config, then outcomes: what an analysis resolves).
  Jetstream's `validate_config` then also resolves the bare spec, which the first resolve has mutated; that second
  step refuses configs that analyse fine (e.g. a metric redefined without statistics next to an outcome), so it is
  left out.
- Without Experimenter records, a placeholder experiment has no branches: both sides then accept any
  `reference_branch`.
"""


def official_collection(root: Path):
    from metric_config_parser.config import ConfigCollection

    return ConfigCollection.from_github_repos([str(root), str(root / "jetstream")])


def _official_experiment(slug: str, platform: str, file: Path):
    import toml
    from metric_config_parser.experiment import Experiment
    from pytz import UTC

    own = toml.load(file).get("experiment", {})
    start, _ = placeholder_dates(own.get("start_date"), own.get("end_date"))
    return Experiment(
        experimenter_slug=slug, normandy_slug=slug, type="v6", status="Live", branches=[],
        end_date=None, reference_branch="control", is_high_population=False,
        start_date=dt.datetime.combine(start, dt.time(), UTC), proposed_enrollment=14,
        app_id=PLATFORMS[platform].app_id, app_name=platform, outcomes=[],
    )


def official_verdict(collection, file: Path, platform: str) -> str | None:
    """None when the official parser accepts `file`, else its error (as Jetstream's validate runs it)."""
    from metric_config_parser.config import Config, DefaultConfig, DefinitionConfig, Outcome, entity_from_path
    from metric_config_parser.function import FunctionsSpec
    import toml

    configs = copy.deepcopy(collection)  # resolving mutates shared definitions (e.g. a metric's statistics)
    try:
        if file.name == "functions.toml":
            FunctionsSpec.from_dict(toml.load(file))
            return None
        entity = entity_from_path(file)
        if isinstance(entity, Outcome):
            entity.validate(configs)
        elif isinstance(entity, (DefaultConfig, DefinitionConfig)):
            entity.validate(configs)
        elif isinstance(entity, Config):
            experiment = _official_experiment(file.stem, platform, file)
            # what an analysis resolves: defaults, then the config, then outcomes. (Jetstream's validate then
            # also resolves the bare spec, which the first resolve has mutated: it refuses configs that
            # analyse fine, e.g. a metric redefined without statistics next to an outcome.)
            entity.validate(configs, experiment)
        return None
    except Exception as e:  # the verdict is whatever it raises
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


def _is_experiment_config(root: Path, file: Path) -> bool:
    return file.parent == root / "jetstream"


def official_verdicts(root: Path, files: list[Path], platform: str) -> tuple[dict[str, dict], float, float]:
    """Verdicts per file, and the seconds to load the collection and to load + validate every file once
    on `platform` (the retries on other platforms are not timed)."""
    started = time.perf_counter()
    collection = official_collection(root)
    loaded = time.perf_counter()
    first = {file: official_verdict(collection, file, platform) for file in files}
    validated = time.perf_counter()
    out = {}
    for file in files:
        reason, own = first[file], platform
        if reason and _is_experiment_config(root, file):
            for other in PLATFORMS:
                if other != platform and official_verdict(collection, file, other) is None:
                    reason, own = None, other
                    break
        out[str(file.relative_to(root))] = {"error": reason, "platform": own}
    return out, loaded - started, validated - started


def our_verdicts(root: Path, files: list[Path], platform: str) -> dict[str, dict]:
    validators = {p: Validator(platform=p, experiments={}) for p in PLATFORMS}
    out = {}
    for file in files:
        error = validators[platform].check_file(file).error
        own = platform
        if error and _is_experiment_config(root, file):
            for other in PLATFORMS:
                if other != platform and validators[other].check_file(file).error is None:
                    error, own = None, other
                    break
        out[str(file.relative_to(root))] = {"error": str(error) if error else None, "platform": own}
    return out


def time_ours(root: Path, platform: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "jetstream_assets.cli", "validate-config", str(root), "--no-dry-run",
         "--platform", platform],
        capture_output=True, check=False, env={**os.environ, "EXPERIMENTER_URL": ""},
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--platform", default=DEFAULT_PLATFORM)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("docs/benchmarks/validate_config.md"))
    parser.add_argument("--verdicts", type=Path, help="also write both sides' verdicts per file (JSON)")
    args = parser.parse_args()
    root = args.checkout.resolve()
    files = layout_files(root)

    our_times = [time_ours(root, args.platform) for _ in range(args.repeats)]
    ours = our_verdicts(root, files, args.platform)
    official, official_load, official_total = official_verdicts(root, files, args.platform)

    rejected_ours = {f for f, v in ours.items() if v["error"]}
    rejected_official = {f for f, v in official.items() if v["error"]}
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    lines = [
        "# validate-config on a whole metric-hub checkout",
        "",
        f"Checkout: mozilla/metric-hub @ {commit or 'unknown'}, {len(files)} files Jetstream reads "
        f"({sum(_is_experiment_config(root, f) for f in files)} experiment configs). "
        f"Machine: {os.cpu_count()} cores. Measured {dt.date.today().isoformat()} with "
        "`python benchmarks/bench_validate_config.py <checkout>`.",
        "",
        "No Experimenter record: experiment configs on `--platform "
        f"{args.platform}` with placeholder dates; a config rejected there is tried on every other platform "
        "(the first that accepts it counts as its own platform).",
        "",
        "| | rejected files | wall time (median) | runs |",
        "|---|---:|---:|---:|",
        f"| ours: `validate-config <checkout> --no-dry-run` (one fresh process) | "
        f"{len(rejected_ours)} | {statistics.median(our_times):.1f} s | {len(our_times)} |",
        f"| official parser: load the collection | | {official_load:.1f} s | 1 |",
        f"| official parser: load + validate every file (each on a copy of the collection) | "
        f"{len(rejected_official)} | {official_total:.1f} s | 1 |",
        "",
        f"Same verdict on {sum((f in rejected_ours) == (f in rejected_official) for f in ours)} of {len(ours)} files.",
        "",
    ]
    differing = sorted(rejected_ours ^ rejected_official)
    if differing:
        lines += ["Files where the verdicts differ:", "", "| file | ours | official |", "|---|---|---|"]
        lines += [f"| {f} | {ours[f]['error'] or 'OK'} | {official[f]['error'] or 'OK'} |" for f in differing]
        lines.append("")
    lines += ["Files both reject:", "", "| file | ours | official |", "|---|---|---|"]
    lines += [
        f"| {f} | {ours[f]['error'].replace('|', '/')} | {official[f]['error'].replace('|', '/')} |"
        for f in sorted(rejected_ours & rejected_official)
    ]
    lines += ["", NOTES]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    if args.verdicts:
        args.verdicts.write_text(json.dumps({"ours": ours, "official": official}, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
