"""Jetstream's pre-treatments, declared in a statistic's params as
`pre_treatments = ["remove_nulls", {name = "log", base = 2}]` and applied in order to the metric's columns."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from jetstream_assets.statistics.errors import StatisticConfigError


def _remove_nulls(df: pd.DataFrame, col: str) -> pd.DataFrame:
    return df[df[col].notna()]


def _remove_indefinites(df: pd.DataFrame, col: str) -> pd.DataFrame:
    values = df[col].to_numpy(dtype=float, na_value=np.nan)
    return df[np.isfinite(values)]


def _censor_highest_values(df: pd.DataFrame, col: str, fraction: float = 1 - 1e-5) -> pd.DataFrame:
    """Drops rows at or above the pooled `fraction` quantile (Jetstream: strict `<`)."""
    return df[df[col] < df[col].quantile(fraction)]


def _censor_lowest_values(df: pd.DataFrame, col: str, fraction: float = 1e-5) -> pd.DataFrame:
    return df[df[col] > df[col].quantile(fraction)]


def _censor_values_below_threshold(df: pd.DataFrame, col: str, threshold: float) -> pd.DataFrame:
    return df[df[col] > threshold]


def _censor_values_above_threshold(df: pd.DataFrame, col: str, threshold: float) -> pd.DataFrame:
    return df[df[col] < threshold]


def _normalize_over_analysis_period(df: pd.DataFrame, col: str, analysis_period_length: int = 1) -> pd.DataFrame:
    return df.assign(**{col: df[col] / analysis_period_length})


def _log(df: pd.DataFrame, col: str, base: float | None = 10.0) -> pd.DataFrame:
    with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf and log(<0) = NaN, as in Jetstream
        result = np.log(df[col].to_numpy(dtype=float, na_value=np.nan))
        if base:
            result = result / np.log(base)
    return df.assign(**{col: result})


def _zero_fill(df: pd.DataFrame, col: str) -> pd.DataFrame:
    return df.fillna(value={col: 0})


PRE_TREATMENTS: dict[str, Callable[..., pd.DataFrame]] = {
    "remove_nulls": _remove_nulls,
    "remove_indefinites": _remove_indefinites,
    "censor_highest_values": _censor_highest_values,
    "censor_lowest_values": _censor_lowest_values,
    "censor_values_below_threshold": _censor_values_below_threshold,
    "censor_values_above_threshold": _censor_values_above_threshold,
    "normalize_over_analysis_period": _normalize_over_analysis_period,
    "log": _log,
    "zero_fill": _zero_fill,
}
_ARGUMENTS: dict[str, set[str]] = {
    "censor_highest_values": {"fraction"},
    "censor_lowest_values": {"fraction"},
    "censor_values_below_threshold": {"threshold"},
    "censor_values_above_threshold": {"threshold"},
    "log": {"base"},
}
_REQUIRED: dict[str, set[str]] = {
    "censor_values_below_threshold": {"threshold"},
    "censor_values_above_threshold": {"threshold"},
}


@dataclass(frozen=True)
class PreTreatment:
    name: str
    args: dict[str, Any]

    def apply(self, df: pd.DataFrame, columns: Sequence[str], window_days: int | None) -> pd.DataFrame:
        args = dict(self.args)
        if self.name == "normalize_over_analysis_period":
            args["analysis_period_length"] = window_days or 1  # Jetstream injects the window length, default 1
        for column in columns:
            df = PRE_TREATMENTS[self.name](df, column, **args)
        return df


def parse_pre_treatments(statistic: str, declared: Sequence[str | dict[str, Any]] | None) -> list[PreTreatment]:
    """Validates metric-hub's declaration (a name, or a table with `name` and arguments)."""
    parsed = []
    for item in declared or []:
        if isinstance(item, str):
            name, args = item, {}
        elif isinstance(item, dict) and "name" in item:
            args = {k: v for k, v in item.items() if k != "name"}
            name = item["name"]
        else:
            raise StatisticConfigError(statistic, f"invalid pre-treatment {item!r}", "pre_treatments")
        if name not in PRE_TREATMENTS:
            raise StatisticConfigError(statistic, f"unknown pre-treatment {name!r}", "pre_treatments")
        unknown = set(args) - _ARGUMENTS.get(name, set())
        missing = _REQUIRED.get(name, set()) - set(args)
        if unknown or missing:
            problem = f"unknown argument(s) {sorted(unknown)}" if unknown else f"missing argument(s) {sorted(missing)}"
            raise StatisticConfigError(statistic, f"pre-treatment {name!r}: {problem}", "pre_treatments")
        parsed.append(PreTreatment(name, args))
    return parsed
