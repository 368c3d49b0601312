"""The per-metric part of a results page: forest plot of relative uplift, absolute means, weekly uplift over
time and distributions, for one analysis basis and segment."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from jetstream_assets.results_page.model import MetricInfo
from jetstream_assets.results_page.svg import ForestRow, Series, forest_plot, line_chart, number, percent

Row = Mapping[str, Any]

STATISTIC_LABELS = {
    "mean": "bootstrap mean",
    "mean_lm": "linear model mean (CUPED)",
    "binomial": "binomial",
    "always_valid_mean": "always-valid mean",
    "population_ratio": "population ratio",
    "per_client_dau_impact": "per-client DAU impact",
}
QUANTILE_STATISTICS = ("deciles",)
DENSITY_STATISTICS = {"empirical_cdf": "empirical CDF", "kernel_density_estimate": "kernel density estimate"}
MAX_REASON = 400


@dataclass(frozen=True)
class MetricRows:
    """One metric's rows for one basis and segment."""

    summary: list[Row]  # the summary window (overall, or the latest weekly window)
    weekly: list[Row]  # every weekly window


def statistic_label(statistic: str) -> str:
    return STATISTIC_LABELS.get(statistic, DENSITY_STATISTICS.get(statistic, statistic.replace("_", " ")))


def significance(row: Row, bigger_is_better: bool) -> str:
    lower, upper = row.get("lower"), row.get("upper")
    if row.get("point") is None or lower is None or upper is None:
        return "missing"
    if lower > 0:
        return "good" if bigger_is_better else "bad"
    if upper < 0:
        return "bad" if bigger_is_better else "good"
    return "none"


def _interval_statistics(rows: Sequence[Row]) -> list[str]:
    seen: dict[str, None] = {}
    for r in rows:
        if r.get("comparison") and r.get("parameter") is None and r["statistic"] not in QUANTILE_STATISTICS:
            seen.setdefault(r["statistic"])
    return list(seen)


def _widths(rows: Sequence[Row], statistic: str) -> list[float]:
    return sorted({r["ci_width"] for r in rows if r["statistic"] == statistic and r.get("ci_width") is not None})


def _width_label(statistic: str, width: float, base: float, adjustment: str | None) -> str:
    if width > base:
        return f"{statistic_label(statistic)}, {adjustment or 'adjusted'} {width:.2%}"
    return statistic_label(statistic)


def error_reason(errors: Sequence[Row], metric: str, basis: str, segment: str, statistic: str | None = None,
                 *, window: str = "this window") -> str:
    """The errors export's message about this metric (and statistic), or a generic reason."""
    for e in reversed(errors):  # newest first
        if e.get("metric") != metric:
            continue
        if e.get("analysis_basis") not in (None, basis) or e.get("segment") not in (None, segment):
            continue
        if statistic and e.get("statistic") not in (None, statistic):
            continue
        message = str(e.get("message") or e.get("exception") or "")
        return message[:MAX_REASON] + ("…" if len(message) > MAX_REASON else "")
    return (f"no rows in {window} and no error logged for it in this cycle (a metric configured for other "
            "periods only, e.g. overall, has no rows before that period is ready)")


def forest_rows(rows: Sequence[Row], info: MetricInfo, reference: str, branches: Sequence[str],
                adjustment: str | None, errors: Sequence[Row], basis: str, segment: str) -> list[ForestRow]:
    out = []
    for statistic in _interval_statistics(rows):
        widths = _widths(rows, statistic)
        for width in widths:
            for branch in branches:
                if branch == reference:
                    continue
                match = [r for r in rows if r["statistic"] == statistic and r.get("ci_width") == width
                         and r.get("comparison") == "relative_uplift" and r["branch"] == branch
                         and r.get("comparison_to_branch") == reference]
                label = f"{branch}: {_width_label(statistic, width, widths[0], adjustment)}"
                if not match:
                    continue
                row = match[0]
                sig = significance(row, info.bigger_is_better)
                if sig == "missing":
                    tooltip = f"{label}: no interval; {error_reason(errors, info.name, basis, segment, statistic)}"
                else:
                    tooltip = (f"{branch} vs {reference}, {statistic_label(statistic)}: {percent(row['point'])} "
                               f"[{percent(row['lower'])}, {percent(row['upper'])}] at {width:.2%}")
                out.append(ForestRow(label, row.get("point"), row.get("lower"), row.get("upper"), sig, tooltip))
    return out


