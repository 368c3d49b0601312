"""Errors raised by the statistics layer."""

from __future__ import annotations


class StatisticConfigError(ValueError):
    """A statistic or one of its parameters is unknown or invalid (a configuration mistake)."""

    def __init__(self, statistic: str, message: str, parameter: str | None = None):
        self.statistic = statistic
        self.parameter = parameter
        where = f"statistic '{statistic}'" + (f", parameter '{parameter}'" if parameter else "")
        super().__init__(f"{where}: {message}")
        self._args = (statistic, message, parameter)

    def __reduce__(self):  # rebuildable by copy/pickle (pandas deep-copies `DataFrame.attrs`)
        return type(self), self._args


class StatisticComputationError(RuntimeError):
    """A statistic could not be computed from the data (for one reference branch, or at all).

    Jetstream's `StatisticComputationException`: the caller logs it with the metric and statistic names.
    """

    def __init__(self, metric: str, statistic: str, message: str, reference_branch: str | None = None):
        self.metric = metric
        self.statistic = statistic
        self.reference_branch = reference_branch
        self.reason = message
        against = f" against reference branch '{reference_branch}'" if reference_branch is not None else ""
        super().__init__(f"Error while computing statistic {statistic} for metric {metric}{against}: {message}")
        self._args = (metric, statistic, message, reference_branch)

    def __reduce__(self):  # rebuildable by copy/pickle (pandas deep-copies `DataFrame.attrs`)
        return type(self), self._args
