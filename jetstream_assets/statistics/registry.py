"""The statistics Jetstream configs may name, with their parameters and defaults (Jetstream's `statistics.py`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jetstream_assets.statistics import aggregates, binomial, distributions, linear_model, means, quantiles
from jetstream_assets.statistics.sequential import always_valid_mean
from jetstream_assets.statistics.errors import StatisticConfigError
from jetstream_assets.statistics.rows import StatisticOutput

REQUIRED = object()  # marks a parameter without a default


@dataclass(frozen=True)
class StatisticDefinition:
    name: str  # the config name, e.g. "bootstrap_mean" (the stored `statistic` value may differ: "mean")
    function: Callable[..., StatisticOutput]
    parameters: Mapping[str, Any] = field(default_factory=dict)  # name -> default (or REQUIRED)
    reads_pairs: bool = False  # numerator/denominator columns instead of the metric column
    rejects_nulls: bool = True  # NULLs made by pre-treatments are an error (mozanalysis refuses them)

    def resolve(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overlaid with the configured params; unknown or missing ones are config errors."""
        for key in params:
            if key not in self.parameters:
                raise StatisticConfigError(self.name, "unknown parameter", key)
        resolved = {**self.parameters, **params}
        for key, value in resolved.items():
            if value is REQUIRED:
                raise StatisticConfigError(self.name, "required parameter is missing", key)
            _validate(self.name, key, value)
        return resolved

    def columns(self, metric: str, resolved: Mapping[str, Any]) -> list[str]:
        return [resolved["numerator"], resolved["denominator"]] if self.reads_pairs else [metric]


def _validate(statistic: str, key: str, value: Any) -> None:
    def fail(expected: str) -> None:
        raise StatisticConfigError(statistic, f"expected {expected}, got {value!r}", key)

    if key in ("num_samples", "grid_size", "optimal_sample_size") and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        fail("a positive integer")
    if key == "confidence_interval" and not (isinstance(value, int | float) and 0 < value < 1):
        fail("a number in (0, 1)")
    if key == "drop_highest" and not (isinstance(value, int | float) and 0 <= value <= 0.5):
        fail("a fraction in [0, 0.5] (mozanalysis needs a threshold quantile of at least 0.5)")
    if key in ("numerator", "denominator") and not isinstance(value, str):
        fail("a column name")
    if key == "log_space" and not isinstance(value, bool):
        fail("a boolean")


_BOOTSTRAP = {"num_samples": 10_000, "drop_highest": 0.005, "confidence_interval": 0.95}
_LINEAR_MODEL = {"drop_highest": 0.005, "covariate_adjustment": None, "period": None}

STATISTICS: dict[str, StatisticDefinition] = {
    d.name: d
    for d in (
        StatisticDefinition("bootstrap_mean", means.bootstrap_mean, _BOOTSTRAP),
        StatisticDefinition("binomial", binomial.binomial, {"confidence_interval": 0.95}),
        StatisticDefinition("deciles", quantiles.deciles, {"confidence_interval": 0.95, "num_samples": 10_000}),
        StatisticDefinition("count", aggregates.count, rejects_nulls=False),
        StatisticDefinition("sum", aggregates.sum_, rejects_nulls=False),
        StatisticDefinition(  # mozanalysis drops NULL rows itself before fitting
            "linear_model_mean", linear_model.linear_model_mean, _LINEAR_MODEL, rejects_nulls=False,
        ),
        StatisticDefinition(  # a LinearModelMean subclass in Jetstream since 2025-08, trimming nothing
            "per_client_dau_impact", linear_model.per_client_dau_impact, {**_LINEAR_MODEL, "drop_highest": 0.0},
            rejects_nulls=False,
        ),
        StatisticDefinition(
            "population_ratio", means.population_ratio,
            {"numerator": REQUIRED, "denominator": REQUIRED, **_BOOTSTRAP}, reads_pairs=True,
        ),
        StatisticDefinition("empirical_cdf", distributions.empirical_cdf, {"grid_size": 256, "log_space": False}),
        StatisticDefinition(
            "kernel_density_estimate", distributions.kernel_density_estimate,
            {"bandwidth": "scott", "adjust": 1.0, "kernel": "gaussian", "grid_size": 256, "log_space": False},
        ),
        StatisticDefinition(
            "always_valid_mean", always_valid_mean,
            {"confidence_interval": 0.95, "drop_highest": 0.005, "optimal_sample_size": 10_000},
        ),
    )
}


def available_statistics() -> list[str]:
    """The statistic names a config may use."""
    return sorted(STATISTICS)


def definition(name: str) -> StatisticDefinition:
    try:
        return STATISTICS[name]
    except KeyError:
        raise StatisticConfigError(name, f"unknown statistic (available: {', '.join(available_statistics())})") from None