def means_table(rows: Sequence[Row], branches: Sequence[str]) -> str:
    """Absolute per-branch values (individual rows) of each interval statistic, at its narrowest width."""
    lines = []
    for statistic in _interval_statistics(rows):
        widths = _widths(rows, statistic)
        for branch in branches:
            match = [r for r in rows if r["statistic"] == statistic and r.get("comparison") is None
                     and r["branch"] == branch and r.get("parameter") is None
                     and (not widths or r.get("ci_width") == widths[0])]
            if not match:
                continue
            r = match[0]
            interval = (f"[{number(r['lower'])}, {number(r['upper'])}]"
                        if r.get("lower") is not None and r.get("upper") is not None else "—")
            point = number(r["point"]) if r.get("point") is not None else "missing"
            lines.append(f"<tr><td>{escape(branch)}</td><td>{escape(statistic_label(statistic))}</td>"
                         f"<td class=num>{point}</td><td class=num>{interval}</td></tr>")
    if not lines:
        return ""
    return ("<table class=means><thead><tr><th>branch</th><th>statistic</th><th>value</th><th>interval</th></tr>"
            "</thead><tbody>" + "".join(lines) + "</tbody></table>")


def weekly_charts(rows: Sequence[Row], reference: str, branches: Sequence[str]) -> list[str]:
    """Relative uplift per weekly window, one chart per interval statistic (its narrowest width)."""
    charts = []
    for statistic in _interval_statistics(rows):
        width = _widths(rows, statistic)[0] if _widths(rows, statistic) else None
        series = []
        for i, branch in enumerate(branches):
            if branch == reference:
                continue
            points = sorted(
                (int(r["window_index"]), r.get("point"), r.get("lower"), r.get("upper")) for r in rows
                if r["statistic"] == statistic and r.get("ci_width") == width and r["branch"] == branch
                and r.get("comparison") == "relative_uplift" and r.get("comparison_to_branch") == reference
                and r.get("window_index") is not None
            )
            if points:
                x, y, lo, hi = zip(*points)
                series.append(Series(branch, i, x, y, lo, hi))
        if series:
            charts.append(f"<figure class=weekly><figcaption>{escape(statistic_label(statistic))}: relative uplift "
                          f"vs {escape(reference)} by week</figcaption>"
                          + line_chart(series, x_label="week", integer_x=True) + "</figure>")
    return charts


def distribution_charts(rows: Sequence[Row], reference: str, branches: Sequence[str]) -> list[str]:
    charts = []
    for statistic in QUANTILE_STATISTICS:
        by_branch: dict[str, list] = defaultdict(list)
        for r in rows:
            if (r["statistic"] == statistic and r.get("comparison") == "relative_uplift"
                    and r.get("comparison_to_branch") == reference and r.get("parameter") is not None):
                by_branch[r["branch"]].append((float(r["parameter"]), r.get("point"), r.get("lower"), r.get("upper")))
        series = [Series(b, i, *zip(*sorted(by_branch[b]))) for i, b in enumerate(branches) if by_branch.get(b)]
        if series:
            charts.append(f"<figure class=distribution><figcaption>{escape(statistic)}: relative uplift vs "
                          f"{escape(reference)} by quantile</figcaption>"
                          + line_chart(series, x_label="quantile") + "</figure>")
    for statistic, label in DENSITY_STATISTICS.items():
        by_branch = defaultdict(list)
        for r in rows:
            if r["statistic"] == statistic and r.get("comparison") is None and r.get("parameter") is not None:
                by_branch[r["branch"]].append((float(r["parameter"]), r.get("point")))
        series = [Series(b, i, *zip(*sorted(by_branch[b]))) for i, b in enumerate(branches) if by_branch.get(b)]
        if series:
            charts.append(f"<figure class=distribution><figcaption>{escape(label)} per branch</figcaption>"
                          + line_chart(series, number, zero_line=False) + "</figure>")
    return charts


def metric_card(info: MetricInfo, metric_rows: MetricRows, *, reference: str, branches: Sequence[str],
                adjustment: str | None, errors: Sequence[Row], basis: str, segment: str, summary_label: str) -> str:
    direction = "bigger is better" if info.bigger_is_better else "smaller is better"
    head = (f'<article class="metric" data-metric="{escape(info.name)}"><h3>{escape(info.friendly_name)} '
            f"<code>{escape(info.name)}</code></h3><p class=description>{escape(info.description)} "
            f"<span class=direction>({direction})</span></p>")
    forest = forest_rows(metric_rows.summary, info, reference, branches, adjustment, errors, basis, segment)
    if not metric_rows.summary and not metric_rows.weekly:
        reason = error_reason(errors, info.name, basis, segment, window=summary_label)
        return head + f'<p class="missing-metric" data-missing="{escape(info.name)}">Missing: {escape(reason)}</p></article>'
    parts = [head]
    if forest:
        parts.append(f"<figure class=summary><figcaption>Relative uplift vs {escape(reference)}, {escape(summary_label)}"
                     "</figcaption>" + forest_plot(forest) + "</figure>")
        for row in forest:
            if row.significance == "missing":
                parts.append(f'<p class="missing-interval">{escape(row.tooltip)}</p>')
    parts.append(means_table(metric_rows.summary, branches))
    parts.extend(weekly_charts(metric_rows.weekly, reference, branches))
    parts.extend(distribution_charts(metric_rows.summary, reference, branches))
    parts.append("</article>")
    return "".join(parts)
