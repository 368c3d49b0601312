"""Collecting a results page's data from the bucket exports (statistics, metadata, errors JSON)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from jetstream_assets.core.naming import errors_object, is_valid_slug, metadata_object, statistics_object, table_slug
from jetstream_assets.core.periods import AnalysisPeriod
from jetstream_assets.engines.bucket import Bucket, BucketError
from jetstream_assets.experimenter.models import Experiment
from jetstream_assets.metric_hub.models import Outcome
from jetstream_assets.results_page.model import Alert, MetricInfo, PageData

RESULTS_FOLDER = "results"


def results_object(slug: str) -> str:
    """`results/<slug>.html` (a slug with characters a file name cannot carry uses the table spelling)."""
    return f"{RESULTS_FOLDER}/{slug if is_valid_slug(slug) else table_slug(slug)}.html"


def _read(bucket: Bucket, key: str, problems: list[str], *, required: bool = True):
    try:
        return bucket.read_json(key)
    except BucketError as e:
        if required or "does not exist" not in str(e):
            problems.append(str(e))
        return None


def page_data(
    bucket: Bucket, experiment: Experiment, *, alerts: Sequence[Alert] = (), skip_reason: str | None = None,
    multiple_testing: Mapping[str, str] | None = None,
) -> PageData:
    """Everything the page of `experiment` shows. A missing or unreadable export does not fail: the page says
    which file and why (`problems`), and shows what the other exports hold. `multiple_testing` maps outcome
    slugs to their adjustment method (the config's `multiple_testing`; the metadata export has no field)."""
    slug = experiment.slug
    data = PageData(
        slug=slug, branches=experiment.branch_slugs, reference_branch=experiment.reference_branch,
        start_date=experiment.start_date, enrollment_end_date=experiment.enrollment_end_date,
        end_date=experiment.end_date, alerts=list(alerts), skip_reason=skip_reason,
    )
    metadata = _read(bucket, metadata_object(slug), data.problems, required=skip_reason is None) or {}
    for name, m in (metadata.get("metrics") or {}).items():
        data.metrics[name] = MetricInfo(
            name, m.get("friendly_name") or name, m.get("description") or "", bool(m.get("bigger_is_better", True)),
            tuple(m.get("analysis_bases") or ()),
        )
    adjusted = multiple_testing or {}
    for o in (metadata.get("outcomes") or {}).values():
        data.outcomes.append(Outcome(o["slug"], o.get("friendly_name") or o["slug"], o.get("description") or "",
                                     tuple(o.get("metrics") or ()), multiple_testing=adjusted.get(o["slug"])))
    for period in AnalysisPeriod:
        if period.is_preenrollment:
            continue  # pre-enrollment windows are covariates, not results
        rows = _read(bucket, statistics_object(slug, period.table_suffix), data.problems, required=False)
        if rows:
            data.statistics[period.table_suffix] = rows
    data.errors = _read(bucket, errors_object(slug), data.problems, required=False) or []
    return data
