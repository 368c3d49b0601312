"""From merged specs to a concrete AnalysisConfig (metric-config-parser's `AnalysisSpec.resolve`).

Names a config uses but does not define are looked up in `definitions/<platform>.toml`; a local
definition that lacks the SQL (e.g. defaults giving only statistics) is completed from there.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from textwrap import dedent
from typing import Any

from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.experimenter.models import Experiment
from jetstream_assets.metric_hub.errors import ConfigError, line_of_field
from jetstream_assets.metric_hub.experiment_overrides import ANALYSIS_UNITS, apply_overrides
from jetstream_assets.metric_hub.models import (
    ANALYSIS_BASES,
    AnalysisConfig,
    DataSource,
    ExposureSignal,
    Metric,
    Segment,
    SegmentDataSource,
    StatisticSpec,
)
from jetstream_assets.metric_hub.outcomes import OutcomeSpec, merge_outcome
from jetstream_assets.core.platforms import known_app_dataset
from jetstream_assets.metric_hub.spec import ConfigSpec, Entry, PeriodRef
from jetstream_assets.metric_hub.templating import (
    ExperimentContext,
    SqlTemplates,
    fill_dataset,
    parameter_values,
)

KNOWN_STATISTICS = frozenset(
    {
        "bootstrap_mean",
        "always_valid_mean",
        "binomial",
        "deciles",
        "linear_model_mean",
        "per_client_dau_impact",
        "population_ratio",
        "kernel_density_estimate",
        "empirical_cdf",
        "count",
        "sum",
    }
)
EXPERIMENTS_COLUMN_TYPES = frozenset({"simple", "native", "glean", "events_stream", "none"})
EXPOSURE_WINDOW_LIMITS = frozenset(
    {"enrollment_start", "enrollment_end", "analysis_window_start", "analysis_window_end"}
)


@dataclass(frozen=True)
class ResolveInputs:
    spec: ConfigSpec  # platform defaults merged with the experiment's own config
    definitions: ConfigSpec  # definitions/<platform>.toml (empty when missing)
    outcomes: Mapping[str, OutcomeSpec]  # by slug; at least those the experiment uses
    templates: SqlTemplates
    definitions_file: str  # named in "unknown ..." errors
    config_file: str | None = None
    config_url: str | None = None


def resolve_analysis(experiment: Experiment, inputs: ResolveInputs) -> AnalysisConfig:
    slug = experiment.slug
    applied = apply_overrides(experiment, inputs.spec.experiment)
    spec = inputs.spec
    outcomes = []
    for outcome_slug in applied.outcomes:
        outcome = inputs.outcomes.get(outcome_slug)
        if outcome is None:
            reason = f"unknown outcome {outcome_slug!r} for platform {experiment.app_name!r}"
            if spec.experiment is not None and outcome_slug in applied.overrides.get("outcomes", ()):
                raise spec.experiment.error(reason, "outcomes", slug)
            raise ConfigError(reason, slug=slug)  # listed by Experimenter
        spec = merge_outcome(spec, outcome)
        outcomes.append(outcome.outcome)

    context = ExperimentContext.of(applied.experiment, applied.enrollment_period)
    resolver = Resolver(spec, inputs.definitions, inputs.templates, context, inputs.definitions_file)
    enrollment_query = None
    if applied.enrollment_query is not None:
        enrollment_query = resolver.render(applied.enrollment_query, spec.experiment, "enrollment_query")
    exposure_signal = None
    if applied.exposure_signal is not None:
        assert spec.experiment is not None
        exposure_signal = resolver.exposure_signal(spec.experiment, applied.exposure_signal)
    return AnalysisConfig(
        experiment=applied.experiment,
        enrollment_period=applied.enrollment_period,
        metrics=resolver.metrics_by_period(),
        segments=tuple(resolver.segment(name, spec.experiment) for name in applied.experiment.segments),
        exposure_signal=exposure_signal,
        enrollment_query=enrollment_query,
        sample_size=applied.sample_size,
        analysis_unit=applied.analysis_unit,
        skip=applied.skip,
        outcomes=tuple(outcomes),
        overrides=applied.overrides,
        config_file=inputs.config_file,
        config_url=inputs.config_url,
        warnings=applied.warnings + _own_parameter_warnings(inputs) + tuple(resolver.warnings),
    )


def _own_parameter_warnings(inputs: ResolveInputs) -> tuple[str, ...]:
    """We render an experiment config's own [parameters]; Jetstream does not (metric-config-parser merges
    only outcomes' parameters into the analysis), so a user is told where Jetstream's result would differ."""
    reason = ("Jetstream ignores an experiment config's own parameters (only outcomes' are merged): there, a metric "
              "using it fails, or takes the outcome's value")
    return tuple(
        str(entry.error(reason))
        for entry in inputs.spec.parameters.values()
        if inputs.config_file is not None and entry.declared_in.path == inputs.config_file
    )


class Resolver:
    """Resolves names against one merged spec, falling back to the platform's definitions."""

    def __init__(
        self,
        spec: ConfigSpec,
        definitions: ConfigSpec,
        templates: SqlTemplates,
        experiment: ExperimentContext,
        definitions_file: str,
    ) -> None:
        self.spec = spec
        self.definitions = definitions
        self.templates = templates
        self.experiment = experiment
        self.definitions_file = definitions_file
        self._parameters: dict[str, str] | None = None
        self._metrics: dict[str, Metric] = {}
        self._resolving: set[str] = set()  # derived metrics being resolved, to catch a depends_on cycle
        self.warnings: dict[str, None] = {}  # keys used but not acted on (ordered, each once)
        self.dataset = known_app_dataset(experiment.app_name, experiment.app_id, experiment.channel)

    @property
    def slug(self) -> str:
        return self.experiment.normandy_slug

    # --- templates -------------------------------------------------------------------------
    @property
    def parameters(self) -> dict[str, str]:
        if self._parameters is None:
            values: dict[str, str] = {}
            for name, entry in self.spec.parameters.items():
                try:
                    values.update(parameter_values({name: entry.fields}))
                except ConfigError as e:
                    raise entry.error(e.reason, slug=self.slug) from None
            self._parameters = values
        return self._parameters

    def render(self, template: Any, entry: Entry | None, key: str) -> str:
        if not isinstance(template, str):
            raise self._error(entry, "expected a string of SQL", key)
        parameters = self.parameters  # outside the try: a bad parameter is reported at its definition
        try:
            return self.templates.render(template, parameters=parameters, experiment=self.experiment)
        except ConfigError as e:
            raise self._error(entry, e.reason, key) from None

    def _error(self, entry: Entry | None, reason: str, key: str) -> ConfigError:
        if entry is None:
            return ConfigError(reason, field=key, slug=self.slug)
        return entry.error(reason, key, self.slug)

    # --- metrics ---------------------------------------------------------------------------
    def metrics_by_period(self) -> dict[AnalysisPeriod, tuple[Metric, ...]]:
        out: dict[AnalysisPeriod, tuple[Metric, ...]] = {}
        for period in AnalysisPeriod:
            names: dict[str, Metric] = {}
            for ref in self.spec.periods.get(period, ()):
                if ref.metric not in names:
                    names[ref.metric] = self.listed_metric(ref)
            out[period] = tuple(names.values())
        return out

    def listed_metric(self, ref: PeriodRef) -> Metric:
        """A metric named in a period list: it must exist and have at least one statistic."""
        entry = self.metric_entry(ref.metric, lambda reason: ref.error(reason, self.slug))
        if not entry.get("statistics"):
            field = f"metrics.{ref.metric}.statistics"
            line = line_of_field(ref.file.text, f"metrics.{ref.metric}", fallback=False) or line_of_field(
                ref.file.text, f"metrics.{ref.key}"
            )
            raise ConfigError(
                f"metric {ref.metric!r} is listed in metrics.{ref.key} but has no statistics",
                file=ref.file.path,
                field=field,
                line=line,
                slug=self.slug,
            )
        return self.metric(ref.metric, entry)

    def metric_entry(self, name: str, unknown: Callable[[str], ConfigError]) -> Entry:
        """The definition used for `name`: local if it has SQL, else definitions' completed by local."""
        local = self.spec.metrics.get(name)
        shared = self.definitions.metrics.get(name)
        if local is None and shared is None:
            raise unknown(
                f"unknown metric {name!r}: defined neither in the config nor in {self.definitions_file}"
            )
        if local is not None and (shared is None or _has_sql(local)):
            return local
        assert shared is not None
        return shared.overlay(local) if local is not None else shared

    def metric(self, name: str, entry: Entry) -> Metric:
        if name in self._metrics:
            return self._metrics[name]
        common = dict(
            statistics=self.statistics(entry),
            friendly_name=_text(entry, "friendly_name", self.slug),
            description=_text(entry, "description", self.slug),
            bigger_is_better=_boolean(entry, "bigger_is_better", True, self.slug),
            analysis_bases=self._analysis_bases(entry),
            depends_on=self._depends_on(entry),
        )
        if not entry.get("select_expression") and common["depends_on"]:
            # derived: its statistics read the upstream metrics' columns (e.g. population_ratio)
            self._metrics[name] = Metric(
                name=name, select_expression=None, data_source=None,
                upstream=self._upstream(name, entry, common["depends_on"]), **common,
            )
            return self._metrics[name]
        for key in ("select_expression", "data_source"):
            if not entry.get(key):
                raise entry.error(
                    f"a metric needs {key} (here or in {self.definitions_file}), or depends_on", key, self.slug
                )
        data_source_name = entry.get("data_source")
        if not isinstance(data_source_name, str):
            raise entry.error("expected a data source name", "data_source", self.slug)
        data_source = self.data_source(data_source_name, entry, "data_source")
        self._check_analysis_units(entry, data_source_name)
        metric = Metric(
            name=name,
            select_expression=self.render(entry.get("select_expression"), entry, "select_expression"),
            data_source=data_source,
            **common,
        )
        self._metrics[name] = metric
        return metric

    def _analysis_units(self, entry: Entry) -> tuple[str, ...]:
        """The units a metric or data source supports; by default clients, and profile groups on desktop."""
        units = entry.get("analysis_units")
        if units is None:
            return ("client_id", "profile_group_id") if self.experiment.app_name == "firefox_desktop" else ("client_id",)
        if not isinstance(units, list) or not units or any(u not in ANALYSIS_UNITS for u in units):
            raise entry.error(f"expected a non-empty list drawn from {list(ANALYSIS_UNITS)}", "analysis_units",
                              self.slug)
        return tuple(units)

    def _check_analysis_units(self, entry: Entry, data_source_name: str) -> None:
        """metric-config-parser's rule: every unit a metric is computed for, its data source supports."""
        source = _lookup(self.spec.data_sources, self.definitions.data_sources, data_source_name)
        assert source is not None  # data_source() resolved it
        missing = set(self._analysis_units(entry)) - set(self._analysis_units(source))
        if missing:
            raise entry.error(
                f"data source {data_source_name!r} does not support the analysis units {sorted(missing)} "
                f"(it supports {list(self._analysis_units(source))})",
                "analysis_units",
                self.slug,
            )

    def _upstream(self, name: str, entry: Entry, names: tuple[str, ...]) -> tuple[Metric, ...]:
        if name in self._resolving:
            raise entry.error(f"metric {name!r} depends on itself (through {', '.join(names)})", "depends_on",
                              self.slug)
        self._resolving.add(name)
        try:
            upstream = []
            for up in names:
                up_entry = self.metric_entry(up, lambda reason: entry.error(reason, "depends_on", self.slug))
                if not up_entry.get("statistics"):
                    # metric-config-parser resolves an upstream metric as a listed one: it needs a statistic
                    raise up_entry.error(
                        f"metric {name!r} depends on {up!r}, which has no statistics", "statistics", self.slug
                    )
                upstream.append(self.metric(up, up_entry))
            return tuple(upstream)
        finally:
            self._resolving.discard(name)

    def statistics(self, entry: Entry) -> tuple[StatisticSpec, ...]:
        table = entry.get("statistics") or {}
        if not isinstance(table, Mapping):
            raise entry.error("expected a table of statistics", "statistics", self.slug)
        out = []
        for name, params in table.items():
            key = f"statistics.{name}"
            if name not in KNOWN_STATISTICS:
                raise entry.error(
                    f"unknown statistic {name!r}; known: {', '.join(sorted(KNOWN_STATISTICS))}",
                    key,
                    self.slug,
                )
            if not isinstance(params, Mapping):
                raise entry.error("statistic parameters must be a table", key, self.slug)
            adjustment = params.get("covariate_adjustment")
            if adjustment is not None:
                period = adjustment.get("period") if isinstance(adjustment, Mapping) else None
                try:
                    AnalysisPeriod.from_config_key(period)
                except (ValueError, TypeError) as e:
                    raise entry.error(str(e), f"{key}.covariate_adjustment.period", self.slug) from None
            out.append(StatisticSpec(name, copy.deepcopy(dict(params))))
        return tuple(out)

    def _analysis_bases(self, entry: Entry) -> tuple[str, ...]:
        bases = entry.get("analysis_bases")
        if bases is None:
            return ANALYSIS_BASES
        if not isinstance(bases, list) or not bases or any(b not in ANALYSIS_BASES for b in bases):
            raise entry.error(
                f"expected a non-empty list drawn from {list(ANALYSIS_BASES)}", "analysis_bases", self.slug
            )
        return tuple(dict.fromkeys(bases))

    def _depends_on(self, entry: Entry) -> tuple[str, ...]:
        names = entry.get("depends_on") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise entry.error("expected a list of metric names", "depends_on", self.slug)
        return tuple(names)

    # --- data sources, segments, exposure signal -------------------------------------------
    def data_source(self, name: str, referrer: Entry, key: str) -> DataSource:
        entry = _lookup(self.spec.data_sources, self.definitions.data_sources, name)
        if entry is None:
            raise referrer.error(
                f"unknown data source {name!r}: defined neither in the config nor in {self.definitions_file}",
                key,
                self.slug,
            )
        column_type = str(entry.get("experiments_column_type") or "simple").lower()
        if column_type not in EXPERIMENTS_COLUMN_TYPES:
            raise entry.error(
                f"unknown experiments_column_type {column_type!r}; expected one of {sorted(EXPERIMENTS_COLUMN_TYPES)}",
                "experiments_column_type",
                self.slug,
            )
        default_dataset = _text(entry, "default_dataset", self.slug)
        if entry.get("joins"):
            reason = "joins are not implemented: the data source is read without the tables it joins"
            self.warnings[str(entry.error(reason, "joins", self.slug))] = None
        raw = entry.get("from_expression")
        if not isinstance(raw, str):
            raise entry.error("expected a string of SQL (a table or a subquery)", "from_expression", self.slug)
        try:
            rendered = self.templates.render_data_source(raw, self.experiment)
            from_expression = fill_dataset(rendered, self.dataset, default_dataset)
        except ConfigError as e:
            raise entry.error(e.reason, "from_expression", self.slug) from None
        return DataSource(
            name=name,
            from_expression=from_expression,
            experiments_column_type=column_type,
            client_id_column=_text(entry, "client_id_column", self.slug) or "client_id",
            submission_date_column=_text(entry, "submission_date_column", self.slug) or "submission_date",
            default_dataset=default_dataset,
            friendly_name=_text(entry, "friendly_name", self.slug),
            description=_text(entry, "description", self.slug),
            group_id_column=_text(entry, "group_id_column", self.slug) or "profile_group_id",
        )

    def segment(self, name: str, referrer: Entry | None) -> Segment:
        entry = _lookup(self.spec.segments, self.definitions.segments, name)
        if entry is None:
            raise self._error(
                referrer,
                f"unknown segment {name!r}: defined neither in the config nor in {self.definitions_file}",
                "segments",
            )
        source_name = entry.get("data_source")
        if not isinstance(source_name, str):
            raise entry.error("a segment needs a data_source name", "data_source", self.slug)
        return Segment(
            name=name,
            select_expression=self.render(entry.get("select_expression"), entry, "select_expression"),
            data_source=self.segment_data_source(source_name, entry),
            friendly_name=_text(entry, "friendly_name", self.slug),
            description=_text(entry, "description", self.slug),
        )

    def segment_data_source(self, name: str, referrer: Entry) -> SegmentDataSource:
        entry = _lookup(self.spec.segment_data_sources, self.definitions.segment_data_sources, name)
        if entry is None:
            raise referrer.error(f"unknown segment data source {name!r}", "data_source", self.slug)
        windows = {}
        for key in ("window_start", "window_end"):
            value = entry.get(key, 0)
            if not isinstance(value, int) or isinstance(value, bool):
                raise entry.error("expected a whole number of days relative to enrollment", key, self.slug)
            windows[key] = value
        rendered = self.render(entry.get("from_expression"), entry, "from_expression")  # always Jinja here
        try:
            from_expression = fill_dataset(rendered, self.dataset, _text(entry, "default_dataset", self.slug))
        except ConfigError as e:
            raise entry.error(e.reason, "from_expression", self.slug) from None
        return SegmentDataSource(
            name=name,
            from_expression=from_expression,
            client_id_column=_text(entry, "client_id_column", self.slug) or "client_id",
            submission_date_column=_text(entry, "submission_date_column", self.slug) or "submission_date",
            group_id_column=_text(entry, "group_id_column", self.slug) or "profile_group_id",
            **windows,
        )

    def exposure_signal(self, experiment_entry: Entry, table: Mapping[str, Any]) -> ExposureSignal:
        prefix = "exposure_signal"
        for key in ("name", "data_source", "select_expression"):
            if not isinstance(table.get(key), str):
                raise experiment_entry.error("required (a string)", f"{prefix}.{key}", self.slug)
        limits: dict[str, int | str | None] = {}
        for key in ("window_start", "window_end"):
            value = table.get(key)
            if value is not None and not (
                (isinstance(value, int) and not isinstance(value, bool)) or value in EXPOSURE_WINDOW_LIMITS
            ):
                raise experiment_entry.error(
                    f"expected a number of days or one of {sorted(EXPOSURE_WINDOW_LIMITS)}",
                    f"{prefix}.{key}",
                    self.slug,
                )
            limits[key] = value
        return ExposureSignal(
            name=table["name"],
            select_expression=table["select_expression"],  # used as written, as metric-config-parser does
            data_source=self.data_source(table["data_source"], experiment_entry, f"{prefix}.data_source"),
            friendly_name=table.get("friendly_name"),
            description=table.get("description"),
            **limits,
        )


def _has_sql(entry: Entry) -> bool:
    return bool(entry.get("select_expression")) and bool(entry.get("data_source"))


def _lookup(local: Mapping[str, Entry], shared: Mapping[str, Entry], name: str) -> Entry | None:
    """A local definition completed by the shared one of the same name (local fields win)."""
    if name in local and name in shared:
        return shared[name].overlay(local[name])
    return local.get(name) or shared.get(name)


def _text(entry: Entry, key: str, slug: str) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise entry.error("expected a string", key, slug)
    return dedent(value)  # as written (the official parser keeps a trailing newline too)


def _boolean(entry: Entry, key: str, default: bool, slug: str) -> bool:
    value = entry.get(key, default)
    if not isinstance(value, bool):
        raise entry.error("expected true or false", key, slug)
    return value
