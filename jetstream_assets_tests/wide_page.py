"""A synthetic results page of many branches and metrics (the issue's 10 × 60), for the browser test and the
results-page benchmark."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from jetstream_assets.results_page.model import MetricInfo, PageData


def _row(metric: str, branch: str, point: float, comparison: str | None, basis: str, segment: str,
         window: int) -> dict:
    return {"metric": metric, "statistic": "mean", "parameter": None, "branch": branch, "comparison": comparison,
            "comparison_to_branch": "control" if comparison else None, "ci_width": 0.95, "point": point,
            "lower": point - 0.02, "upper": point + 0.02, "segment": segment, "analysis_basis": basis,
            "window_index": str(window)}


def wide_page(branches: int = 10, metrics: int = 60, *, windows: int = 1,
              bases: Sequence[str] = ("enrollments",), segments: Sequence[str] = ("all",)) -> PageData:
    """`branches` branches (the first is the reference `control`), `metrics` bootstrap-mean metrics, each with
    per-branch means and relative uplifts vs control in `windows` weekly windows per basis and segment."""
    names = ("control", *(f"treatment-{i}" for i in range(1, branches)))
    infos = {f"metric_{m}": MetricInfo(f"metric_{m}", f"Metric {m}", f"Synthetic metric {m}.", m % 2 == 0, ())
             for m in range(metrics)}
    rows = []
    for basis in bases:
        for segment in segments:
            for metric in infos:
                for window in range(1, windows + 1):
                    for i, branch in enumerate(names):
                        rows.append(_row(metric, branch, 1.0 + 0.01 * i, None, basis, segment, window))
                        if i:
                            rows.append(_row(metric, branch, 0.01 * (i - 5), "relative_uplift", basis, segment, window))
    return PageData(slug="wide", branches=names, reference_branch="control", start_date=dt.date(2026, 9, 1),
                    metrics=infos, statistics={"weekly": rows})
