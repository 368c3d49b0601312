"""metric-hub shapes seen in the real repository, each in a small config written for it: the jetstream/
definitions layer, derived metrics, the parser's templating rules, floats for ints, analysis units, keys we
do not act on, validate-config against Experimenter records and on each file's own platform, a checkout that
is not a git work tree."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.core.windows import ExperimentDates, window
from jetstream_assets.experimenter.models import BucketConfig
from jetstream_assets.metric_hub.errors import ConfigError
from jetstream_assets.metric_hub.loader import MetricHub
from jetstream_assets.core.platforms import known_app_dataset
from jetstream_assets.metric_hub.validation import Validator
from jetstream_assets.sample.designs import BranchDesign, ExperimentDesign
from jetstream_assets.sample.experimenter_payload import experimenter_payload
from jetstream_assets.sql.enrollments import build_enrollments_query
from jetstream_assets.sql.metrics import build_metrics_query
from jetstream_assets.validate_config import validate_paths
from jetstream_assets_tests.fixtures_sample import analyse, instance, load_snapshot, small_sample  # noqa: F401
from jetstream_assets_tests.small_sample import (
    TAB_GROUPS,
    TAB_GROUPS_WEEK_READY,
    analysis_resources,
    log_rows,
    query,
)
from jetstream_assets_tests.test_metric_hub import SAMPLE_HUB, experiment, write_hub

WEEK = AnalysisPeriod.WEEK

# as in metric-hub: the root definitions give the SQL, jetstream/definitions the statistics Jetstream computes
SEARCH_DEFINITIONS = """
[metrics.ad_clicks]
select_expression = '{{agg_sum("ad_clicks_count_all")}}'
data_source = "clients_daily"

[metrics.search_count]
select_expression = '{{agg_sum("search_count_all")}}'
data_source = "clients_daily"

[metrics.ad_click_rate]
friendly_name = "Ad Click Rate"
description = "Ad clicks over SAP searches, over the whole population."
depends_on = ["ad_clicks", "search_count"]

[metrics.histogram_thing]
select_expression = '{{agg_histogram_mean_glean("metrics.timing_distribution.x")}}'
data_source = "clients_daily"

[data_sources.clients_daily]
from_expression = "moz-fx-data-shared-prod.telemetry.clients_daily"
"""

JETSTREAM_DEFINITIONS = """
[metrics.ad_clicks.statistics.bootstrap_mean]
[metrics.search_count.statistics.bootstrap_mean]
[metrics.histogram_thing.statistics.bootstrap_mean]

