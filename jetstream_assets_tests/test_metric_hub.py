"""metric-hub configuration: resolution order, templating, overrides, errors, sample configs, fingerprints."""

from __future__ import annotations

import datetime as dt
import pickle
import textwrap
from pathlib import Path

import pytest

from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.experimenter.models import Branch, Experiment
from jetstream_assets.metric_hub.errors import ConfigError
from jetstream_assets.metric_hub.loader import MetricHub
from jetstream_assets.metric_hub.templating import ExperimentContext, SqlTemplates, parameter_values
from jetstream_assets.metric_hub.validation import Validator, validate_path

SAMPLE_HUB = Path(__file__).resolve().parents[1] / "jetstream_assets" / "sample" / "data" / "metric-hub"
WEEK, OVERALL, DAY = AnalysisPeriod.WEEK, AnalysisPeriod.OVERALL, AnalysisPeriod.DAY
PRE_WEEK = AnalysisPeriod.PREENROLLMENT_WEEK

DEFINITIONS = """
[metrics.active_hours]
select_expression = '{{agg_sum("active_hours_sum")}}'
data_source = "clients_daily"
friendly_name = "Active hours"

[metrics.searched]
select_expression = '{{agg_any("search_count_all > 0")}}'
data_source = "clients_daily"

[metrics.no_stats_metric]
select_expression = "COUNT(*)"
data_source = "clients_daily"

[data_sources.clients_daily]
from_expression = "moz-fx-data-shared-prod.telemetry.clients_daily"

[segments.heavy_users]
data_source = "cd_week"
select_expression = '{{agg_sum("active_hours_sum")}} > 5'

[segments.data_sources.cd_week]
from_expression = "moz-fx-data-shared-prod.telemetry.clients_daily"
window_start = -7
window_end = -1
"""

DEFAULTS = """
[metrics]
weekly = ["active_hours", "searched"]
overall = ["active_hours"]

[metrics.active_hours.statistics.bootstrap_mean]
[metrics.searched.statistics.binomial]
"""


def experiment(slug: str = "exp-1", **changes) -> Experiment:
    fields = dict(
        slug=slug,
        branches=(Branch("control"), Branch("treatment")),
        start_date=dt.date(2026, 9, 10),
        end_date=None,
        enrollment_end_date=dt.date(2026, 9, 16),
        proposed_enrollment=14,
        reference_branch="control",
    )
    fields.update(changes)
    return Experiment(**fields)


def write_hub(root: Path, files: dict[str, str]) -> MetricHub:
    base = {
        "definitions/firefox_desktop.toml": DEFINITIONS,
        "jetstream/defaults/firefox_desktop.toml": DEFAULTS,
    }
    for relative, text in {**base, **files}.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return MetricHub(root)


def names(config, period) -> list[str]:
    return [m.name for m in config.metrics[period]]


def stats(config, period, metric) -> list[str]:
    return [s.name for m in config.metrics[period] if m.name == metric for s in m.statistics]


def error_of(hub: MetricHub, exp: Experiment) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        hub.resolve(exp)
    return info.value


# --- resolution order -----------------------------------------------------------------------


def test_defaults_alone_resolve_with_definitions(tmp_path):
    config = write_hub(tmp_path, {}).resolve(experiment())
    assert names(config, WEEK) == ["active_hours", "searched"]
    assert names(config, OVERALL) == ["active_hours"]
    assert config.metrics[DAY] == ()
    metric = config.metrics[WEEK][0]
    assert metric.select_expression == "COALESCE(SUM(active_hours_sum), 0)"
    assert metric.data_source.from_expression == "moz-fx-data-shared-prod.telemetry.clients_daily"
    assert metric.data_source.experiments_column_type == "simple"  # metric-hub's default
    assert metric.friendly_name == "Active hours"
    assert metric.analysis_bases == ("enrollments", "exposures")
    assert config.config_file is None and config.config_url is None


