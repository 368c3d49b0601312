"""A results page as one HTML string: header, alert banners, basis/segment selectors and one view per
(basis, segment) holding every outcome's metric cards. Everything is inline (CSS, SVG, a few lines of JS)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from html import escape
from typing import Any

from jetstream_assets.results_page.model import MetricInfo, PageData
from jetstream_assets.results_page.sections import MetricRows, metric_card

SUMMARY_ORDER = ("overall", "days28", "weekly", "daily")  # the first period with rows is the summary
CHECK_TITLES = {
    "sample_ratio": "Sample ratio mismatch",
    "enrollment_volume": "Low enrollment",
    "unenrollment_rate": "High unenrollment",
    "statistics_completeness": "Incomplete statistics",
    "analysis_errors": "Errors in the analysis",
    "export_contract": "Export contract",
}

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1000px;padding:1em;color:#1f2328}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #d0d7de;margin-top:1.6em} h3{margin:.2em 0}
h3 code{font-size:.75em;color:#656d76} .description{margin:.2em 0 .6em;color:#424a53}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:.2em 1em} dl.facts dt{font-weight:600}
.banner{padding:.6em .9em;border-radius:6px;margin:.5em 0;border:1px solid}
.banner.error{background:#ffebe9;border-color:#ff8182} .banner.warn{background:#fff8c5;border-color:#d4a72c}
.banner small{display:block;color:#424a53;margin-top:.2em}
.controls{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #d0d7de;z-index:1}
.controls label{margin-right:1.2em}
article.metric{border:1px solid #d0d7de;border-radius:6px;padding:.6em .9em;margin:.8em 0}
figure{margin:.6em 0} figcaption{font-weight:600;color:#424a53;margin-bottom:.2em}
svg text{font-size:11px;fill:#424a53} svg .label{text-anchor:end} svg .tick{text-anchor:middle}
svg .ytick{text-anchor:end} svg .grid{stroke:#eaeef2} svg .zero{stroke:#8c959f;stroke-dasharray:3 3}
.row .ci{stroke-width:3;stroke:#8c959f} .row .pt{fill:#8c959f}
.row.good .ci{stroke:#1a7f37} .row.good .pt{fill:#1a7f37} .row.bad .ci{stroke:#cf222e} .row.bad .pt{fill:#cf222e}
svg .missing{fill:#9a6700;font-style:italic}
.series .line{fill:none;stroke-width:2} .series .band{opacity:.18;stroke:none}
.c0{--c:#0969da}.c1{--c:#bf3989}.c2{--c:#1a7f37}.c3{--c:#9a6700}.c4{--c:#8250df}.c5{--c:#cf222e}
.c6{--c:#1b7c83}.c7{--c:#bc4c00}.c8{--c:#4d2d00}.c9{--c:#57606a}
.series .line,.series .whisker{stroke:var(--c)} .series .whisker{stroke-width:2} .series .band,.series .pt,.legend rect{fill:var(--c)}
table.means{border-collapse:collapse;margin:.4em 0} table.means td,table.means th{padding:2px 10px;
border-bottom:1px solid #eaeef2;text-align:left} td.num{font-variant-numeric:tabular-nums}
.missing-metric,.missing-interval{color:#9a6700} .no-statistics{font-size:1.1em;padding:1em;background:#f6f8fa}
.legend-key span{display:inline-block;width:.8em;height:.8em;border-radius:50%;margin:0 .3em 0 1em}
"""

SCRIPT = """
(function(){
  var basis=document.getElementById('basis'), segment=document.getElementById('segment');
  function show(){
    document.querySelectorAll('section.view').forEach(function(v){
      v.hidden=!(v.dataset.basis===basis.value && v.dataset.segment===segment.value);
    });
  }
  basis.addEventListener('change',show); segment.addEventListener('change',show); show();
})();
"""


def _date(value: dt.date | None) -> str:
    return value.isoformat() if value else "—"