[metrics.ad_click_rate.statistics.population_ratio]
numerator = "ad_clicks"
denominator = "search_count"
"""

JETSTREAM_FUNCTIONS = """
[functions.agg_histogram_mean_glean]
definition = "AVG(mozfun.glean.timing_distribution_mean({select_expr}))"
"""


def search_hub(root: Path, own: str = "") -> MetricHub:
    files = {
        "definitions/firefox_desktop.toml": SEARCH_DEFINITIONS,
        "jetstream/definitions/firefox_desktop.toml": JETSTREAM_DEFINITIONS,
        "jetstream/definitions/functions.toml": JETSTREAM_FUNCTIONS,
        "jetstream/defaults/firefox_desktop.toml": "[metrics]\nweekly = []\n",
    }
    if own:
        files["jetstream/exp-1.toml"] = own
    return write_hub(root, files)


def test_jetstream_definitions_layer_is_merged_over_the_root_definitions(tmp_path):
    hub = search_hub(tmp_path, '[metrics]\nweekly = ["ad_clicks", "histogram_thing"]\n')
    metrics = {m.name: m for m in hub.resolve(experiment()).metrics[WEEK]}
    # statistics come from jetstream/definitions, the Jinja helper from jetstream/definitions/functions.toml
    assert [s.name for s in metrics["ad_clicks"].statistics] == ["bootstrap_mean"]
    assert metrics["histogram_thing"].select_expression == (
        "AVG(mozfun.glean.timing_distribution_mean(metrics.timing_distribution.x))"
    )


def test_derived_metric_is_computed_from_its_upstream_metrics(tmp_path):
    hub = search_hub(tmp_path, '[metrics]\nweekly = ["ad_click_rate"]\n')
    (rate,) = hub.resolve(experiment()).metrics[WEEK]
    assert rate.is_derived and rate.columns == ("ad_clicks", "search_count")
    assert [s.params for s in rate.statistics] == [{"numerator": "ad_clicks", "denominator": "search_count"}]
    dates = ExperimentDates(dt.date(2026, 9, 10), 7, None)
    sql = build_metrics_query(slug="exp-1", enrollments_table="e", metrics=[rate], window=window(dates, WEEK, 1),
                              dates=dates, basis="enrollments", segment_columns=[])
    upstream_sql = build_metrics_query(slug="exp-1", enrollments_table="e", metrics=list(rate.upstream),
                                       window=window(dates, WEEK, 1), dates=dates, basis="enrollments",
                                       segment_columns=[])
    assert sql == upstream_sql and "ad_click_rate" not in sql


def test_derived_metric_whose_upstream_has_no_statistics_is_refused_at_the_upstream(tmp_path):
    search_hub(tmp_path, '[metrics]\nweekly = ["ad_click_rate"]\n')
    (tmp_path / "jetstream/definitions/firefox_desktop.toml").write_text(
        JETSTREAM_DEFINITIONS.replace("[metrics.search_count.statistics.bootstrap_mean]\n", "")
    )
    with pytest.raises(ConfigError, match="depends on 'search_count', which has no statistics") as raised:
        MetricHub(tmp_path).resolve(experiment())
    assert raised.value.file.endswith("definitions/firefox_desktop.toml") and raised.value.line is not None


def test_derived_metric_population_ratio_runs_through_the_pipeline(small_sample, instance, tmp_path):  # noqa: F811
    hub = Path(shutil.copytree(SAMPLE_HUB, tmp_path / "metric-hub"))
    (hub / "definitions" / "firefox_desktop.toml").open("a").write(
        '\n[metrics.ad_click_rate]\ndepends_on = ["ad_clicks", "search_count"]\n'
    )
    (hub / "jetstream" / "definitions").mkdir()
    (hub / "jetstream" / "definitions" / "firefox_desktop.toml").write_text(JETSTREAM_DEFINITIONS)
    (hub / "jetstream" / f"{TAB_GROUPS}.toml").write_text(
        '[experiment]\nenrollments_query_type = "normandy"\n[metrics]\nweekly = ["ad_click_rate"]\n'
    )
    resources = analysis_resources(small_sample.home, metric_hub_path=str(hub))
    assert load_snapshot(instance, resources).success
    assert analyse(instance, resources, TAB_GROUPS, TAB_GROUPS_WEEK_READY[0]).success
    table = TAB_GROUPS.replace("-", "_")
    columns = set(query(small_sample.home, f"SELECT * FROM mozanalysis.{table}_enrollments_week_1 LIMIT 0").columns)
    assert {"ad_clicks", "search_count"} <= columns and "ad_click_rate" not in columns
    rows = query(small_sample.home, f"""SELECT branch, comparison, point FROM mozanalysis.statistics_{table}_week_1
        WHERE metric = 'ad_click_rate' AND statistic = 'population_ratio' AND segment = 'all'
          AND analysis_basis = 'enrollments'""")
    individual = rows[rows["comparison"].isna()]
    assert len(individual) == 3 and individual["point"].between(0, 1).all()
    # a key we do not act on is a WARNING row naming file and key; the analysis still ran
    warnings = log_rows(small_sample.home, TAB_GROUPS).query("log_level == 'WARNING'")["message"]
    assert warnings.str.contains(f"{TAB_GROUPS}.toml:2: experiment.enrollments_query_type:").sum() >= 1


def test_data_source_templating_follows_the_parser(tmp_path):
    sources = """