def test_experiment_config_wins_over_defaults(tmp_path):
    hub = write_hub(
        tmp_path,
        {
            "jetstream/exp-1.toml": """
            [metrics]
            weekly = ["active_hours", "local_metric"]
            [metrics.active_hours]
            friendly_name = "Hours of use"
            [metrics.active_hours.statistics.deciles]
            [metrics.local_metric]
            select_expression = "COUNT(*)"
            data_source = "clients_daily"
            statistics = { count = {}, sum = {} }
            """
        },
    )
    config = hub.resolve(experiment())
    assert names(config, WEEK) == ["active_hours", "searched", "local_metric"]  # lists concatenate
    # a statistics table replaces the default's as a whole, in every period
    assert stats(config, WEEK, "active_hours") == ["deciles"]
    assert stats(config, OVERALL, "active_hours") == ["deciles"]
    assert config.all_metrics()["active_hours"].friendly_name == "Hours of use"
    assert config.all_metrics()["active_hours"].select_expression == "COALESCE(SUM(active_hours_sum), 0)"
    assert stats(config, WEEK, "local_metric") == ["count", "sum"]
    assert config.config_file == str(tmp_path / "jetstream" / "exp-1.toml")
    assert config.config_url == "https://github.com/mozilla/metric-hub/blob/main/jetstream/exp-1.toml"


def test_metric_and_statistic_are_deduplicated_per_period(tmp_path):
    hub = write_hub(
        tmp_path, {"jetstream/exp-1.toml": '[metrics]\nweekly = ["active_hours", "active_hours"]\n'}
    )
    config = hub.resolve(experiment())
    assert names(config, WEEK) == ["active_hours", "searched"]
    assert stats(config, WEEK, "active_hours") == ["bootstrap_mean"]


def test_wildcard_keys_update_every_matching_metric(tmp_path):
    hub = write_hub(tmp_path, {"jetstream/exp-1.toml": '[metrics."*"]\nanalysis_bases = ["enrollments"]\n'})
    config = hub.resolve(experiment())
    assert {m.analysis_bases for m in config.metrics[WEEK]} == {("enrollments",)}


def test_outcome_metrics_go_to_weekly_and_overall(tmp_path):
    hub = write_hub(
        tmp_path,
        {
            "jetstream/outcomes/firefox_desktop/engagement.toml": """
            friendly_name = "Engagement"
            description = "Engagement metrics"
            default_metrics = ["uris"]
            [metrics.uris]
            select_expression = '{{agg_sum("uri_count")}}'
            data_source = "clients_daily"
            statistics = { bootstrap_mean = {} }
            [metrics.searched]
            statistics = { binomial = {} }
            """,
            "jetstream/exp-1.toml": '[experiment]\noutcomes = ["engagement"]\n',
        },
    )
    config = hub.resolve(experiment())
    assert names(config, WEEK) == ["active_hours", "searched", "uris"]
    assert names(config, OVERALL) == ["active_hours", "uris", "searched"]
    assert config.metrics[DAY] == () and config.metrics[PRE_WEEK] == ()
    (outcome,) = config.outcomes
    assert (outcome.slug, outcome.friendly_name, outcome.metrics, outcome.default_metrics) == (
        "engagement",
        "Engagement",
        ("uris", "searched"),
        ("uris",),
    )
    # Experimenter's outcomes are used the same way as the config's
    from_experimenter = write_hub(tmp_path, {}).resolve(experiment(slug="other", outcomes=("engagement",)))
    assert "uris" in names(from_experimenter, OVERALL)


def test_outcome_with_period_lists_controls_its_periods(tmp_path):
    hub = write_hub(
        tmp_path,
        {
            "jetstream/outcomes/firefox_desktop/daily_use.toml": """
            friendly_name = "Daily use"
            description = "d"
            [metrics]
            daily = ["active_hours"]
            [metrics.active_hours.statistics.bootstrap_mean]
            """
        },
    )
    config = hub.resolve(experiment(outcomes=("daily_use",)))
    assert names(config, DAY) == ["active_hours"]


