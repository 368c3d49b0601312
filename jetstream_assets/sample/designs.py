"""Experiment designs: the single source of the sample's telemetry and its Experimenter snapshot."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

# clients_daily columns a branch may shift; subsession hours follow active hours by construction.
EFFECT_COLUMNS: tuple[str, ...] = (
    "active_hours_sum",
    "scalar_parent_browser_engagement_total_uri_count_sum",
    "search_count_all",
    "ad_clicks_count_all",
)


@dataclass(frozen=True)
class BranchDesign:
    """A branch and its planted effects: clients_daily column -> multiplier of the column's mean.

    `ratio` is what Experimenter publishes; `assigned_ratio`, when set, is the share the telemetry
    actually assigns instead (a planted sample ratio mismatch)."""

    slug: str
    ratio: float = 1.0
    effects: Mapping[str, float] = field(default_factory=dict)
    assigned_ratio: float | None = None

    def __post_init__(self) -> None:
        for name in ("ratio", "assigned_ratio"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"branch {self.slug!r}: {name} must be positive, got {value}")
        unknown = set(self.effects) - set(EFFECT_COLUMNS)
        if unknown:
            raise ValueError(
                f"branch {self.slug!r}: effects on unsupported columns {sorted(unknown)}; "
                f"supported: {list(EFFECT_COLUMNS)}"
            )
        if any(m <= 0 for m in self.effects.values()):
            raise ValueError(f"branch {self.slug!r}: effect multipliers must be positive")
        # Read-only view keeps the frozen design truly immutable.
        object.__setattr__(self, "effects", MappingProxyType(dict(self.effects)))

    def __hash__(self) -> int:
        return hash((self.slug, self.ratio, tuple(sorted(self.effects.items())), self.assigned_ratio))

    @property
    def assignment_ratio(self) -> float:
        """The ratio the synthetic telemetry assigns clients by."""
        return self.ratio if self.assigned_ratio is None else self.assigned_ratio

    def multiplier(self, column: str) -> float:
        return self.effects.get(column, 1.0)


@dataclass(frozen=True, kw_only=True)
class ExperimentDesign:
    """One Experimenter record plus how many clients enrol in the synthetic telemetry."""

    slug: str
    start_date: dt.date
    enrollment_end_date: dt.date | None
    end_date: dt.date | None
    proposed_enrollment: int
    branches: tuple[BranchDesign, ...]
    n_clients: int
    app_name: str = "firefox_desktop"
    channel: str = "release"
    reference_branch: str | None = "control"
    outcomes: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()
    feature_id: str = "nimbus-qa-1"
    is_rollout: bool = False
    is_enrollment_paused: bool = False
    population_percent: float = 5.0
    proposed_duration: int = 28
    exposure_rate: float = 0.75
    unenroll_rate: float = 0.03
    unknown_branch_clients: int = 0
    user_facing_name: str = ""
    user_facing_description: str = ""

    def __post_init__(self) -> None:
        slugs = [b.slug for b in self.branches]
        if not slugs or len(set(slugs)) != len(slugs):
            raise ValueError(f"{self.slug}: branches must be non-empty with unique slugs: {slugs}")
        if self.reference_branch is not None and self.reference_branch not in slugs:
            raise ValueError(
                f"{self.slug}: reference branch {self.reference_branch!r} not in {slugs}"
            )
        if self.enrollment_end_date is not None and self.enrollment_end_date < self.start_date:
            raise ValueError(f"{self.slug}: enrollment ends before it starts")
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"{self.slug}: experiment ends before it starts")
        for name in ("exposure_rate", "unenroll_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{self.slug}: {name} must be within [0, 1]")
        if self.n_clients < 0 or self.unknown_branch_clients < 0:
            raise ValueError(f"{self.slug}: client counts must not be negative")

    @property
    def branch_slugs(self) -> tuple[str, ...]:
        return tuple(b.slug for b in self.branches)

    @property
    def last_enrollment_date(self) -> dt.date:
        """Last day a client may enrol: the enrollment end date, else the proposed enrollment."""
        if self.enrollment_end_date is not None:
            return self.enrollment_end_date
        return self.start_date + dt.timedelta(days=max(self.proposed_enrollment, 1) - 1)


# Branch slug carried by `unknown_branch_clients`: present in telemetry, absent from the design.
UNKNOWN_BRANCH = "unknown-branch"

DEMO_DATA_START = dt.date(2026, 8, 1)
DEMO_DATA_END = dt.date(2026, 10, 12)
DEMO_ANALYSIS_DATE = dt.date(2026, 10, 12)
DEMO_BACKGROUND_CLIENTS = 5_000
DEMO_SEED = 20260812

# Experiments that show failing checks on purpose: telemetry assigns 58/42 where Experimenter says
# 50/50, and a metric-hub config (jetstream/<slug>.toml) with a metric whose SQL fails at run time.
DEMO_SRM_SLUG = "pip-nudge-srm"
DEMO_BROKEN_METRIC_SLUG = "sidebar-broken-metric"
DEMO_BROKEN_METRIC = "sidebar_clicks"

DEMO_DESIGNS: tuple[ExperimentDesign, ...] = (
    ExperimentDesign(
        slug="search-shortcuts-complete",
        user_facing_name="Search Shortcuts",
        user_facing_description="Search shortcuts in the address bar.",
        feature_id="search",
        start_date=dt.date(2026, 9, 1),
        enrollment_end_date=dt.date(2026, 9, 7),
        end_date=dt.date(2026, 10, 12),
        proposed_enrollment=7,
        proposed_duration=41,
        branches=(
            BranchDesign("control", 1),
            BranchDesign(
                "treatment", 1, {"active_hours_sum": 1.10, "search_count_all": 1.15}
            ),
        ),
        n_clients=18_000,
        is_enrollment_paused=True,
    ),
    ExperimentDesign(
        slug="tab-groups-live",
        user_facing_name="Tab Groups",
        user_facing_description="Group tabs by topic.",
        feature_id="tabGroups",
        start_date=dt.date(2026, 9, 20),
        enrollment_end_date=dt.date(2026, 9, 27),
        end_date=None,
        proposed_enrollment=7,
        proposed_duration=42,
        branches=(
            BranchDesign("control", 2),
            BranchDesign(
                "treatment-a", 1, {"scalar_parent_browser_engagement_total_uri_count_sum": 1.15}
            ),
            BranchDesign("treatment-b", 1, {"active_hours_sum": 0.95}),
        ),
        n_clients=16_000,
        is_enrollment_paused=True,
    ),
    ExperimentDesign(
        slug="onboarding-custom-metrics",
        user_facing_name="Onboarding Refresh",
        user_facing_description="A shorter onboarding flow.",
        feature_id="aboutwelcome",
        start_date=dt.date(2026, 9, 10),
        enrollment_end_date=dt.date(2026, 9, 16),
        end_date=None,
        proposed_enrollment=7,
        proposed_duration=35,
        branches=(
            BranchDesign("control", 1),
            BranchDesign("treatment", 1, {"ad_clicks_count_all": 1.25}),
        ),
        n_clients=10_000,
        is_enrollment_paused=True,
    ),
    ExperimentDesign(
        slug="default-search-rollout",
        user_facing_name="Default Search Rollout",
        user_facing_description="Roll out the new default search configuration.",
        feature_id="search",
        start_date=dt.date(2026, 8, 20),
        enrollment_end_date=None,
        end_date=None,
        proposed_enrollment=7,
        branches=(BranchDesign("enabled", 1),),
        reference_branch="enabled",
        n_clients=0,
        is_rollout=True,
        population_percent=50.0,
    ),
    ExperimentDesign(
        slug="brand-new-experiment",
        user_facing_name="Brand New Experiment",
        user_facing_description="Launched yesterday; nobody has enrolled yet.",
        feature_id="nimbus-qa-2",
        start_date=dt.date(2026, 10, 11),
        enrollment_end_date=None,
        end_date=None,
        proposed_enrollment=7,
        branches=(BranchDesign("control", 1), BranchDesign("treatment", 1)),
        n_clients=0,
    ),
    ExperimentDesign(
        slug=DEMO_SRM_SLUG,
        user_facing_name="Picture-in-Picture Nudge",
        user_facing_description="Broken on purpose: 58% of clients land in control although the ratio "
        "is 50/50 (a sample ratio mismatch).",
        feature_id="pictureinpicture",
        start_date=dt.date(2026, 9, 28),
        enrollment_end_date=dt.date(2026, 10, 2),
        end_date=None,
        proposed_enrollment=5,
        branches=(
            BranchDesign("control", 1, assigned_ratio=58),
            BranchDesign("treatment", 1, assigned_ratio=42),
        ),
        n_clients=3_000,
        is_enrollment_paused=True,
    ),
    ExperimentDesign(
        slug=DEMO_BROKEN_METRIC_SLUG,
        user_facing_name="Sidebar Launcher",
        user_facing_description="Broken on purpose: its metric-hub config has a metric whose SQL "
        "reads a column that does not exist.",
        feature_id="sidebar",
        start_date=dt.date(2026, 9, 28),
        enrollment_end_date=dt.date(2026, 10, 2),
        end_date=None,
        proposed_enrollment=5,
        branches=(
            BranchDesign("control", 1),
            BranchDesign("treatment", 1, {"active_hours_sum": 1.05}),
        ),
        n_clients=3_000,
        is_enrollment_paused=True,
    ),
)
