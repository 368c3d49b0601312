"""The apps Jetstream analyses (its `platform_config.toml`) and the BigQuery dataset of an experiment's app.

The dataset fills `{dataset}` in data sources' from_expressions (and names the app's Glean tables, e.g.
`<dataset>.events_stream`); `app_dataset` is the one place that computes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Platform:
    name: str
    app_id: str  # Experimenter's appId when the experiment record does not give one
    enrollments_query_type: str = "glean-event"  # how enrollments are read unless the config says otherwise


PLATFORMS: dict[str, Platform] = {
    p.name: p
    for p in (
        Platform("firefox_desktop", "firefox-desktop", "normandy"),
        Platform("fenix", "fenix"),  # the `fenix` dataset joins every Android channel
        Platform("focus_android", "org.mozilla.focus"),
        Platform("klar_android", "org.mozilla.klar"),
        Platform("firefox_ios", "org.mozilla.ios.FirefoxBeta"),
        Platform("focus_ios", "org.mozilla.ios.Focus"),
        Platform("klar_ios", "org.mozilla.ios.Klar"),
    )
}

# Experimenter gives each channel of these apps its own appId; used only when a record lacks appId
_CHANNEL_APP_IDS: dict[tuple[str, str], str] = {
    ("fenix", "release"): "org.mozilla.firefox",
    ("fenix", "beta"): "org.mozilla.firefox_beta",
    ("fenix", "nightly"): "org.mozilla.fenix",
    ("firefox_ios", "release"): "org.mozilla.ios.Firefox",
    ("firefox_ios", "beta"): "org.mozilla.ios.FirefoxBeta",
    ("firefox_ios", "nightly"): "org.mozilla.ios.Fennec",
}


def app_dataset(app_id: str | None, app_name: str, channel: str | None = None) -> str | None:
    """The BigQuery dataset of an experiment's app, as Jetstream derives it from Experimenter's appId:
    lower-cased, every character outside [a-zA-Z0-9] replaced by `_` (`org.mozilla.firefox_beta` ->
    `org_mozilla_firefox_beta`). Without an appId: the channel's app, else the platform's; None for an
    app Jetstream does not know."""
    if not app_id:
        app_id = _CHANNEL_APP_IDS.get((app_name, (channel or "").lower()))
    if not app_id and app_name in PLATFORMS:
        app_id = PLATFORMS[app_name].app_id
    return re.sub(r"[^a-zA-Z0-9]", "_", app_id).lower() if app_id else None