def test_unknown_outcome_is_an_error(tmp_path):
    hub = write_hub(tmp_path, {"jetstream/exp-1.toml": '[experiment]\noutcomes = ["nope"]\n'})
    error = error_of(hub, experiment())
    assert error.field == "experiment.outcomes" and error.line == 2 and "nope" in error.reason


# --- [experiment] overrides -----------------------------------------------------------------


def test_experiment_overrides_apply_to_the_record(tmp_path):
    hub = write_hub(
        tmp_path,
        {
            "jetstream/exp-1.toml": """
            [experiment]
            start_date = "2026-09-11"
            end_date = "2026-10-20"
            enrollment_period = 5
            reference_branch = "treatment"
            skip = true
            sample_size = 10
            segments = ["heavy_users"]
            enrollment_query = "SELECT '{{experiment.normandy_slug}}' AS slug, DATE '{{experiment.last_enrollment_date_str}}'"
            [experiment.exposure_signal]
            name = "saw_it"
            data_source = "clients_daily"
            select_expression = "COALESCE(LOGICAL_OR(search_count_all > 0), FALSE)"
            window_end = "analysis_window_end"
            """
        },
    )
    config = hub.resolve(experiment())
    exp = config.experiment
    assert (exp.start_date, exp.end_date, exp.status) == (
        dt.date(2026, 9, 11),
        dt.date(2026, 10, 20),
        "Complete",
    )
    assert exp.reference_branch == "treatment" and exp.segments == ("heavy_users",)
    assert config.enrollment_period == 5 and config.skip and config.sample_size == 10
    assert config.enrollment_query == "SELECT 'exp-1' AS slug, DATE '2026-09-16'"
    (segment,) = config.segments
    assert segment.select_expression == "COALESCE(SUM(active_hours_sum), 0) > 5"
    assert (segment.data_source.window_start, segment.data_source.window_end) == (-7, -1)
    signal = config.exposure_signal
    assert (
        signal.name == "saw_it" and signal.window_start is None and signal.window_end == "analysis_window_end"
    )
    assert signal.select_expression == "COALESCE(LOGICAL_OR(search_count_all > 0), FALSE)"
    assert config.overrides["start_date"] == dt.date(2026, 9, 11)
    assert config.overrides["enrollment_period"] == 5 and config.overrides["skip"] is True


def test_enrollment_period_resolution(tmp_path):
    hub = write_hub(tmp_path, {})
    assert hub.resolve(experiment()).enrollment_period == 7  # (16 - 10) + 1
    assert hub.resolve(experiment(enrollment_end_date=None)).enrollment_period == 14  # proposed
    configured = write_hub(tmp_path, {"jetstream/exp-1.toml": "[experiment]\nenrollment_period = 3\n"})
    assert configured.resolve(experiment()).enrollment_period == 3


# --- templating -----------------------------------------------------------------------------


def test_builtin_helpers_render_like_metric_hub():
    templates = SqlTemplates()
    assert templates.render('{{agg_sum("x")}}') == "COALESCE(SUM(x), 0)"
    assert templates.render("{{ agg_any('a > 1') }}") == "COALESCE(LOGICAL_OR(a > 1), FALSE)"
    histogram = templates.render('{{agg_histogram_mean("payload.h")}}')
    assert histogram.startswith('SAFE_DIVIDE(SUM(CAST(JSON_EXTRACT_SCALAR(payload.h, "$.sum") AS int64))')
    assert "mozfun.hist.extract(payload.h).values" in histogram
    with pytest.raises(ConfigError, match="undefined"):
        templates.render("{{agg_summ('x')}}")


