"""Jinja rendering of metric-hub SQL snippets: select/from expressions and enrollment queries.

Helpers are the aggregation macros of metric-hub's `definitions/functions.toml` (each a SQL text with
a `{select_expr}` hole); the built-in three below are used when that file is absent or lacks them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jinja2

from jetstream_assets.experimenter.models import Experiment
from jetstream_assets.metric_hub.errors import ConfigError

BUILTIN_FUNCTIONS: dict[str, str] = {
    "agg_sum": "COALESCE(SUM({select_expr}), 0)",
    "agg_any": "COALESCE(LOGICAL_OR({select_expr}), FALSE)",
    "agg_histogram_mean": (
        'SAFE_DIVIDE(SUM(CAST(JSON_EXTRACT_SCALAR({select_expr}, "$.sum") AS int64)), '
        "SUM((SELECT SUM(value) FROM UNNEST(mozfun.hist.extract({select_expr}).values))))"
    ),
}


def functions_from_toml(data: Mapping[str, Any], path: str = "definitions/functions.toml") -> dict[str, str]:
    """`[functions.<name>] definition = "..."` tables of functions.toml -> {name: definition}."""
    functions = data.get("functions", {})
    if not isinstance(functions, Mapping):
        raise ConfigError("must be a table of functions", file=path, field="functions")
    out: dict[str, str] = {}
    for name, spec in functions.items():
        definition = spec.get("definition") if isinstance(spec, Mapping) else None
        if not isinstance(definition, str):
            raise ConfigError("a function needs a `definition` string", file=path, field=f"functions.{name}")
        out[name] = definition
    return out


@dataclass(frozen=True)
class ExperimentContext:
    """What `{{ experiment.* }}` exposes in templates (the names metric-hub configs use)."""

    normandy_slug: str
    experimenter_slug: str | None
    app_name: str
    app_id: str | None
    start_date: dt.date | None
    end_date: dt.date | None
    enrollment_end_date: dt.date | None
    enrollment_period: int | None
    reference_branch: str | None
    branches: tuple[str, ...]
    status: str
    is_rollout: bool
    segments: tuple[str, ...] = field(default=())

    @classmethod
    def of(cls, experiment: Experiment, enrollment_period: int | None) -> "ExperimentContext":
        return cls(
            normandy_slug=experiment.slug,
            experimenter_slug=None,
            app_name=experiment.app_name,
            app_id=experiment.app_id,
            start_date=experiment.start_date,
            end_date=experiment.end_date,
            enrollment_end_date=experiment.enrollment_end_date,
            enrollment_period=enrollment_period,
            reference_branch=experiment.reference_branch,
            branches=experiment.branch_slugs,
            status=experiment.status,
            is_rollout=experiment.is_rollout,
            segments=experiment.segments,
        )

    @property
    def slug(self) -> str:
        return self.normandy_slug

    @property
    def start_date_str(self) -> str:
        return _date_str(self.start_date, "start date")

    @property
    def end_date_str(self) -> str:
        return _date_str(self.end_date, "end date")

    @property
    def last_enrollment_date_str(self) -> str:
        if self.start_date is None:
            raise ValueError(f"experiment {self.normandy_slug} has no start date")
        return (self.start_date + dt.timedelta(days=self.enrollment_period or 0)).isoformat()


def _date_str(value: dt.date | None, what: str) -> str:
    if value is None:
        raise ValueError(f"the experiment has no {what}")
    return value.isoformat()


class SqlTemplates:
    """Renders metric-hub Jinja snippets with the aggregation helpers in scope."""

    def __init__(self, functions: Mapping[str, str] | None = None) -> None:
        self.functions = {**BUILTIN_FUNCTIONS, **(functions or {})}
        # StrictUndefined: a misspelt helper or parameter is a config error, not silently empty SQL
        self._env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
        self._env.globals.update({name: _macro(definition) for name, definition in self.functions.items()})

    def render(
        self,
        template: str,
        *,
        parameters: Mapping[str, str] | None = None,
        experiment: ExperimentContext | None = None,
    ) -> str:
        """Render `template`; raises ConfigError (without location) on any template problem."""
        context: dict[str, Any] = {"parameters": dict(parameters or {})}
        if experiment is not None:
            context["experiment"] = experiment
        try:
            return self._env.from_string(template).render(**context)
        except jinja2.TemplateSyntaxError as e:
            raise ConfigError(f"Jinja syntax error: {e.message}") from None
        except jinja2.UndefinedError as e:
            raise ConfigError(f"undefined in template: {e.message}") from None
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise ConfigError(f"cannot render template: {e}") from None


def _macro(definition: str):
    def call(select_expr: Any) -> str:
        # metric-hub fills the hole with str.format, so `{{`/`}}` in a definition mean literal braces
        return definition.format(select_expr=select_expr)

    return call


def substitute_dataset(from_expression: str, dataset: str | None, data_source: str) -> str:
    """Fill mozanalysis's `{dataset}` placeholder of a from_expression (required when present)."""
    if "{dataset}" not in from_expression:
        return from_expression
    if not dataset:
        raise ConfigError(
            f"data source {data_source!r}: from_expression contains {{dataset}} but no default_dataset is set"
        )
    return from_expression.replace("{dataset}", dataset)


def parameter_values(definitions: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """`[parameters.<name>]` definitions -> the text `{{ parameters.<name> }}` renders to.

    A per-branch value (`distinct_by_branch`) becomes a CASE over the enrolled client's branch `e.branch`.
    """
    out: dict[str, str] = {}
    for name, spec in definitions.items():
        value = spec.get("value")
        default = spec.get("default")
        if isinstance(value, Mapping) and isinstance(default, Mapping):
            value = {**default, **value}
        elif value in (None, "", {}):
            value = default
        if spec.get("distinct_by_branch"):
            if not isinstance(value, Mapping):
                raise ConfigError(
                    "distinct_by_branch needs a per-branch table of values", field=f"parameters.{name}"
                )
            cases = " ".join(
                f'WHEN "{branch}" THEN "{branch_value}"' for branch, branch_value in value.items()
            )
            out[name] = f"CASE e.branch {cases} END"
        elif isinstance(value, str):
            out[name] = value
        else:
            raise ConfigError("needs a string value", field=f"parameters.{name}")
    return out