[data_sources.addons]
from_expression = "(SELECT * FROM t WHERE addon_id = '{{d10d0bf8-f5b5-c8b4-a8b2-2b9879e08c5d}}')"
[data_sources.mine]
from_expression = "(SELECT * FROM t WHERE slug = '{{experiment.normandy_slug}}')"
[data_sources.per_app]
from_expression = "`mozdata.{dataset}.baseline`"
default_dataset = "org_mozilla_firefox"
[metrics.a]
select_expression = "COUNT(*)"
data_source = "addons"
statistics = { bootstrap_mean = {} }
[metrics.b]
select_expression = "COUNT(*)"
data_source = "mine"
statistics = { bootstrap_mean = {} }
[metrics.c]
select_expression = "COUNT(*)"
data_source = "per_app"
statistics = { bootstrap_mean = {} }
[metrics]
weekly = ["a", "b", "c"]
"""
    hub = write_hub(tmp_path, {"jetstream/exp-1.toml": sources})
    froms = {m.name: m.data_source.from_expression for m in hub.resolve(experiment()).metrics[WEEK]
             if m.name in ("a", "b", "c")}
    assert froms["a"] == "(SELECT * FROM t WHERE addon_id = '{d10d0bf8-f5b5-c8b4-a8b2-2b9879e08c5d}')"
    assert froms["b"] == "(SELECT * FROM t WHERE slug = 'exp-1')"
    assert froms["c"] == "`mozdata.firefox_desktop.baseline`"  # the experiment's app wins over default_dataset
    fenix_beta = experiment(app_name="fenix", app_id="org.mozilla.firefox_beta")
    (tmp_path / "jetstream/defaults/fenix.toml").write_text("[metrics]\nweekly = []\n")
    (tmp_path / "definitions/fenix.toml").write_text("")
    config = MetricHub(tmp_path).resolve(fenix_beta)
    assert [m.data_source.from_expression for m in config.metrics[WEEK] if m.name == "c"] == [
        "`mozdata.org_mozilla_firefox_beta.baseline`"
    ]


def test_dataset_placeholder_without_default_dataset_is_refused(tmp_path):
    own = '[data_sources.x]\nfrom_expression = "`mozdata.{dataset}.baseline`"\n[metrics]\nweekly = ["m"]\n' \
          '[metrics.m]\nselect_expression = "COUNT(*)"\ndata_source = "x"\nstatistics = { binomial = {} }\n'
    hub = write_hub(tmp_path, {"jetstream/exp-1.toml": own})
    with pytest.raises(ConfigError, match="no default_dataset") as raised:
        hub.resolve(experiment())
    assert raised.value.field == "data_sources.x.from_expression" and raised.value.line == 2


def test_app_dataset_as_jetstream_derives_it():
    assert known_app_dataset("fenix", "org.mozilla.firefox_beta") == "org_mozilla_firefox_beta"
    assert known_app_dataset("fenix", None, "nightly") == "org_mozilla_fenix"
    assert known_app_dataset("firefox_ios") == "org_mozilla_ios_firefoxbeta"
    assert known_app_dataset("firefox_desktop") == "firefox_desktop"
    assert known_app_dataset("not_an_app") is None


def test_float_sample_size_is_read_as_a_whole_number(tmp_path):
    hub = write_hub(tmp_path, {"jetstream/exp-1.toml": "[experiment]\nsample_size=3.0\n"})
    assert hub.resolve(experiment()).sample_size == 3
    (tmp_path / "jetstream/exp-1.toml").write_text("[experiment]\nsample_size = 3.5\n")
    with pytest.raises(ConfigError, match="expected int"):
        MetricHub(tmp_path).resolve(experiment())


def test_profile_group_analysis_unit_joins_data_sources_on_their_group_id(tmp_path):
    own = '[experiment]\nanalysis_unit = "profile_group_id"\n' \
          '[data_sources.clients_daily]\ngroup_id_column = "profile_group"\n'
    config = write_hub(tmp_path, {"jetstream/exp-1.toml": own}).resolve(experiment())
    assert config.analysis_unit == "profile_group_id"
    dates = ExperimentDates(dt.date(2026, 9, 10), 7, None)
    sql = build_metrics_query(slug="exp-1", enrollments_table="e", metrics=list(config.metrics[WEEK]),
                              window=window(dates, WEEK, 1), dates=dates, basis="enrollments", segment_columns=[],
                              analysis_unit=config.analysis_unit)
    assert "ON ds.profile_group = e.analysis_id" in sql and "ds.client_id" not in sql
    enrollments = build_enrollments_query(config, first_enrollment_date=dates.start_date,
                                          last_enrollment_date=dates.last_enrollment_date)
    assert enrollments.count("profile_group_id AS client_id") == 2  # enrollment and exposure events
    # without a config key, Experimenter's group_id randomisation decides, as in Jetstream
    grouped = experiment(bucket_config=BucketConfig(randomization_unit="group_id"))
    assert MetricHub(tmp_path / "none").resolve(grouped).analysis_unit == "profile_group_id"


def test_metric_analysis_units_must_be_supported_by_its_data_source(tmp_path):
    own = """