def test_functions_toml_adds_and_overrides_macros(tmp_path):
    hub = write_hub(
        tmp_path,
        {
            "definitions/functions.toml": """
            [functions.agg_max]
            definition = "MAX({select_expr})"
            [functions.agg_sum]
            definition = "SUM({select_expr})"
            """,
            "jetstream/exp-1.toml": """
            [metrics]
            weekly = ["peak"]
            [metrics.peak]
            select_expression = '{{agg_max("active_hours_sum")}} + {{agg_sum("x")}}'
            data_source = "clients_daily"
            statistics = { bootstrap_mean = {} }
            """,
        },
    )
    assert (
        hub.resolve(experiment()).all_metrics()["peak"].select_expression == "MAX(active_hours_sum) + SUM(x)"
    )


def test_parameters_render_into_select_expressions(tmp_path):
    hub = write_hub(
        tmp_path,
        {
            "jetstream/exp-1.toml": """
            [metrics]
            weekly = ["param_metric"]
            [metrics.param_metric]
            select_expression = "COUNTIF(event = '{{ parameters.event }}' AND id = {{ parameters.id }})"
            data_source = "clients_daily"
            statistics = { binomial = {} }
            [parameters.event]
            value = "click"
            [parameters.id]
            distinct_by_branch = true
            value = { treatment = "2" }
            default = { control = "1", treatment = "0" }
            """
        },
    )
    select = hub.resolve(experiment()).all_metrics()["param_metric"].select_expression
    assert select == (
        'COUNTIF(event = \'click\' AND id = CASE e.branch WHEN "control" THEN "1" '
        'WHEN "treatment" THEN "2" END)'
    )
    assert parameter_values({"p": {"default": "d"}}) == {"p": "d"}


def test_from_expression_sees_the_experiment_and_dataset(tmp_path):
    hub = write_hub(
        tmp_path,
        {
            "jetstream/exp-1.toml": """
            [metrics]
            weekly = ["events"]
            [metrics.events]
            select_expression = "COUNT(*)"
            data_source = "glean_events"
            statistics = { sum = {} }
            [data_sources.glean_events]
            from_expression = "(SELECT * FROM `{dataset}.events_stream` WHERE slug = '{{experiment.normandy_slug}}' AND d >= '{{experiment.start_date_str}}')"
            default_dataset = "firefox_desktop"
            experiments_column_type = "none"
            """
        },
    )
    source = hub.resolve(experiment()).all_metrics()["events"].data_source
    assert source.from_expression == (
        "(SELECT * FROM `firefox_desktop.events_stream` WHERE slug = 'exp-1' AND d >= '2026-09-10')"
    )
    assert source.experiments_column_type == "none"
    context = ExperimentContext.of(experiment(), 7)
    assert (
        SqlTemplates().render("{{experiment.slug}} {{experiment.enrollment_period}}", experiment=context)
        == "exp-1 7"
    )


# --- errors ---------------------------------------------------------------------------------


def test_toml_syntax_error_has_file_and_line(tmp_path):
    hub = write_hub(tmp_path, {"jetstream/exp-1.toml": '[metrics]\nweekly = ["a"\nbroken = \n'})
    error = error_of(hub, experiment())
    assert error.file == str(tmp_path / "jetstream" / "exp-1.toml")
    assert error.line == 3 and error.slug == "exp-1"
    assert "TOML syntax error" in error.reason
    assert str(error).startswith(f"{error.file}:3: TOML syntax error")


def test_unknown_metric(tmp_path):
    hub = write_hub(tmp_path, {"jetstream/exp-1.toml": '[metrics]\n\noverall = ["nope"]\n'})
    error = error_of(hub, experiment())
    assert (error.field, error.line) == ("metrics.overall", 3)
    assert "unknown metric 'nope'" in error.reason


def test_unknown_data_source(tmp_path):
    text = '[metrics]\nweekly = ["m"]\n[metrics.m]\nselect_expression = "1"\ndata_source = "nope"\nstatistics = {sum = {}}\n'
    error = error_of(write_hub(tmp_path, {"jetstream/exp-1.toml": text}), experiment())
    assert (error.field, error.line) == ("metrics.m.data_source", 5)
    assert "unknown data source 'nope'" in error.reason
    assert str(error) == f"{error.file}:5: metrics.m.data_source: {error.reason}"


