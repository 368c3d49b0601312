"""The demo's results pages in a real browser: Debian's chromium driven by Playwright (no browser download).

Marker `browser`, run by its own line in .ci/run, which installs chromium and sets CHROMIUM_EXECUTABLE. With
the variable set, a missing chromium or Playwright fails the tests; without it (a developer's machine, the
main test line) they are skipped. Set RESULTS_SCREENSHOTS=docs/results to refresh the README's screenshots.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from jetstream_assets.results_page import render_page
from jetstream_assets.sample.designs import DEMO_SRM_SLUG
from jetstream_assets_tests.browser_fixtures import DemoHome, screenshot_dir
from jetstream_assets_tests.wide_page import wide_page

pytestmark = pytest.mark.browser

PLANTED = "search-shortcuts-complete"


@pytest.fixture(scope="module")
def demo_pages(demo_home: DemoHome) -> Path:
    """The demo's results pages folder."""
    return demo_home.results


def open_page(chromium, path: Path):
    """The page and the console errors / uncaught exceptions it produced while loading."""
    page = chromium.new_page(viewport={"width": 1100, "height": 900})
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: None if request.url.startswith("file://")
            else problems.append(f"network request to {request.url}"))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, problems


def test_every_demo_page_loads_without_errors_with_every_plot_drawn(chromium, demo_pages: Path, tmp_path: Path):
    pages = sorted(demo_pages.glob("*.html"))
    assert {p.stem for p in pages} >= {PLANTED, DEMO_SRM_SLUG, "tab-groups-live", "onboarding-custom-metrics"}
    for path in pages:
        page, problems = open_page(chromium, path)
        assert problems == [], f"{path.name}: {problems}"
        figures = page.locator("section.view:not([hidden]) figure")
        assert figures.count() > 0, path.name
        for i in range(figures.count()):
            # every figure holds an SVG with at least one mark: a point, an interval or a line
            marks = figures.nth(i).locator("svg circle, svg line.ci, svg polyline")
            assert marks.count() > 0, f"{path.name}: figure {i} ({figures.nth(i).inner_text()[:60]}) is empty"
        page.screenshot(path=str(screenshot_dir(tmp_path, "RESULTS_SCREENSHOTS") / f"{path.stem}.png"), full_page=True)
        page.close()


def test_the_planted_active_hours_effect_is_marked_significant(chromium, demo_pages: Path) -> None:
    page, _ = open_page(chromium, demo_pages / f"{PLANTED}.html")
    card = page.locator('section.view:not([hidden]) article[data-metric="active_hours"]')
    rows = card.locator("figure.summary g.row")
    labels = {rows.nth(i).locator("text.label").text_content(): rows.nth(i).get_attribute("data-significance")
              for i in range(rows.count())}
    assert labels["treatment: bootstrap mean"] == "good"
    assert labels["treatment: always-valid mean"] == "good"
    page.close()


def test_the_srm_experiment_shows_its_banner(chromium, demo_pages: Path) -> None:
    page, _ = open_page(chromium, demo_pages / f"{DEMO_SRM_SLUG}.html")
    banner = page.locator('.banner[data-check="sample_ratio"]')
    assert banner.is_visible()
    assert "Sample ratio mismatch" in banner.inner_text() and "58.0%" in banner.inner_text()
    page.close()


def test_basis_and_segment_are_selectable(chromium, demo_pages: Path) -> None:
    page, _ = open_page(chromium, demo_pages / "onboarding-custom-metrics.html")
    visible = 'section.view:not([hidden])'
    assert page.locator(visible).get_attribute("data-basis") == "enrollments"
    page.select_option("#basis", "exposures")
    page.select_option("#segment", "heavy_users")
    assert page.locator(visible).count() == 1
    assert (page.locator(visible).get_attribute("data-basis"),
            page.locator(visible).get_attribute("data-segment")) == ("exposures", "heavy_users")
    assert "bonferroni 97.50%" in page.locator(visible).inner_text()  # the outcome's adjusted intervals
    page.close()


def test_a_page_of_ten_branches_and_sixty_metrics_opens_with_every_card(chromium, tmp_path: Path) -> None:
    path = tmp_path / "wide.html"
    path.write_text(render_page(wide_page(10, 60, windows=4)))
    page, problems = open_page(chromium, path)
    assert problems == []
    view = page.locator("section.view:not([hidden])")
    assert view.locator("article.metric").count() == 60
    assert view.locator("figure.summary g.row").count() == 60 * 9
    assert view.locator("figure.weekly polyline").count() == 60 * 9
    page.close()