[metrics]
weekly = ["shares"]
[metrics.shares]
select_expression = "COUNT(*)"
data_source = "ios_events"
analysis_units = ["profile_group_id"]
statistics = { bootstrap_mean = {} }
[data_sources.ios_events]
from_expression = "mozdata.firefox_ios.events_stream"
analysis_units = ["client_id"]
"""
    hub = write_hub(tmp_path, {"jetstream/exp-1.toml": own})
    with pytest.raises(ConfigError, match="does not support the analysis units") as raised:
        hub.resolve(experiment())
    assert raised.value.field == "metrics.shares.analysis_units" and raised.value.line == 7


def test_keys_we_do_not_act_on_are_warnings_naming_file_and_key(tmp_path):
    own = '[experiment]\nenrollment_period = 7\nenrollments_query_type = "normandy"\n' \
          'exposure_query_type = "glean-event"\n'
    config = write_hub(tmp_path, {"jetstream/exp-1.toml": own}).resolve(experiment())
    assert len(config.warnings) == 2
    normandy, exposure = config.warnings
    assert normandy.startswith(f"{tmp_path}/jetstream/exp-1.toml:3: experiment.enrollments_query_type:")
    assert exposure.startswith(f"{tmp_path}/jetstream/exp-1.toml:4: experiment.exposure_query_type:")
    (tmp_path / "jetstream/exp-1.toml").write_text('[experiment]\nenrollments_query_type = "glean-event"\n')
    assert MetricHub(tmp_path).resolve(experiment()).warnings == ()  # what we do for every app


def test_config_without_experimenter_record_keeps_its_own_past_dates(tmp_path):
    own = '[experiment]\nend_date = "2021-05-22"\nenrollment_period = 7\n'
    write_hub(tmp_path, {"jetstream/old-experiment.toml": own})
    (check,) = Validator().check_path(tmp_path / "jetstream" / "old-experiment.toml")
    assert check.error is None
    assert check.config.experiment.start_date < dt.date(2021, 5, 22) == check.config.end_date


def test_experiment_config_is_resolved_on_its_experimenter_platform(tmp_path, capsys):
    fenix_only = '[metrics]\nweekly = ["baseline_days"]\n[metrics.baseline_days.statistics.bootstrap_mean]\n'
    write_hub(tmp_path, {
        "jetstream/android-exp.toml": fenix_only,
        "jetstream/defaults/fenix.toml": "[metrics]\nweekly = []\n",
        "definitions/fenix.toml": '[metrics.baseline_days]\nselect_expression = "COUNT(*)"\ndata_source = "baseline"\n'
                                  '[data_sources.baseline]\nfrom_expression = "`mozdata.{dataset}.baseline`"\n'
                                  'default_dataset = "fenix"\n',
    })
    config_file = tmp_path / "jetstream" / "android-exp.toml"
    record = experiment("android-exp", app_name="fenix", app_id="org.mozilla.fenix",
                        start_date=dt.date(2026, 8, 1), end_date=dt.date(2026, 8, 30))
    (check,) = Validator(experiments={"android-exp": record}).check_path(config_file)
    assert check.error is None and check.config.experiment.branch_slugs == ("control", "treatment")
    assert check.config.metrics[WEEK][0].data_source.from_expression == "`mozdata.org_mozilla_fenix.baseline`"
    # no record: desktop by default, which has no such metric; `--platform fenix` accepts it
    assert validate_paths([config_file], dry_run=False, experiments={}) == 1
    assert "metrics.baseline_days.select_expression: a metric needs select_expression" in capsys.readouterr().out
    assert validate_paths([config_file], dry_run=False, experiments={}, platform="fenix") == 0


def test_outcomes_and_defaults_are_validated_on_their_own_platform(tmp_path):
    write_hub(tmp_path, {
        "definitions/fenix.toml": '[data_sources.baseline]\nfrom_expression = "mozdata.fenix.baseline"\n',
        "jetstream/defaults/fenix.toml": "[metrics]\nweekly = []\n",
        "jetstream/outcomes/fenix/retention.toml": 'friendly_name = "R"\ndescription = "d"\n'
                                                   '[metrics.days]\nselect_expression = "COUNT(*)"\n'
                                                   'data_source = "baseline"\nstatistics = { bootstrap_mean = {} }\n',
    })
    assert [(c.file.name, c.error) for c in Validator().check_path(tmp_path) if c.error] == []


def test_validate_config_cli_reads_experimenter_records_from_experimenter_url(tmp_path):
    hub = tmp_path / "hub"
    write_hub(hub, {"jetstream/exp-1.toml": '[experiment]\nreference_branch = "treatment"\n',
                    "jetstream/exp-2.toml": '[experiment]\nreference_branch = "treatment"\n'})
    design = ExperimentDesign(slug="exp-1", start_date=dt.date(2026, 9, 1), enrollment_end_date=None,
                              end_date=None, proposed_enrollment=7, n_clients=0,
                              branches=(BranchDesign("control"), BranchDesign("treatment-a")))
    payload = tmp_path / "experimenter.json"
    payload.write_text(json.dumps(experimenter_payload([design])))
    done = subprocess.run(
        [sys.executable, "-m", "jetstream_assets.cli", "validate-config", str(hub), "--no-dry-run"],
        capture_output=True, text=True, env={**os.environ, "EXPERIMENTER_URL": str(payload)}, check=False,
    )
    # exp-1's record has no `treatment` branch; exp-2 has no record, so any reference branch goes
    assert done.returncode == 1
    (invalid,) = [line for line in done.stdout.splitlines() if line.startswith("INVALID")]
    assert invalid.startswith(f"INVALID {hub.resolve()}/jetstream/exp-1.toml:2: experiment.reference_branch:")


def test_metric_hub_outside_a_git_work_tree_works_and_warns_once(tmp_path, caplog):
    outcome = 'friendly_name = "O"\ndescription = "d"\n[metrics.x]\nselect_expression = "1"\n' \
              'data_source = "clients_daily"\nstatistics = { binomial = {} }\n'
    hub = write_hub(tmp_path, {"jetstream/outcomes/firefox_desktop/o.toml": outcome,
                               "jetstream/outcomes/firefox_desktop/p.toml": outcome})
    with caplog.at_level(logging.WARNING):
        config = hub.resolve(experiment(outcomes=("o", "p")))
        hub.resolve(experiment(outcomes=("o", "p")))
    assert [o.commit_hash for o in config.outcomes] == [None, None]
    assert [r.getMessage() for r in caplog.records].count(
        f"metric-hub at {tmp_path} is not a git work tree: outcome commit hashes are null") == 1

