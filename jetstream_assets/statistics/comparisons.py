"""Individual and all-pairs comparison rows from per-branch samples (mozanalysis `compare_samples`).

Every branch is the reference in turn (Jetstream PR #2023). Each branch's samples are drawn once and
reused for every reference branch; sample i of the focus branch is paired with sample i of the reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from jetstream_assets.statistics.rows import (
    DIFFERENCE,
    RELATIVE_UPLIFT,
    ReferenceFailure,
    Row,
    StatisticOutput,
    summarize_samples,
)

ALL_ZERO_REFERENCE = "the reference branch is all zeros, relative uplift is undefined"


def individual_rows(
    samples: dict[str, np.ndarray], statistic: str, confidence_interval: float,
    parameters: Sequence[float | None] = (None,),
) -> list[Row]:
    """Per branch (and parameter): point = mean of the samples, lower/upper = percentile interval."""
    rows = []
    for branch, branch_samples in samples.items():
        mean, low, high = summarize_samples(branch_samples, confidence_interval)
        rows.extend(
            Row(statistic, branch, mean[i], low[i], high[i], parameter=p, ci_width=confidence_interval)
            for i, p in enumerate(parameters)
        )
    return rows


def comparison_rows(
    samples: dict[str, np.ndarray], statistic: str, confidence_interval: float,
    parameters: Sequence[float | None] = (None,),
) -> StatisticOutput:
    """`difference` and `relative_uplift` rows for every ordered pair of branches.

    A reference branch whose statistic is identically zero has no relative uplift: it is reported as a
    failure and skipped; the other reference branches are still compared.
    """
    out = StatisticOutput()
    for reference, ref_samples in samples.items():
        if not np.any(ref_samples):
            out.failures.append(ReferenceFailure(reference, ALL_ZERO_REFERENCE))
            continue
        for focus, focus_samples in samples.items():
            if focus == reference:
                continue
            with np.errstate(divide="ignore", invalid="ignore"):
                relative = focus_samples / ref_samples - 1
            for comparison, values in ((DIFFERENCE, focus_samples - ref_samples), (RELATIVE_UPLIFT, relative)):
                mean, low, high = summarize_samples(values, confidence_interval)
                out.rows.extend(
                    Row(statistic, focus, mean[i], low[i], high[i], parameter=p, comparison=comparison,
                        comparison_to_branch=reference, ci_width=confidence_interval)
                    for i, p in enumerate(parameters)
                )
    return out