def test_unknown_statistic(tmp_path):
    text = '[metrics]\nweekly = ["active_hours"]\n\n[metrics.active_hours.statistics.bootstrap_meen]\n'
    error = error_of(write_hub(tmp_path, {"jetstream/exp-1.toml": text}), experiment())
    assert (error.field, error.line) == ("metrics.active_hours.statistics.bootstrap_meen", 4)
    assert error.file.endswith("exp-1.toml") and "unknown statistic 'bootstrap_meen'" in error.reason


def test_unknown_statistic_inline(tmp_path):
    text = "[metrics.searched]\nstatistics = { binomal = {} }\n"
    error = error_of(write_hub(tmp_path, {"jetstream/exp-1.toml": text}), experiment())
    assert (error.field, error.line) == ("metrics.searched.statistics.binomal", 2)


def test_bad_period_key(tmp_path):
    error = error_of(
        write_hub(tmp_path, {"jetstream/exp-1.toml": '[metrics]\nweekli = ["active_hours"]\n'}), experiment()
    )
    assert (error.field, error.line) == ("metrics.weekli", 2) and "unknown analysis period" in error.reason


def test_bad_covariate_period(tmp_path):
    text = '[metrics.active_hours.statistics.linear_model_mean]\ncovariate_adjustment = { period = "yesterday" }\n'
    error = error_of(write_hub(tmp_path, {"jetstream/exp-1.toml": text}), experiment())
    assert error.field == "metrics.active_hours.statistics.linear_model_mean.covariate_adjustment.period"
    assert error.line == 2


def test_bad_dates(tmp_path):
    error = error_of(
        write_hub(tmp_path, {"jetstream/exp-1.toml": '[experiment]\nend_date = "2026-13-01"\n'}), experiment()
    )
    assert (error.field, error.line) == ("experiment.end_date", 2) and "YYYY-MM-DD" in error.reason
    # Jetstream does not compare the dates: a start_date override later than the end date is accepted
    later = write_hub(tmp_path, {"jetstream/exp-1.toml": '[experiment]\nstart_date = "2027-01-01"\n'})
    config = later.resolve(experiment())
    assert config.experiment.start_date.isoformat() == "2027-01-01"


def test_metric_without_statistics_in_a_period_list(tmp_path):
    error = error_of(
        write_hub(tmp_path, {"jetstream/exp-1.toml": '[metrics]\nweekly = ["no_stats_metric"]\n'}),
        experiment(),
    )
    assert error.field == "metrics.no_stats_metric.statistics" and error.line == 2
    assert "has no statistics" in error.reason


@pytest.mark.parametrize(
    ("text", "field", "line", "reason"),
    [
        ('[experiment]\nsegments = ["nope"]\n', "experiment.segments", 2, "unknown segment 'nope'"),
        (
            '[experiment.exposure_signal]\nname = "x"\ndata_source = "clients_daily"\n'
            'select_expression = "TRUE"\nwindow_end = "later"\n',
            "experiment.exposure_signal.window_end",
            5,
            "expected a number of days",
        ),
        ("[parameters.p]\nvalue = 3.5\ndistinct_by_branch = true\n", "parameters.p", 1, "per-branch"),
        ("[parameters.p]\nvalue = 3\n", "parameters.p", 1, "needs a string value"),
        (
            '[metrics.active_hours]\ndata_source = "ds"\n[data_sources.ds]\nfrom_expression = "{dataset}.t"\n',
            "data_sources.ds.from_expression",
            4,
            "no default_dataset",
        ),
        ("[experiment]\nenrollment_period = true\n", "experiment.enrollment_period", 2, "expected int"),
    ],
)
def test_other_config_errors_are_located(tmp_path, text, field, line, reason):
    error = error_of(write_hub(tmp_path, {"jetstream/exp-1.toml": text}), experiment())
    assert (error.field, error.line) == (field, line) and reason in error.reason