def _summary_rows(data: PageData) -> tuple[dict[tuple[str, str], tuple[str, list[dict]]], set[str], set[str]]:
    """(basis, segment) -> (label, rows of the summary window), plus the bases and segments present."""
    bases, segments = set(), set()
    summary: dict[tuple[str, str], tuple[str, list[dict]]] = {}
    for suffix in SUMMARY_ORDER:
        by_view: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for r in data.statistics.get(suffix, ()):
            by_view[(r.get("analysis_basis") or "enrollments", r.get("segment") or "all")].append(r)
        for view, rows in by_view.items():
            bases.add(view[0])
            segments.add(view[1])
            if view in summary:
                continue
            latest = max(int(r.get("window_index") or 1) for r in rows)
            window_rows = [r for r in rows if int(r.get("window_index") or 1) == latest]
            label = suffix if suffix == "overall" else f"{suffix} window {latest} (latest)"
            summary[view] = (label, window_rows)
    return summary, bases, segments


def _header(data: PageData, summary) -> str:
    branches = ", ".join(
        f"{escape(b)}{' (reference)' if b == data.reference_branch else ''}" for b in data.branches
    )
    enrolled = []
    for basis in ("enrollments", "exposures"):
        rows = summary.get((basis, "all"), ("", []))[1]
        counts = {r["branch"]: r.get("point") for r in rows if r["metric"] == "identity" and r["statistic"] == "count"}
        if counts:
            enrolled.append(f"{basis}: " + ", ".join(f"{escape(b)} {int(counts.get(b) or 0):,}" for b in data.branches))
    bases = sorted({view[0] for view in summary})
    facts = [
        ("Dates", f"{_date(data.start_date)} to {_date(data.end_date)} (enrollment ended "
                  f"{_date(data.enrollment_end_date)})"),
        ("Branches", branches),
        ("Clients analysed per branch", "<br>".join(enrolled) or "—"),
        ("Analysis bases", ", ".join(bases) or "—"),
    ]
    return (f"<header><h1>{escape(data.slug)}</h1><dl class=facts>"
            + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl></header>")


def _banners(data: PageData) -> str:
    parts = []
    for alert in data.alerts:
        if alert.passed:
            continue
        level = "error" if alert.severity == "ERROR" else "warn"
        title = CHECK_TITLES.get(alert.name, alert.name)
        parts.append(f'<div class="banner {level}" data-check="{escape(alert.name)}" role="alert"><strong>{escape(title)}'
                     f" ({escape(alert.severity)})</strong>: {escape(alert.summary)}"
                     f"<small>{escape(alert.check_description)}</small></div>")
    errors = [e for e in data.errors if e.get("log_level") == "ERROR"]
    if errors and not any(a.name == "analysis_errors" and not a.passed for a in data.alerts):
        parts.append(f'<div class="banner error" data-check="errors" role="alert"><strong>{len(errors)} error(s) '
                     f"logged</strong>: {escape(str(errors[-1].get('message'))[:400])}"
                     "<small>ERROR rows of the errors export (errors/errors_&lt;slug&gt;.json) for this cycle.</small></div>")
    for problem in data.problems:
        parts.append(f'<div class="banner warn" data-check="exports"><strong>Export unreadable</strong>: '
                     f"{escape(problem)}</div>")
    return "".join(parts)


def _no_statistics(data: PageData) -> str:
    if data.skip_reason:
        why = f"the experiment was not analysed: {data.skip_reason}"
    elif any(e.get("log_level") == "ERROR" for e in data.errors):
        last = [e for e in data.errors if e.get("log_level") == "ERROR"][-1]
        why = f"the analysis failed: {last.get('message')}"
    else:
        why = "no analysis window is complete yet (or no client is enrolled)"
    return f'<section class="no-statistics" data-empty="true">No statistics yet: {escape(str(why))}</section>'


def _metric_infos(data: PageData) -> dict[str, MetricInfo]:
    infos = dict(data.metrics)
    for rows in data.statistics.values():
        for r in rows:
            name = r["metric"]
            if name != "identity" and name not in infos:
                infos[name] = MetricInfo(name, name.replace("_", " ").title(), "", True, ())
    return infos


def _groups(data: PageData, infos: dict[str, MetricInfo]) -> list[tuple[str, str, str | None, list[str]]]:
    """(title, description, adjustment, metric names) for each outcome, then the remaining metrics."""
    groups, placed = [], set()
    for o in data.outcomes:
        names = [m for m in o.metrics if m in infos]
        placed.update(names)
        groups.append((o.friendly_name, o.description, o.multiple_testing, names))
    rest = [m for m in infos if m not in placed]
    if rest:
        groups.append(("Other metrics", "", None, rest))
    return groups


def _view(data: PageData, basis: str, segment: str, summary, weekly_index, infos, groups) -> str:
    label, rows = summary.get((basis, segment), ("", []))
    reference = data.reference_branch or (data.branches[0] if data.branches else "")
    by_metric: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_metric[r["metric"]].append(r)
    parts = [f'<section class="view" data-basis="{escape(basis)}" data-segment="{escape(segment)}" hidden>']
    if not rows:
        parts.append("<p>No results for this basis and segment.</p>")
    for title, description, adjustment, names in groups:
        names = [m for m in names if not infos[m].analysis_bases or basis in infos[m].analysis_bases]
        if not names:
            continue
        note = (f" <span class=adjusted>Intervals also shown {escape(adjustment)}-adjusted for the outcome's "
                f"{len(names)} metric(s) × {max(len(data.branches) - 1, 1)} comparison(s).</span>"
                if adjustment else "")
        parts.append(f"<h2>{escape(title)}</h2><p class=description>{escape(description)}{note}</p>")
        for name in names:
            metric_rows = MetricRows(by_metric.get(name, []), weekly_index.get((basis, segment, name), []))
            parts.append(metric_card(infos[name], metric_rows, reference=reference, branches=data.branches,
                                     adjustment=adjustment, errors=data.errors, basis=basis, segment=segment,
                                     summary_label=label))
    parts.append("</section>")
    return "".join(parts)


def _select(name: str, label: str, options: list[str], default: str) -> str:
    items = "".join(f'<option value="{escape(o)}"{" selected" if o == default else ""}>{escape(o)}</option>'
                    for o in options)
    return f'<label>{label} <select id="{name}">{items}</select></label>'


def render_page(data: PageData, *, generated_at: dt.datetime | None = None) -> str:
    summary, bases, segments = _summary_rows(data)
    generated = (generated_at or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    body = [_header(data, summary), _banners(data)]
    if not data.has_statistics:
        body.append(_no_statistics(data))
    else:
        weekly_index: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for r in data.statistics.get("weekly", ()):
            weekly_index[(r.get("analysis_basis") or "enrollments", r.get("segment") or "all", r["metric"])].append(r)
        infos = _metric_infos(data)
        groups = _groups(data, infos)
        base_list = sorted(bases)
        segment_list = ["all", *sorted(s for s in segments if s != "all")]
        body.append('<div class="controls">' + _select("basis", "Analysis basis", base_list, "enrollments")
                    + _select("segment", "Segment", segment_list, "all")
                    + '<span class="legend-key"><span style="background:#1a7f37"></span>significant, good'
                    '<span style="background:#cf222e"></span>significant, bad'
                    '<span style="background:#8c959f"></span>not significant</span></div>')
        for basis in base_list:
            for segment in segment_list:
                body.append(_view(data, basis, segment, summary, weekly_index, infos, groups))
        body.append(f"<script>{SCRIPT}</script>")
    body.append(f"<footer><small>Generated {generated} from the bucket exports of {escape(data.slug)}.</small></footer>")
    return ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'><title>{escape(data.slug)}: results"
            f"</title><style>{CSS}</style></head><body>" + "".join(body) + "</body></html>")
