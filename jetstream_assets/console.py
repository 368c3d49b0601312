"""What `jetstream-assets run`, `rerun` and `demo` print: progress per experiment, the run report, and
Dagster's warnings and errors on stderr, one line each."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import dagster as dg

from jetstream_assets.stop_signals import stop_requested

if TYPE_CHECKING:  # the runner prints through this module's logger; only its types are needed here
    from jetstream_assets.runner import ExperimentOutcome, RunReport


def one_line(text: str) -> str:
    """Multi-line text (DuckDB errors carry the SQL and a caret line) folded to one line."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


class _OneLineFormatter(logging.Formatter):
    """Without Dagster's stack traces: the run's event log in the instance keeps them for the UI."""

    def format(self, record: logging.LogRecord) -> str:
        return one_line(super().format(record).split("Stack Trace:", 1)[0])


def _not_stopping(_record: logging.LogRecord) -> bool:
    """After SIGINT/SIGTERM the interrupted run's errors are noise: the CLI's last line says what stopped."""
    return stop_requested() is None


def _stderr_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLineFormatter("%(levelname)s - %(message)s"))
    handler.addFilter(_not_stopping)
    return handler


def route_framework_warnings() -> None:
    """Dagster's own Python loggers (e.g. a blocking check that emitted no result for a skipped experiment)
    print through the same one-line handler instead of Python's bare last-resort output."""
    framework = logging.getLogger("dagster._core")
    if not framework.handlers:
        handler = _stderr_handler()
        handler.addFilter(_not_a_step_with_nothing_to_do)
        framework.addHandler(handler)
        framework.propagate = False


def _not_a_step_with_nothing_to_do(record: logging.LogRecord) -> bool:
    """A step with nothing to do on its date (no new window, a skip) materializes nothing, so its checks
    emit nothing and Dagster says so for each gated step: expected, and the progress line already says it."""
    return "emitted no result" not in record.getMessage()


@dg.logger(
    config_schema={"log_level": dg.Field(str, default_value="WARNING")},
    description="Dagster's console log on stderr, each message on one line.",
)
def one_line_console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    logger = logging.Logger("jetstream-assets", level=init_context.logger_config["log_level"])
    logger.addHandler(_stderr_handler())
    return logger


class ProgressPrinter:
    """A line as each experiment starts and one as it ends, with its elapsed seconds; `notes` adds a
    line after the start of the experiments named (e.g. what their planted failures will log)."""

    def __init__(self, notes: dict[str, str] | None = None):
        self.notes = notes or {}
        self._position = ""

    def started(self, slug: str, index: int, total: int) -> None:
        self._position = f"[{index}/{total}]"
        print(f"{self._position} {slug}: started", flush=True)
        if slug in self.notes:
            print(f"{' ' * len(self._position)} {self.notes[slug]}", flush=True)

    def finished(self, outcome: ExperimentOutcome, seconds: float) -> None:
        detail = f" ({outcome.detail})" if outcome.detail else ""
        print(f"{self._position} {outcome.slug}: {outcome.status} in {seconds:.1f} s{detail}", flush=True)


def print_report(report: RunReport) -> None:
    refreshed = "refreshed" if report.snapshot_ok else "NOT refreshed (kept the last good one)"
    print(f"analysis date {report.date}: Experimenter snapshot {refreshed}")
    for o in report.outcomes:
        line = f"  {o.status:9} {o.slug}"
        if o.detail:
            line += f"  ({o.detail})"
        print(line)
