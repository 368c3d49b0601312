"""Outcome snippets (`jetstream/outcomes/<platform>/<slug>.toml`) and how they join an analysis spec."""

from __future__ import annotations

from dataclasses import dataclass, replace

from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.metric_hub.models import Outcome
from jetstream_assets.metric_hub.spec import ConfigSpec, PeriodRef, parse_spec
from jetstream_assets.metric_hub.toml_file import TomlFile
from jetstream_assets.statistics.multiple_testing import METHODS


@dataclass(frozen=True)
class OutcomeSpec:
    outcome: Outcome
    spec: ConfigSpec
    source: TomlFile


def parse_outcome(source: TomlFile, slug: str, commit_hash: str | None = None) -> OutcomeSpec:
    """An outcome file; `commit_hash` is the last commit that touched it, where known."""
    data = source.data
    for key in ("friendly_name", "description"):
        if not isinstance(data.get(key), str):
            raise source.error("an outcome needs a string", key)
    spec = parse_spec(source)
    default_metrics = data.get("default_metrics", [])
    if not isinstance(default_metrics, list):
        raise source.error("expected a list of metric names", "default_metrics")
    for name in default_metrics:
        if name not in spec.metrics:
            raise source.error(f"default metric {name!r} is not defined in the outcome", "default_metrics")
    multiple_testing = data.get("multiple_testing")
    if multiple_testing is not None and multiple_testing not in METHODS:
        raise source.error(f"expected one of {sorted(METHODS)}", "multiple_testing")
    outcome = Outcome(
        slug=slug,
        friendly_name=data["friendly_name"],
        description=data["description"],
        metrics=tuple(spec.metrics),
        default_metrics=tuple(default_metrics),
        commit_hash=commit_hash,
        multiple_testing=multiple_testing,
    )
    return OutcomeSpec(outcome, spec, source)


def merge_outcome(spec: ConfigSpec, outcome: OutcomeSpec) -> ConfigSpec:
    """The spec with an outcome's metrics added; the spec's own definitions win over the outcome's.

    An outcome without period lists computes every metric it defines for weekly and overall.
    """
    part = outcome.spec
    if not part.declares_periods:
        weekly_overall = {
            period: tuple(PeriodRef(name, outcome.source, key) for name in part.metrics)
            for period, key in ((AnalysisPeriod.WEEK, "weekly"), (AnalysisPeriod.OVERALL, "overall"))
        }
        part = replace(part, periods=weekly_overall)
    combined = replace(part, experiment=None, segments={}, segment_data_sources={}).merge(spec)
    periods = {p: spec.periods.get(p, ()) + part.periods.get(p, ()) for p in {*spec.periods, *part.periods}}
    return replace(combined, periods=periods)
