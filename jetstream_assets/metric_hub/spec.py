"""Unresolved metric-hub configuration: what one or more TOML files say, and how they merge.

Each definition (metric, data source, segment, ...) keeps, per field, the file that set it, so an error
found while resolving can name the file and line responsible for the value.
Merging follows metric-config-parser: the later spec's fields win, statistics tables are replaced as a
whole, period lists are concatenated, and keys with fnmatch wildcards update every matching definition.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.metric_hub.errors import ConfigError
from jetstream_assets.metric_hub.toml_file import TomlFile

_WILDCARD_CHARS = set("*?[")


@dataclass(frozen=True)
class Entry:
    """One named definition, e.g. `[metrics.active_hours]`."""

    section: str  # dotted prefix in the file, e.g. "metrics"
    name: str
    fields: Mapping[str, Any]
    origins: Mapping[str, TomlFile]  # field -> file that set it
    declared_in: TomlFile

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}" if self.name else self.section

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)

    def error(self, reason: str, key: str | None = None, slug: str | None = None) -> ConfigError:
        source = self.origins.get(key.split(".")[0], self.declared_in) if key else self.declared_in
        return source.error(reason, f"{self.path}.{key}" if key else self.path, slug)

    def overlay(self, other: "Entry") -> "Entry":
        """This definition with every field `other` sets replaced by other's value."""
        return replace(
            self,
            fields={**self.fields, **other.fields},
            origins={**self.origins, **other.origins},
            declared_in=other.declared_in,
        )


@dataclass(frozen=True)
class PeriodRef:
    metric: str
    file: TomlFile
    key: str  # the list's key as written, e.g. "28_day"

    def error(self, reason: str, slug: str | None = None) -> ConfigError:
        return self.file.error(reason, f"metrics.{self.key}", slug)


Entries = dict[str, Entry]


@dataclass(frozen=True)
class ConfigSpec:
    periods: dict[AnalysisPeriod, tuple[PeriodRef, ...]] = field(default_factory=dict)
    metrics: Entries = field(default_factory=dict)
    data_sources: Entries = field(default_factory=dict)
    segments: Entries = field(default_factory=dict)
    segment_data_sources: Entries = field(default_factory=dict)
    parameters: Entries = field(default_factory=dict)
    experiment: Entry | None = None

    @property
    def declares_periods(self) -> bool:
        return any(self.periods.values())

    def merge(self, other: "ConfigSpec") -> "ConfigSpec":
        """`other` merged into this spec; `other` wins (metric-config-parser's AnalysisSpec.merge)."""
        periods = {
            p: self.periods.get(p, ()) + other.periods.get(p, ()) for p in {*self.periods, *other.periods}
        }
        if self.experiment and other.experiment:
            experiment: Entry | None = self.experiment.overlay(other.experiment)
        else:
            experiment = other.experiment or self.experiment
        return ConfigSpec(
            periods=periods,
            metrics=_merge_entries(self.metrics, other.metrics),
            data_sources=_merge_entries(self.data_sources, other.data_sources),
            segments=_merge_entries(self.segments, other.segments),
            segment_data_sources=_merge_entries(self.segment_data_sources, other.segment_data_sources),
            parameters=_merge_entries(self.parameters, other.parameters),
            experiment=experiment,
        )


def _merge_entries(base: Entries, other: Entries) -> Entries:
    merged = dict(base)
    for key, entry in other.items():
        if _WILDCARD_CHARS & set(key):
            for name in [n for n in merged if fnmatch.fnmatchcase(n, key)]:
                merged[name] = merged[name].overlay(replace(entry, name=name))
        elif key in merged:
            merged[key] = merged[key].overlay(entry)
        else:
            merged[key] = entry
    return merged


def parse_spec(source: TomlFile) -> ConfigSpec:
    """A metric-hub TOML file (experiment config, defaults, outcome or definitions) as a ConfigSpec."""
    data = source.data
    periods, metrics = _parse_metrics(source, data.get("metrics", {}))
    segments_table = _table(source, data.get("segments", {}), "segments")
    segment_data_sources = _entries(source, segments_table.get("data_sources", {}), "segments.data_sources")
    experiment_table = data.get("experiment")
    experiment = None
    if experiment_table is not None:
        experiment_table = _table(source, experiment_table, "experiment")
        experiment = Entry(
            section="experiment",
            name="",
            fields=_lower_keys(experiment_table),
            origins={k.lower(): source for k in experiment_table},
            declared_in=source,
        )
    return ConfigSpec(
        periods=periods,
        metrics=metrics,
        data_sources=_entries(source, data.get("data_sources", {}), "data_sources"),
        segments=_entries(
            source, {k: v for k, v in segments_table.items() if k != "data_sources"}, "segments"
        ),
        segment_data_sources=segment_data_sources,
        parameters=_entries(source, data.get("parameters", {}), "parameters"),
        experiment=experiment,
    )


def _parse_metrics(
    source: TomlFile, table: Any
) -> tuple[dict[AnalysisPeriod, tuple[PeriodRef, ...]], Entries]:
    table = _table(source, table, "metrics")
    periods: dict[AnalysisPeriod, tuple[PeriodRef, ...]] = {}
    definitions: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            definitions[key] = value
            continue
        if not isinstance(value, list):
            raise source.error("expected a list of metric names or a metric table", f"metrics.{key}")
        try:
            period = AnalysisPeriod.from_config_key(key)
        except ValueError as e:
            raise source.error(str(e), f"metrics.{key}") from None
        if not all(isinstance(name, str) for name in value):
            raise source.error("a period list holds metric names (strings)", f"metrics.{key}")
        periods[period] = periods.get(period, ()) + tuple(PeriodRef(name, source, key) for name in value)
    return periods, _entries(source, definitions, "metrics")


def _entries(source: TomlFile, table: Any, section: str) -> Entries:
    table = _table(source, table, section)
    out: Entries = {}
    for name, value in table.items():
        if not isinstance(value, Mapping):
            raise source.error("expected a table", f"{section}.{name}")
        fields = _lower_keys(value)
        out[name] = Entry(section, name, fields, {k: source for k in fields}, source)
    return out


def _table(source: TomlFile, value: Any, field_path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise source.error("expected a table", field_path)
    return value


def _lower_keys(table: Mapping[str, Any]) -> dict[str, Any]:
    # metric-config-parser lower-cases the field names of every definition
    return {k.lower(): v for k, v in table.items()}
