"""Supported apps and the BigQuery dataset each experiment reads (Jetstream's `platform_config.toml`,
Experimenter's per-channel app ids, mozanalysis's dataset naming).

An experiment's dataset comes from its Experimenter `appId` (`org.mozilla.firefox_beta` ->
`org_mozilla_firefox_beta`): it names the app *and* the channel, so a Fenix beta experiment reads beta
data. A record without `appId` takes the id Experimenter gives its app on its channel, else the
platform's own id (Jetstream's `platform_config.toml`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    app_name: str
    app_id: str  # Jetstream's platform app id; its dataset joins every channel where one exists (fenix)
    enrollments_query_type: str = "glean-event"


PLATFORMS: dict[str, Platform] = {
    p.app_name: p
    for p in (
        Platform("firefox_desktop", "firefox-desktop", "normandy"),
        Platform("fenix", "fenix"),
        Platform("focus_android", "org.mozilla.focus"),
        Platform("klar_android", "org.mozilla.klar"),
        Platform("firefox_ios", "org.mozilla.ios.FirefoxBeta"),
        Platform("focus_ios", "org.mozilla.ios.Focus"),
        Platform("klar_ios", "org.mozilla.ios.Klar"),
    )
}

SUPPORTED_APPS = frozenset(PLATFORMS)
DESKTOP = "firefox_desktop"

# Experimenter's `channel_app_id` per application: what `appId` holds for an experiment on that channel.
CHANNEL_APP_IDS: dict[str, dict[str, str]] = {
    "fenix": {"nightly": "org.mozilla.fenix", "beta": "org.mozilla.firefox_beta", "release": "org.mozilla.firefox"},
    "focus_android": {
        "nightly": "org.mozilla.focus.nightly", "beta": "org.mozilla.focus.beta", "release": "org.mozilla.focus",
    },
    "klar_android": {"release": "org.mozilla.klar"},
    "firefox_ios": {
        "developer": "org.mozilla.ios.Fennec", "nightly": "org.mozilla.ios.Fennec",
        "beta": "org.mozilla.ios.FirefoxBeta", "release": "org.mozilla.ios.Firefox",
    },
    "focus_ios": {"release": "org.mozilla.ios.Focus"},
    "klar_ios": {"release": "org.mozilla.ios.Klar"},
}

SHARED_PROJECT = "moz-fx-data-shared-prod"  # where Mozilla's app datasets live (mozanalysis reads them there)
EVENTS_STREAM = "events_stream"
DESKTOP_EVENTS_STREAM = f"{DESKTOP}.{EVENTS_STREAM}"
# Where every Nimbus event lived before per-app tables; still read, with a warning, when a warehouse
# has nothing else (see `analysis.enrollments.events_stream_source`).
LEGACY_EVENTS_STREAM = f"telemetry.{EVENTS_STREAM}"


def bigquery_dataset(app_id: str) -> str:
    """mozanalysis's rule: lower-case, every character outside [a-zA-Z0-9] becomes `_`."""
    return re.sub(r"[^a-zA-Z0-9]", "_", app_id).lower()


def resolve_app_id(app_name: str | None, app_id: str | None = None, channel: str | None = None) -> str:
    """The record's `appId`, else Experimenter's id for the app on `channel`, else the platform's id."""
    if app_id:
        return app_id
    name = app_name or DESKTOP
    by_channel = CHANNEL_APP_IDS.get(name, {})
    if channel and channel.lower() in by_channel:
        return by_channel[channel.lower()]
    platform = PLATFORMS.get(name, PLATFORMS[DESKTOP])
    return platform.app_id


def app_dataset(app_name: str | None, app_id: str | None = None, channel: str | None = None) -> str:
    """The dataset `{dataset}` stands for in a data source, and the one holding the app's events_stream."""
    return bigquery_dataset(resolve_app_id(app_name, app_id, channel))


def known_app_dataset(app_name: str | None, app_id: str | None = None, channel: str | None = None) -> str | None:
    """`app_dataset`, or None for an app Jetstream does not know that has no `appId` of its own
    (such a config's `{dataset}` falls back to the data source's `default_dataset`)."""
    if not app_id and app_name not in PLATFORMS:
        return None
    return app_dataset(app_name, app_id, channel)


def events_stream_table(app_name: str | None, app_id: str | None = None, channel: str | None = None) -> str:
    """`<app dataset>.events_stream`: where the experiment's Nimbus enrollment and exposure events are."""
    return f"{app_dataset(app_name, app_id, channel)}.{EVENTS_STREAM}"


def shared_table(table: str) -> str:
    """`dataset.table` in Mozilla's shared project, back-quoted as mozanalysis writes it (the embedded
    engine reads `dataset.table` of its file)."""
    return f"`{SHARED_PROJECT}.{table}`"
