"""Typed Experimenter records, as Jetstream reads them from the v8 API."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from jetstream_assets.core.platforms import app_dataset, events_stream_table

@dataclass(frozen=True)
class Branch:
    slug: str
    ratio: float = 1.0


@dataclass(frozen=True)
class BucketConfig:
    randomization_unit: str | None = None
    namespace: str | None = None
    start: int | None = None
    count: int | None = None
    total: int | None = None


@dataclass(frozen=True)
class Experiment:
    """One Experimenter experiment (normandy slug), with Jetstream's derived status.

    `status` is "Complete" from `end_date` on (the end date itself counts), else "Live" (Jetstream's rule).
    """

    slug: str
    branches: tuple[Branch, ...]
    start_date: dt.date | None
    end_date: dt.date | None
    enrollment_end_date: dt.date | None
    proposed_enrollment: int | None
    reference_branch: str | None
    app_name: str = "firefox_desktop"
    app_id: str | None = None
    channel: str | None = None
    channels: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    is_rollout: bool = False
    is_enrollment_paused: bool = False
    is_high_population: bool = False
    is_firefox_labs_opt_in: bool = False
    status: str = "Live"
    experiment_type: str = "v6"
    bucket_config: BucketConfig = field(default_factory=BucketConfig)
    feature_ids: tuple[str, ...] = ()
    targeting: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # Experimenter's own values of the fields metric-hub overrode (what `as_experimenter` restores)
    experimenter_values: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def dataset(self) -> str:
        """The app's BigQuery dataset for this experiment's channel: what `{dataset}` stands for."""
        return app_dataset(self.app_name, self.app_id, self.channel)

    @property
    def events_stream(self) -> str:
        """`<dataset>.events_stream`, where the experiment's enrollment and exposure events are."""
        return events_stream_table(self.app_name, self.app_id, self.channel)

    @property
    def branch_slugs(self) -> tuple[str, ...]:
        return tuple(b.slug for b in self.branches)

    def with_overrides(self, **changes: Any) -> "Experiment":
        """The record with `changes` applied; Experimenter's values of those fields are kept aside."""
        kept = {k: getattr(self, k) for k in changes if k not in self.experimenter_values}
        return replace(self, **changes, experimenter_values={**self.experimenter_values, **kept})

    def as_experimenter(self) -> "Experiment":
        """The record as Experimenter gave it, before any metric-hub override."""
        return replace(self, **self.experimenter_values, experimenter_values={})
