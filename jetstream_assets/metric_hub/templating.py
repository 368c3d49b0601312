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
from jinja2 import StrictUndefined, meta

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
    channel: str | None
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
            channel=experiment.channel,
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
        self._env = jinja2.Environment(autoescape=False, undefined=StrictUndefined)
        self._env.globals.update({name: _macro(definition) for name, definition in self.functions.items()})
        self._compiled: dict[str, jinja2.Template] = {}  # one metric-hub snippet is rendered for many configs

    def _template(self, template: str) -> jinja2.Template:
        compiled = self._compiled.get(template)
        if compiled is None:
            compiled = self._compiled[template] = self._env.from_string(template)
        return compiled

    def render(
        self,
        template: str,
        *,
        parameters: Mapping[str, str] | None = None,
        experiment: ExperimentContext | None = None,
    ) -> str:
        """Render `template`; raises ConfigError (without location) on any template problem."""
        if "{" not in template and "%" not in template:
            return template  # nothing for Jinja to do (most real select expressions)
        context: dict[str, Any] = {"parameters": dict(parameters or {})}
        if experiment is not None:
            context["experiment"] = experiment
        try:
            return self._template(template).render(**context)
        except jinja2.TemplateSyntaxError as e:
            raise ConfigError(f"Jinja syntax error: {e.message}") from None
        except jinja2.UndefinedError as e:
            raise ConfigError(f"undefined in template: {e.message}") from None
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise ConfigError(f"cannot render template: {e}") from None

    def render_data_source(self, from_expression: str, experiment: ExperimentContext) -> str:
        """A data source's from_expression, rendered as metric-config-parser renders it: Jinja only when
        the text parses as a template that references `experiment`. Elsewhere `{{`/`}}` stay as they are:
        they are `str.format` escapes for literal braces (e.g. an add-on GUID `'{{d10d0bf8-...}}'`),
        undone when `{dataset}` is filled."""
        if "{{" not in from_expression and "{%" not in from_expression:
            return from_expression
        try:
            referenced = meta.find_undeclared_variables(self._env.parse(from_expression))
        except jinja2.TemplateSyntaxError:
            return from_expression
        if "experiment" not in referenced:
            return from_expression
        return self.render(from_expression, experiment=experiment)


def _macro(definition: str):
    def call(select_expr: Any) -> str:
        # metric-hub fills the hole with str.format, so `{{`/`}}` in a definition mean literal braces
        return definition.format(select_expr=select_expr)

    return call


def fill_dataset(from_expression: str, dataset: str | None, default_dataset: str | None) -> str:
    """Fill `{dataset}` as mozanalysis does: `str.format` with the experiment's app dataset, else the data
    source's `default_dataset` (so `{{`/`}}` become literal braces). mozanalysis checks, whatever the
    experiment, that the text also formats with `default_dataset` alone: `{dataset}` needs a default."""
    try:
        (from_expression.format(dataset=default_dataset) if default_dataset else from_expression.format())
        return from_expression.format(dataset=dataset or default_dataset)
    except (KeyError, IndexError, ValueError) as e:
        if "{dataset}" in from_expression and not default_dataset:
            raise ConfigError("from_expression contains {dataset} but no default_dataset is set") from None
        raise ConfigError(
            f"from_expression is filled with str.format ({e!r}): write a literal brace as {{{{ or }}}}"
        ) from None


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
