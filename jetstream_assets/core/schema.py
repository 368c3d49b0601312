"""Table schemas in BigQuery's vocabulary, shared by every engine.

A schema is written once here (BigQuery types, as Jetstream and bigquery-etl declare them);
each engine adapter maps it to its own DDL.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # STRING, INT64, FLOAT64, NUMERIC, BOOL, DATE, TIMESTAMP, JSON, RECORD
    mode: str = "NULLABLE"  # NULLABLE | REQUIRED | REPEATED
    fields: tuple["Field", ...] = field(default=())
    description: str = ""


Schema = tuple[Field, ...]

_DUCKDB_SCALARS = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "INTEGER": "BIGINT",
    "FLOAT64": "DOUBLE",
    "FLOAT": "DOUBLE",
    "NUMERIC": "DECIMAL(38, 9)",
    "BOOL": "BOOLEAN",
    "BOOLEAN": "BOOLEAN",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMP",
    "JSON": "JSON",
}


def duckdb_type(f: Field) -> str:
    """DuckDB column type for a BigQuery field (RECORD -> STRUCT, REPEATED -> list)."""
    if f.type in ("RECORD", "STRUCT"):
        inner = ", ".join(f'"{c.name}" {duckdb_type(c)}' for c in f.fields)
        base = f"STRUCT({inner})"
    else:
        base = _DUCKDB_SCALARS[f.type]
    return f"{base}[]" if f.mode == "REPEATED" else base


def column_names(schema: Schema) -> list[str]:
    return [f.name for f in schema]


STATISTICS_SCHEMA: Schema = (
    Field("metric", "STRING"),
    Field("statistic", "STRING"),
    Field("parameter", "NUMERIC"),
    Field("branch", "STRING"),
    Field("comparison", "STRING"),
    Field("comparison_to_branch", "STRING"),
    Field("ci_width", "FLOAT64"),
    Field("point", "FLOAT64"),
    Field("lower", "FLOAT64"),
    Field("upper", "FLOAT64"),
    Field("segment", "STRING"),
    Field("analysis_basis", "STRING"),
)

LOGS_SCHEMA: Schema = (
    Field("timestamp", "TIMESTAMP"),
    Field("experiment", "STRING"),
    Field("message", "STRING"),
    Field("log_level", "STRING"),
    Field("exception", "STRING"),
    Field("filename", "STRING"),
    Field("func_name", "STRING"),
    Field("exception_type", "STRING"),
    Field("source", "STRING"),
    Field("metric", "STRING"),
    Field("statistic", "STRING"),
    Field("analysis_basis", "STRING"),
    Field("segment", "STRING"),
    Field("analysis_period", "STRING"),
)

QUERY_COST_SCHEMA: Schema = (
    Field("submission_timestamp", "TIMESTAMP"),
    Field("destination_table", "STRING"),
    Field("query", "STRING"),
    Field("total_bytes_processed", "INT64"),
    Field("cost_usd", "FLOAT64"),
    Field("experiment_slug", "STRING"),
    Field("total_slot_ms", "INT64"),
    Field("duration_minutes", "FLOAT64"),
    Field("error_reason", "STRING"),
)
