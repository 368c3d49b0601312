"""Experimenter API v8 objects (`/api/v8/experiments/` body) for experiment designs."""

from __future__ import annotations

import datetime as dt
import zlib
from typing import Any, Sequence

from jetstream_assets.sample.designs import ExperimentDesign

SCHEMA_VERSION = "1.12.0"
BUCKET_TOTAL = 10_000
APP_IDS = {
    "firefox_desktop": "firefox-desktop",
    "fenix": "org.mozilla.firefox",
    "firefox_ios": "org.mozilla.ios.Firefox",
    "focus_android": "org.mozilla.focus",
    "focus_ios": "org.mozilla.ios.Focus",
}


def experimenter_payload(designs: Sequence[ExperimentDesign]) -> list[dict[str, Any]]:
    """The API body: one object per design, sorted by slug as the API sorts them."""
    return [experiment_object(d) for d in sorted(designs, key=lambda d: d.slug)]


def experiment_object(design: ExperimentDesign) -> dict[str, Any]:
    try:
        app_id = APP_IDS[design.app_name]
    except KeyError:
        raise ValueError(
            f"{design.slug}: unknown app_name {design.app_name!r}; known: {sorted(APP_IDS)}"
        ) from None
    desktop = design.app_name == "firefox_desktop"
    return {
        "schemaVersion": SCHEMA_VERSION,
        "slug": design.slug,
        "id": design.slug,
        "appName": design.app_name,
        "appId": app_id,
        "channel": design.channel,
        "channels": [design.channel],
        "userFacingName": design.user_facing_name or design.slug,
        "userFacingDescription": design.user_facing_description,
        "isEnrollmentPaused": design.is_enrollment_paused,
        "isRollout": design.is_rollout,
        "bucketConfig": _bucket_config(design, app_id, desktop),
        "featureIds": [design.feature_id],
        "outcomes": [{"slug": o, "priority": "primary"} for o in design.outcomes],
        "segments": [{"slug": s} for s in design.segments],
        "branches": [_branch(design, b.slug, b.ratio, desktop) for b in design.branches],
        "targeting": f'(browserSettings.update.channel == "{design.channel}")',
        "startDate": _date(design.start_date),
        "enrollmentEndDate": _date(design.enrollment_end_date),
        "endDate": _date(design.end_date),
        "proposedDuration": design.proposed_duration,
        "proposedEnrollment": design.proposed_enrollment,
        "referenceBranch": design.reference_branch,
        "featureValidationOptOut": False,
        "localizations": None,
        "locales": None,
        "publishedDate": _published(design.start_date),
        "isFirefoxLabsOptIn": False,
        "isHoldback": False,
        "requiresRestart": False,
    }


def _bucket_config(design: ExperimentDesign, app_id: str, desktop: bool) -> dict[str, Any]:
    # A stable, slug-derived bucket range: the same design always gets the same buckets.
    count = round(BUCKET_TOTAL * design.population_percent / 100)
    return {
        "randomizationUnit": "normandy_id" if desktop else "nimbus_id",
        "namespace": f"{app_id}-{design.feature_id}-{design.channel}-1",
        "start": zlib.crc32(design.slug.encode()) % (BUCKET_TOTAL - count + 1),
        "count": count,
        "total": BUCKET_TOTAL,
    }


def _branch(design: ExperimentDesign, slug: str, ratio: float, desktop: bool) -> dict[str, Any]:
    branch: dict[str, Any] = {
        "slug": slug,
        "ratio": int(ratio) if float(ratio).is_integer() else ratio,
        "features": [
            {
                "featureId": design.feature_id,
                "value": {"enabled": design.is_rollout or slug != design.reference_branch},
            }
        ],
    }
    if desktop:
        # Desktop clients older than 95 crash without this stub (Experimenter adds it too).
        branch["feature"] = {
            "featureId": "this-is-included-for-desktop-pre-95-support",
            "enabled": False,
            "value": {},
        }
    return branch


def _date(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _published(start: dt.date) -> str:
    """Experiments are published the afternoon before they start."""
    return f"{(start - dt.timedelta(days=1)).isoformat()}T17:00:00Z"
