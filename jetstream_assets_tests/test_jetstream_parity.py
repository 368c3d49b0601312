"""Jetstream's behaviour where a re-implementation easily differs (reference/real_inputs.md), each checked
against mozilla/jetstream's source: the metadata JSON's external_config and the errors export window."""

from __future__ import annotations

import datetime as dt

import pytest
from mozilla_nimbus_schemas.jetstream import Metadata

from jetstream_assets.analysis.exports import errors_window_start, metadata_payload
from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.experimenter.models import Branch, Experiment
from jetstream_assets.metric_hub.models import AnalysisConfig, DataSource, Metric, StatisticSpec

START = dt.date(2026, 3, 1)
URL = "https://github.com/mozilla/metric-hub/blob/main/jetstream/exp.toml"


def experimenter_record(**changes) -> Experiment:
    return Experiment(
        slug="exp", branches=(Branch("control"), Branch("treatment")), start_date=START,
        end_date=dt.date(2026, 4, 1), enrollment_end_date=dt.date(2026, 3, 7), proposed_enrollment=7,
        reference_branch="control", **changes,
    )


def config(experiment: Experiment, overrides: dict | None = None, enrollment_period: int = 7) -> AnalysisConfig:
    metric = Metric("m", "SUM(x)", DataSource("ds", "t"), (StatisticSpec("bootstrap_mean"),),
                    description="Line one.\nLine two.\n")
    return AnalysisConfig(experiment=experiment, enrollment_period=enrollment_period,
                          metrics={AnalysisPeriod.WEEK: (metric,)}, overrides=overrides or {},
                          config_url=URL if overrides else None)


def payload(cfg: AnalysisConfig) -> dict:
    out = metadata_payload(cfg, dt.datetime(2026, 4, 2, 5, 0, tzinfo=dt.timezone.utc))
    Metadata.model_validate(out)
    return out


def test_metadata_has_jetstreams_keys_and_keeps_descriptions():
    out = payload(config(experimenter_record()))
    assert list(out) == ["analysis_start_time", "external_config", "metrics", "outcomes", "version_info",
                         "version_date", "schema_version"]
    assert out["external_config"] is None and out["version_info"] is None and out["version_date"] is None
    assert out["metrics"]["m"]["description"] == "Line one.\nLine two.\n"


def test_external_config_lists_every_key_with_only_changed_values():
    record = experimenter_record()
    overridden = record.with_overrides(end_date=dt.date(2026, 4, 20), status="Complete")
    out = payload(config(overridden, {"end_date": dt.date(2026, 4, 20)}))
    assert out["external_config"] == {
        "reference_branch": None, "end_date": "2026-04-20", "start_date": None, "enrollment_period": None,
        "skip": False, "url": URL,
    }


def test_external_config_is_null_when_the_config_repeats_experimenters_values():
    record = experimenter_record()
    same = record.with_overrides(reference_branch="control", start_date=START, proposed_enrollment=7)
    cfg = config(same, {"reference_branch": "control", "start_date": START, "enrollment_period": 7})
    assert payload(cfg)["external_config"] is None


def test_external_config_reports_the_resolved_enrollment_period_once_something_is_overridden():
    """metric-config-parser compares the resolved period with Experimenter's proposed enrollment."""
    record = experimenter_record()
    moved = record.with_overrides(reference_branch="treatment")
    out = payload(config(moved, {"reference_branch": "treatment"}, enrollment_period=8))
    assert out["external_config"]["reference_branch"] == "treatment"
    assert out["external_config"]["enrollment_period"] == 8


@pytest.mark.parametrize("started, since", [
    # no enrollment end date: the errors since this analysis started (floored to the minute)
    (dt.datetime(2026, 3, 20, 4, 12, 33), dt.datetime(2026, 3, 20, 4, 12)),
])
def test_errors_window_without_enrollment_end_is_this_analysis(started, since):
    assert errors_window_start(experimenter_record().with_overrides(enrollment_end_date=None), started) == since
    assert errors_window_start(None, started) == since


@pytest.mark.parametrize("started, since", [
    (dt.datetime(2026, 3, 8, 0, 0), dt.datetime(2026, 3, 8, 0, 0)),  # not after the first cycle start: itself
    (dt.datetime(2026, 3, 7, 23, 59, 59), dt.datetime(2026, 3, 7, 23, 59)),
    (dt.datetime(2026, 3, 8, 4, 10), dt.datetime(2026, 3, 8)),  # enrollment end + 1
    (dt.datetime(2026, 3, 15, 0, 0), dt.datetime(2026, 3, 8)),  # the cycle start must be strictly before
    (dt.datetime(2026, 3, 15, 0, 0, 1), dt.datetime(2026, 3, 15)),
    (dt.datetime(2026, 4, 2, 5, 0), dt.datetime(2026, 3, 29)),
])
def test_errors_window_is_the_current_weekly_cycle(started, since):
    """Jetstream's export_experiment_logs: the latest enrollment_end + 1 + 7k strictly before the start."""
    assert errors_window_start(experimenter_record(), started) == since
