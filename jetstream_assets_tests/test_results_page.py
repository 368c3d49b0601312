"""The results page: what it shows for effects, alerts, missing metrics and experiments without statistics,
that it is self-contained, and the `bucket/results_html` asset on the small sample."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import dagster as dg
import pytest

from jetstream_assets.dagster_defs.results_page_asset import RESULTS_HTML_KEY, results_html
from jetstream_assets.engines.bucket import LocalFolderBucket
from jetstream_assets.experimenter.models import Branch, Experiment
from jetstream_assets.results_page import Alert, PageData, page_data, render_page, results_object
from jetstream_assets.metric_hub.models import Outcome
from jetstream_assets.results_page.model import MetricInfo
from jetstream_assets.sample.designs import DEMO_SRM_SLUG
from jetstream_assets_tests.fixtures_sample import ANALYSIS_ASSETS, analyse, load_snapshot, materializations
from jetstream_assets_tests.small_sample import DATA_END, analysis_resources, write_small_sample


def row(metric, branch, point, lower, upper, *, comparison="relative_uplift", reference="control",
        statistic="mean", ci_width=0.95, window="1", basis="enrollments", segment="all", parameter=None):
    return {"metric": metric, "statistic": statistic, "parameter": parameter, "branch": branch,
            "comparison": comparison, "comparison_to_branch": reference if comparison else None,
            "ci_width": ci_width, "point": point, "lower": lower, "upper": upper, "segment": segment,
            "analysis_basis": basis, "window_index": window}


def info(name, bigger_is_better=True):
    return MetricInfo(name, name.replace("_", " ").title(), f"About {name}.", bigger_is_better, ("enrollments",))


def page(**changes) -> PageData:
    base = dict(slug="exp", branches=("control", "treatment"), reference_branch="control",
                start_date=dt.date(2026, 9, 1), enrollment_end_date=dt.date(2026, 9, 7), end_date=dt.date(2026, 10, 1))
    return PageData(**(base | changes))


def significance_of(html: str, metric: str) -> list[str]:
    card = html.split(f'data-metric="{metric}"')[1].split("</article>")[0]
    return re.findall(r'data-significance="(\w+)"', card)


def test_uplifts_are_coloured_by_significance_and_direction() -> None:
    rows = [
        row("identity", "control", 1000, None, None, comparison=None, statistic="count"),
        row("identity", "treatment", 990, None, None, comparison=None, statistic="count"),
        row("active_hours", "treatment", 0.1, 0.05, 0.15),
        row("crashes", "treatment", 0.1, 0.05, 0.15),
        row("uri_count", "treatment", 0.01, -0.02, 0.04),
        row("active_hours", "control", 5.0, 4.8, 5.2, comparison=None),
        row("active_hours", "treatment", 5.5, 5.3, 5.7, comparison=None),
    ]
    data = page(metrics={"active_hours": info("active_hours"), "crashes": info("crashes", bigger_is_better=False),
                         "uri_count": info("uri_count")},
                statistics={"overall": rows})
    html = render_page(data)
    assert significance_of(html, "active_hours") == ["good"]
    assert significance_of(html, "crashes") == ["bad"]
    assert significance_of(html, "uri_count") == ["none"]
    assert "control (reference)" in html and "control 1,000" in html and "treatment 990" in html
    assert "<td class=num>5.5</td>" in html  # absolute means per branch


def test_a_failed_check_is_a_banner_with_the_checks_description() -> None:
    alerts = [Alert("sample_ratio", "ERROR", False, "control 58.0% (expected 50.0%)", "chi-square of enrollments"),
              Alert("enrollment_volume", "WARN", True, "18,000 clients", "fewer than 1,000 clients")]
    html = render_page(page(alerts=alerts, statistics={"overall": [row("m", "treatment", 0.1, 0.0, 0.2)]}))
    banner = html.split('data-check="sample_ratio"')[1].split("</div>")[0]
    assert "Sample ratio mismatch (ERROR)" in banner and "58.0%" in banner and "chi-square of enrollments" in banner
    assert 'data-check="enrollment_volume"' not in html


def test_a_metric_without_rows_or_interval_shows_as_missing_with_the_logged_reason() -> None:
    errors = [{"experiment": "exp", "metric": "sidebar_clicks", "message": "Binder Error: column not found",
               "log_level": "ERROR", "analysis_basis": "enrollments", "segment": None, "statistic": None},
              {"experiment": "exp", "metric": "ratio", "statistic": "mean", "log_level": "ERROR",
               "message": "the reference branch is all zeros", "analysis_basis": None, "segment": None}]
    data = page(metrics={"sidebar_clicks": info("sidebar_clicks"), "ratio": info("ratio")}, errors=errors,
                statistics={"weekly": [row("ratio", "treatment", None, None, None)]})
    html = render_page(data)
    assert 'data-missing="sidebar_clicks"' in html and "Binder Error: column not found" in html
    assert significance_of(html, "ratio") == ["missing"]
    assert "no interval; the reference branch is all zeros" in html


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (dict(skip_reason="enrollment has not ended"), "not analysed: enrollment has not ended"),
        (dict(errors=[{"log_level": "ERROR", "message": "query failed", "metric": None}]),
         "the analysis failed: query failed"),
        ({}, "no analysis window is complete yet"),
    ],
)
def test_a_page_without_statistics_says_why(changes, reason) -> None:
    html = render_page(page(**changes))
    assert 'data-empty="true"' in html and reason in html
    assert "<script>" not in html  # nothing to select


def test_the_page_is_self_contained_and_selects_basis_and_segment() -> None:
    rows = [row("m", "treatment", 0.1, 0.0, 0.2, basis=b, segment=s)
            for b in ("enrollments", "exposures") for s in ("all", "heavy_users")]
    html = render_page(page(metrics={"m": info("m")}, statistics={"weekly": rows}))
    assert not re.search(r"(src|href)=", html)  # no script, stylesheet or image fetched from anywhere
    assert set(re.findall(r"https?://[^\s\"'<]+", html)) == {"http://www.w3.org/2000/svg"}  # a namespace, not a fetch
    views = re.findall(r'<section class="view" data-basis="(\w+)" data-segment="(\w+)"', html)
    assert sorted(views) == [("enrollments", "all"), ("enrollments", "heavy_users"), ("exposures", "all"),
                             ("exposures", "heavy_users")]
    assert '<select id="basis">' in html and '<select id="segment">' in html


def test_adjusted_intervals_are_labelled_as_such() -> None:
    rows = [row("m", "treatment", 0.1, 0.01, 0.19), row("m", "treatment", 0.1, -0.02, 0.22, ci_width=0.975)]
    outcome = Outcome("o", "Outcome", "Two metrics.", ("m", "n"), multiple_testing="bonferroni")
    html = render_page(page(metrics={"m": info("m"), "n": info("n")}, outcomes=[outcome], statistics={"overall": rows}))
    assert "treatment: bootstrap mean, bonferroni 97.50%" in html
    assert "bonferroni-adjusted for the outcome's 2 metric(s) × 1 comparison(s)" in html
    assert significance_of(html, "m") == ["good", "none"]


def test_weekly_windows_and_distributions_are_drawn() -> None:
    weekly = [row("m", "treatment", 0.01 * w, -0.05, 0.1, window=str(w)) for w in (1, 2, 3)]
    overall = [row("m", "treatment", 0.1, 0.0, 0.2)]
    overall += [row("m", b, q, None, None, comparison=None, statistic="empirical_cdf", parameter=x)
                for b in ("control", "treatment") for x, q in ((1.0, 0.2), (2.0, 0.7), (3.0, 1.0))]
    overall += [row("m", "treatment", 0.05, 0.0, 0.1, statistic="deciles", parameter=q / 10) for q in range(1, 10)]
    html = render_page(page(metrics={"m": info("m")}, statistics={"weekly": weekly, "overall": overall}))
    assert "bootstrap mean: relative uplift vs control by week" in html
    assert "empirical CDF per branch" in html and "deciles: relative uplift vs control by quantile" in html
    assert html.count("<polygon class=\"band\"") == 2  # the weekly band and the deciles band


def test_page_data_reads_the_exports_and_names_an_unreadable_one(tmp_path: Path) -> None:
    bucket = LocalFolderBucket(str(tmp_path))
    experiment = Experiment("my-exp", (Branch("control"), Branch("treatment")), dt.date(2026, 9, 1), None, None, 7,
                            "control")
    bucket.write_json("statistics/statistics_my_exp_weekly.json", [row("m", "treatment", 0.1, 0.0, 0.2)])
    (tmp_path / "metadata").mkdir()
    (tmp_path / "metadata" / "metadata_my_exp.json").write_text("{not json")
    data = page_data(bucket, experiment)
    assert data.statistics["weekly"][0]["metric"] == "m"
    assert len(data.problems) == 1 and "metadata_my_exp.json is not valid JSON" in data.problems[0]
    assert "Export unreadable" in render_page(data)
    assert results_object("my-exp") == "results/my-exp.html"


def test_results_html_asset_publishes_the_page_with_the_srm_banner(tmp_path: Path) -> None:
    sample = write_small_sample(tmp_path / "home")
    resources = analysis_resources(sample.home)
    with dg.instance_for_test() as instance:
        assert load_snapshot(instance, resources).success
        analyse(instance, resources, DEMO_SRM_SLUG, DATA_END, rerun=True)
        result = dg.materialize([*ANALYSIS_ASSETS, results_html], partition_key=DEMO_SRM_SLUG,
                                selection=[RESULTS_HTML_KEY], resources=resources, instance=instance)
    [materialization] = materializations(result)
    uri = materialization.metadata["uri"].value
    assert uri == (sample.bucket / "results" / f"{DEMO_SRM_SLUG}.html").as_uri()
    html = (sample.bucket / "results" / f"{DEMO_SRM_SLUG}.html").read_text()
    assert 'data-check="sample_ratio"' in html and "Experimenter&#x27;s SRM_MISMATCH" in html
    # 600 clients: the small sample is also below the enrollment minimum
    assert materialization.metadata["alerts"].value == "sample_ratio, enrollment_volume"
    assert html.count("<article") >= 5  # every metric of the defaults


def test_a_single_weekly_window_is_drawn_as_an_error_bar() -> None:
    html = render_page(page(metrics={"m": info("m")}, statistics={"weekly": [row("m", "treatment", 0.1, 0.0, 0.2)]}))
    weekly = html.split("by week</figcaption>")[1].split("</figure>")[0]
    assert '<line class="whisker"' in weekly and "polygon" not in weekly