def test_error_in_definitions_names_the_definitions_file(tmp_path):
    hub = write_hub(
        tmp_path,
        {
            "definitions/firefox_desktop.toml": DEFINITIONS.replace(
                'data_source = "clients_daily"\nfriendly', 'data_source = "gone"\nfriendly'
            )
        },
    )
    error = error_of(hub, experiment())
    assert error.file == str(tmp_path / "definitions" / "firefox_desktop.toml")
    assert error.field == "metrics.active_hours.data_source" and error.line == 4


def test_config_error_survives_pickling():
    error = ConfigError("bad", file="f.toml", field="metrics.x", line=3, slug="s")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.file, copy.field, copy.line, copy.slug, str(copy)) == (
        "f.toml",
        "metrics.x",
        3,
        "s",
        "f.toml:3: metrics.x: bad",
    )


# --- validate-config ------------------------------------------------------------------------


def test_validate_path_accepts_the_sample_and_reports_broken_files(tmp_path):
    assert validate_path(SAMPLE_HUB) == []
    write_hub(tmp_path, {"jetstream/exp-1.toml": '[metrics]\nweekly = ["nope"]\n', "jetstream/ok.toml": ""})
    errors = validate_path(tmp_path)
    assert [(Path(e.file).name, e.field, e.line) for e in errors] == [("exp-1.toml", "metrics.weekly", 2)]
    single = validate_path(tmp_path / "jetstream" / "exp-1.toml")
    assert len(single) == 1 and single[0].slug == "exp-1"
    assert validate_path(tmp_path / "missing.toml")[0].reason == "no such file or folder"


def test_validate_path_checks_definitions_and_outcomes(tmp_path):
    write_hub(
        tmp_path,
        {
            "definitions/firefox_desktop.toml": DEFINITIONS
            + '\n[metrics.broken]\nselect_expression = "{{agg_sum(}}"\ndata_source = "clients_daily"\n',
            "jetstream/outcomes/firefox_desktop/o.toml": 'friendly_name = "O"\ndescription = "d"\n[metrics.x]\ndata_source = "clients_daily"\nselect_expression = "1"\n',
        },
    )
    errors = validate_path(tmp_path)
    # a broken shared definition is refused in the configs that use it, as metric-config-parser does
    assert {(Path(e.file).name, e.field) for e in errors} == {("o.toml", "metrics.x.statistics")}
    checks = {c.file.relative_to(tmp_path.resolve()): c for c in Validator().check_path(tmp_path)}
    (warning,) = checks[Path("definitions/firefox_desktop.toml")].warnings
    assert "metrics.broken.select_expression: Jinja syntax error" in warning


def test_validate_path_resolves_a_loose_file_against_a_metric_hub(tmp_path):
    loose = tmp_path / "my-experiment.toml"
    loose.write_text('[metrics]\nweekly = ["active_hours"]\n[metrics.active_hours.statistics.deciles]\n')
    assert validate_path(loose, metric_hub_path=SAMPLE_HUB) == []
    loose.write_text('[metrics]\nweekly = ["not_in_definitions"]\n')
    (error,) = validate_path(loose, metric_hub_path=SAMPLE_HUB)
    assert error.file == str(loose) and error.line == 2


# --- bundled sample configs -----------------------------------------------------------------


def sample_experiment(slug: str, **changes) -> Experiment:
    return experiment(slug=slug, **changes)


