"""Analysis logging: WARNING and ERROR records become rows of `monitoring.logs` (the seed's columns
plus Jetstream's context columns), buffered and flushed at the end of a step or on failure."""

from __future__ import annotations

import datetime as dt
import logging
import logging.handlers
import sys
import traceback
from typing import Any

from jetstream_assets.core.schema import LOGS_SCHEMA
from jetstream_assets.engines.warehouse import Warehouse

LOGGER_NAME = "jetstream_assets.analysis"
LOGS_TABLE = "logs"
CONTEXT_FIELDS = ("experiment", "metric", "statistic", "analysis_basis", "segment", "analysis_period")
_MAX_EXCEPTION_CHARS = 20_000


def analysis_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def context(**fields: Any) -> dict[str, Any]:
    """`extra=` for a log call: the analysis coordinates the record belongs to."""
    unknown = set(fields) - set(CONTEXT_FIELDS)
    if unknown:
        raise ValueError(f"unknown log context fields {sorted(unknown)}")
    return {"jetstream": {k: v for k, v in fields.items() if v is not None}}


def log_row(record: logging.LogRecord, source: str = "jetstream") -> dict[str, Any]:
    ctx = getattr(record, "jetstream", {}) or {}
    exc_type = exc_text = None
    filename, func_name = record.filename, record.funcName
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        exc_type = type(exc).__name__
        exc_text = "".join(traceback.format_exception(exc))[-_MAX_EXCEPTION_CHARS:]
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:  # where it was raised, not where it was logged
            filename, func_name = frames[-1].filename.rsplit("/", 1)[-1], frames[-1].name
    return {
        "timestamp": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).replace(tzinfo=None),
        "experiment": ctx.get("experiment"),
        "message": record.getMessage(),
        "log_level": record.levelname,
        "exception": exc_text,
        "filename": filename,
        "func_name": func_name,
        "exception_type": exc_type,
        "source": source,
        "metric": ctx.get("metric"),
        "statistic": ctx.get("statistic"),
        "analysis_basis": ctx.get("analysis_basis"),
        "segment": ctx.get("segment"),
        "analysis_period": ctx.get("analysis_period"),
    }


class LogsTableHandler(logging.handlers.BufferingHandler):
    """Buffers WARNING+ records and appends them to `<monitoring>.logs` on flush.

    A failed write keeps the rows buffered (and says so on stderr), so a warehouse hiccup does not
    lose records; the next flush retries.
    """

    def __init__(self, warehouse: Warehouse, capacity: int = 50, source: str = "jetstream"):
        super().__init__(capacity)
        self.setLevel(logging.WARNING)
        self.warehouse = warehouse
        self.source = source
        self.rows_written = 0

    def flush(self) -> None:
        self.acquire()
        try:
            if not self.buffer:
                return
            rows = [log_row(r, self.source) for r in self.buffer]
            try:
                self.warehouse.load_rows(
                    self.warehouse.monitoring_dataset, LOGS_TABLE, rows, LOGS_SCHEMA, append=True
                )
            except Exception as e:  # never let logging break the analysis; keep the rows
                print(f"jetstream_assets: could not write {len(rows)} log rows: {e}", file=sys.stderr)
                return
            self.rows_written += len(rows)
            self.buffer.clear()
        finally:
            self.release()
