"""BigQuery SQL (metric-hub's dialect) translated for DuckDB with sqlglot.

SQL is written once in BigQuery's dialect. On DuckDB, `project.dataset.table` reads `dataset.table`
of the warehouse file, and the few mozfun UDFs metric-hub configs rely on map to DuckDB built-ins.
"""

from __future__ import annotations

import functools

import sqlglot
from sqlglot import exp


class SqlTranslationError(ValueError):
    pass


def _is_mozfun(node: exp.Dot, namespace: str, name: str) -> exp.Anonymous | None:
    inner, call = node.this, node.expression
    if not isinstance(call, exp.Anonymous) or call.name.lower() != name:
        return None
    if isinstance(inner, exp.Dot) and inner.sql(dialect="bigquery").lower().replace("`", "") == f"mozfun.{namespace}":
        return call
    return None


def _rewrite(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Table) and node.args.get("catalog") is not None:
        node.set("catalog", None)
        return node
    if isinstance(node, exp.Anonymous) and node.name.upper() == "IEEE_DIVIDE" and len(node.expressions) == 2:
        # DuckDB's float division already follows IEEE 754 (x/0 = ±inf, 0/0 = NaN)
        a, b = (exp.Cast(this=e, to=exp.DataType.build("DOUBLE")) for e in node.expressions)
        return exp.Div(this=a, expression=b)
    if isinstance(node, exp.Dot):
        call = _is_mozfun(node, "map", "get_key")
        if call is not None:
            mapping, key = call.expressions
            return exp.Bracket(this=mapping, expressions=[key])
    return node


@functools.lru_cache(maxsize=4096)
def bigquery_to_duckdb(sql: str) -> str:
    """Translate one or more BigQuery statements to DuckDB's dialect."""
    try:
        statements = sqlglot.parse(sql, read="bigquery")
    except sqlglot.errors.ParseError as e:
        raise SqlTranslationError(f"cannot parse SQL as BigQuery: {e}") from e
    return ";\n".join(
        stmt.transform(_rewrite).sql(dialect="duckdb") for stmt in statements if stmt is not None
    )


def quote_identifier(name: str) -> str:
    """A BigQuery identifier in backticks; backticks and backslashes inside are escaped."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(value: str) -> str:
    """A BigQuery string literal; everything that could close it is escaped."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
    return "'" + escaped + "'"
