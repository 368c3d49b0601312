"""Which Experimenter experiments get a partition (Jetstream's `_experiment_configs_to_analyse`)."""

from __future__ import annotations

import datetime as dt

from jetstream_assets.experimenter.models import Experiment

RECENTLY_ENDED_DAYS = 90


def wants_partition(experiment: Experiment, date: dt.date) -> bool:
    """Launched by `date`, not a rollout, and live or ended within the last 90 days.

    Skips decided by the experiment's config (skip = true, enrollment not complete, ...) happen at
    analysis time so they are logged where a user looks for them."""
    if experiment.is_rollout or experiment.start_date is None or experiment.start_date > date:
        return False
    return experiment.end_date is None or experiment.end_date >= date - dt.timedelta(days=RECENTLY_ENDED_DAYS)


def wants_daily_run(experiment: Experiment, date: dt.date) -> bool:
    """A daily run on `date` can do something: the experiment has started and has not ended before `date`."""
    return wants_partition(experiment, date) and (experiment.end_date is None or experiment.end_date >= date)
