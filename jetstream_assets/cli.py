"""`jetstream-assets`: demo, run, rerun and validate-config (contract §5)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from jetstream_assets.validate_config import add_arguments as add_validate_arguments


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a YYYY-MM-DD date") from None


def _cmd_run(args: argparse.Namespace) -> int:
    from jetstream_assets.console import ProgressPrinter, print_report
    from jetstream_assets.runner import daily_run

    report = daily_run(args.date, args.experiment_slug or None, progress=ProgressPrinter())
    print_report(report)
    return 1 if report.failed or not report.snapshot_ok else 0


def _cmd_rerun(args: argparse.Namespace) -> int:
    from jetstream_assets.console import ProgressPrinter, print_report
    from jetstream_assets.dagster_defs.run_tags import yesterday
    from jetstream_assets.runner import daily_run

    report = daily_run(args.date or yesterday(), args.experiment_slug, rerun=True, progress=ProgressPrinter())
    print_report(report)
    return 1 if report.failed else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from jetstream_assets.demo import run_demo

    return run_demo()


def _cmd_validate(args: argparse.Namespace) -> int:
    from jetstream_assets.validate_config import validate_paths

    return validate_paths([Path(p) for p in args.paths], dry_run=not args.no_dry_run, platform=args.platform)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jetstream-assets", description="Jetstream's experiment analysis as a Dagster asset graph."
    )
    parser.add_argument("--verbose", action="store_true", help="print the traceback of an error that stops the command")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="write the bundled sample into --home and run the whole pipeline on it")
    demo.add_argument("--home", help="embedded engine home (default: $JETSTREAM_HOME or ./.jetstream)")
    demo.set_defaults(func=_cmd_demo)

    run = sub.add_parser("run", help="Jetstream's daily run for one analysis date, as Dagster runs")
    run.add_argument("--date", type=_date, required=True, help="last day of complete data, YYYY-MM-DD")
    run.add_argument("--experiment-slug", action="append", help="analyse only this experiment (repeatable)")
    run.set_defaults(func=_cmd_run)

    rerun = sub.add_parser("rerun", help="re-analyse every date of an experiment (a partition backfill)")
    rerun.add_argument("--experiment-slug", action="append", required=True)
    rerun.add_argument("--date", type=_date, help="last date to analyse (default: yesterday)")
    rerun.set_defaults(func=_cmd_rerun)

    validate = sub.add_parser("validate-config", help="parse and dry-run metric-hub configs")
    add_validate_arguments(validate)
    validate.set_defaults(func=_cmd_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    from jetstream_assets.command_errors import exit_code_of

    args = build_parser().parse_args(argv)
    if getattr(args, "home", None):
        os.environ["JETSTREAM_HOME"] = args.home
    return exit_code_of(lambda: args.func(args), verbose=args.verbose)


if __name__ == "__main__":
    sys.exit(main())