def test_sample_configs_resolve_for_the_sample_experiments():
    hub = MetricHub(SAMPLE_HUB)
    complete = hub.resolve(
        sample_experiment(
            "search-shortcuts-complete",
            start_date=dt.date(2026, 9, 1),
            enrollment_end_date=dt.date(2026, 9, 7),
            end_date=dt.date(2026, 10, 12),
            status="Complete",
        )
    )
    defaults = ["active_hours", "uri_count", "search_count", "days_of_use", "searched"]
    assert names(complete, WEEK) == names(complete, OVERALL) == names(complete, PRE_WEEK) == defaults
    assert stats(complete, WEEK, "searched") == ["binomial"]
    linear = [s for s in complete.all_metrics()["active_hours"].statistics if s.name == "linear_model_mean"]
    assert linear[0].params == {"covariate_adjustment": {"period": "preenrollment_week"}}
    assert complete.config_file.endswith("search-shortcuts-complete.toml") and complete.enrollment_period == 7
    assert [s.name for s in complete.all_metrics()["active_hours"].statistics] == [
        "bootstrap_mean", "linear_model_mean", "always_valid_mean", "empirical_cdf", "kernel_density_estimate",
    ]

    live = hub.resolve(
        sample_experiment(
            "tab-groups-live",
            branches=(Branch("control", 2), Branch("treatment-a"), Branch("treatment-b")),
            start_date=dt.date(2026, 9, 20),
            enrollment_end_date=dt.date(2026, 9, 27),
        )
    )
    assert names(live, WEEK) == defaults and live.enrollment_period == 8

    onboarding = hub.resolve(sample_experiment("onboarding-custom-metrics"))
    assert onboarding.enrollment_period == 7 and [s.name for s in onboarding.segments] == ["heavy_users"]
    assert names(onboarding, WEEK) == defaults + [
        "ad_clicks_per_client",
        "clicked_ad",
        "search_active_days",
        "ad_clicks",
    ]
    assert "unenrolled" in names(onboarding, OVERALL) and "unenrolled" not in names(onboarding, WEEK)
    custom = onboarding.all_metrics()
    assert custom["ad_clicks_per_client"].select_expression == "COALESCE(SUM(ad_clicks_count_all), 0)"
    assert [s.name for s in custom["clicked_ad"].statistics] == ["binomial"]
    assert "'onboarding-custom-metrics'" in custom["unenrolled"].data_source.from_expression
    assert [o.slug for o in onboarding.outcomes] == ["search_engagement"]
    assert onboarding.config_url.endswith("/jetstream/onboarding-custom-metrics.toml")


# --- fingerprints ---------------------------------------------------------------------------


def test_fingerprint_follows_relevant_files_only(tmp_path):
    hub = write_hub(
        tmp_path,
        {
            "jetstream/exp-1.toml": '[experiment]\noutcomes = ["o"]\n',
            "jetstream/other.toml": "",
            "jetstream/outcomes/firefox_desktop/o.toml": 'friendly_name = "O"\ndescription = "d"\n',
            "jetstream/outcomes/firefox_desktop/unused.toml": 'friendly_name = "U"\ndescription = "d"\n',
        },
    )
    before = hub.config_fingerprint("exp-1", "firefox_desktop")
    assert hub.config_fingerprint("exp-1", "firefox_desktop") == before

    (tmp_path / "jetstream" / "other.toml").write_text("[experiment]\nskip = true\n")
    (tmp_path / "jetstream" / "outcomes" / "firefox_desktop" / "unused.toml").write_text("changed")
    assert hub.config_fingerprint("exp-1", "firefox_desktop") == before

    for relative in (
        "jetstream/exp-1.toml",
        "jetstream/defaults/firefox_desktop.toml",
        "definitions/firefox_desktop.toml",
        "jetstream/outcomes/firefox_desktop/o.toml",
    ):
        path = tmp_path / relative
        original = path.read_text()
        path.write_text(original + "\n# edited\n")
        assert hub.config_fingerprint("exp-1", "firefox_desktop") != before, relative
        path.write_text(original)
    assert hub.config_fingerprint("exp-1", "firefox_desktop") == before

    # Experimenter's outcomes count too, and a new file for the experiment changes the fingerprint
    assert hub.config_fingerprint("exp-1", "firefox_desktop", ("unused",)) != before
    new_slug = hub.config_fingerprint("exp-2", "firefox_desktop")
    (tmp_path / "jetstream" / "exp-2.toml").write_text("")
    assert hub.config_fingerprint("exp-2", "firefox_desktop") != new_slug
