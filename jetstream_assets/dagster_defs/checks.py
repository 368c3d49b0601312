"""The asset checks of an experiment's analysis, one evaluation per experiment partition.

Each check is an `@asset_check` on the experiment-slug partitions (a preview feature in Dagster 1.13;
tests pin its behaviour). It evaluates what is published in the warehouse and the bucket for
`context.partition_key`, at the analysis date the asset's latest materialization of that partition
recorded, so a normal run evaluates it right after its asset and "Execute" in the UI re-evaluates it
without recomputing anything. A partition with nothing to check (never analysed, or skipped) passes,
with the reason as its description and a `skipped` metadata entry.

Severity, as a user reads it:
- sample ratio mismatch: ERROR. The branches are not comparable, so the results are suspect; they are
  still published (Experimenter shows them next to its own SRM alert), hence not blocking.
- low enrollment, high unenrollment, errors logged in the analysis: WARN. The results are valid but
  weak or partial; a person should look.
- statistics completeness: blocking. A table or view that should exist by the analysis date and does
  not (or rows missing with no logged error to explain them) is an ERROR and the statistics are not
  exported. A metric whose SQL or statistic failed with a logged error is reported at WARN and the other
  metrics' results are published, as Jetstream publishes them, so one bad metric does not hide a whole
  experiment from Experimenter.
- export contract: ERROR and blocking. Every statistics file that should exist, re-read from the
  bucket, validates and holds every window and row of its view; a file Experimenter cannot read must
  not be published.
"""

import contextlib
import datetime as dt
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator

import dagster as dg
from mozilla_nimbus_schemas.jetstream import Statistics

from jetstream_assets.analysis.health import (
    HealthResult,
    analysis_errors,
    enrollment_days_passed,
    enrollment_volume,
    expected_relations,
    export_contract,
    measure_unenrollment,
    metrics_with_logged_errors,
    missing_exported_rows,
    read_window_statistics,
    sample_ratio_mismatch,
    statistics_completeness,
)
from jetstream_assets.analysis.plan import AnalysisPlan, plan_analysis
from jetstream_assets.core.naming import enrollments_table, statistics_object, statistics_view
from jetstream_assets.dagster_defs.analysis_assets import ENROLLMENTS_KEY, STATISTICS_KEY
from jetstream_assets.dagster_defs.export_assets import STATISTICS_JSON_KEY
from jetstream_assets.dagster_defs.partitions import WAREHOUSE_POOL, experiments_partitions
from jetstream_assets.dagster_defs.resources import BucketResource, MetricHubResource, WarehouseResource
from jetstream_assets.dagster_defs.run_times import run_started_at
from jetstream_assets.dagster_defs.skips import ANALYSIS_DATE, REFUSED, SKIPPED
from jetstream_assets.engines.warehouse import QueryLabels, Warehouse
from jetstream_assets.experimenter.store import read_snapshot
from jetstream_assets.metric_hub.models import AnalysisConfig
from jetstream_assets.sql.enrollments import events_table


@dataclass(frozen=True)
class CheckDefinition:
    name: str
    asset: dg.AssetKey
    severity: dg.AssetCheckSeverity
    blocking: bool
    description: str

    def decorator(self):
        """`@asset_check` on the experiment partitions; `partitions_def` on a check is a preview
        feature whose warning would be printed by every process that loads the definitions."""
        decorate = dg.asset_check(
            asset=self.asset, name=self.name, description=self.description, blocking=self.blocking,
            partitions_def=experiments_partitions, pool=WAREHOUSE_POOL,
        )

        def quietly(fn):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", dg.PreviewWarning)
                return decorate(fn)

        return quietly

    def result(self, health: HealthResult) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            passed=health.passed,
            severity=dg.AssetCheckSeverity.WARN if health.warn_only else self.severity,
            description=health.description,
            metadata=health.metadata,
        )

    def nothing_to_check(self, reason: str) -> dg.AssetCheckResult:
        # passed, not failed: nothing published is wrong; the reason is what the UI shows
        return dg.AssetCheckResult(
            passed=True, severity=self.severity, description=f"nothing to check: {reason}",
            metadata={SKIPPED: dg.MetadataValue.text(reason)},
        )


SAMPLE_RATIO = CheckDefinition(
    "sample_ratio", ENROLLMENTS_KEY, dg.AssetCheckSeverity.ERROR, blocking=False,
    description="Experimenter's SRM_MISMATCH: chi-square of enrollments per branch against the branch ratios "
    "fails when p < 0.001 and a branch's share is at least 5 percentage points off.",
)
ENROLLMENT_VOLUME = CheckDefinition(
    "enrollment_volume", ENROLLMENTS_KEY, dg.AssetCheckSeverity.WARN, blocking=False,
    description="Experimenter's ZERO_ENROLLMENT: fewer than 1,000 clients after 3 or more days of enrollment.",
)
UNENROLLMENT_RATE = CheckDefinition(
    "unenrollment_rate", ENROLLMENTS_KEY, dg.AssetCheckSeverity.WARN, blocking=False,
    description="Experimenter's UNENROLLMENT_SPIKE: more than 10% of the enrolled clients sent a Nimbus "
    "unenrollment event.",
)
STATISTICS_COMPLETENESS = CheckDefinition(
    "statistics_completeness", STATISTICS_KEY, dg.AssetCheckSeverity.ERROR, blocking=True,
    description="Every window table and view (metrics and statistics) the experiment's config and dates say "
    "exists by the analysis date is published, with every configured metric, statistic, branch (and ordered "
    "branch pair), segment and basis and no NULL estimates. Something unpublished blocks the export; a metric "
    "that failed with a logged error is reported at WARN.",
)
ANALYSIS_ERRORS = CheckDefinition(
    "analysis_errors", STATISTICS_KEY, dg.AssetCheckSeverity.WARN, blocking=False,
    description="ERROR rows logged to monitoring.logs for the experiment since its latest analysis started.",
)
EXPORT_CONTRACT = CheckDefinition(
    "export_contract", STATISTICS_JSON_KEY, dg.AssetCheckSeverity.ERROR, blocking=True,
    description="Every statistics file that should be published, re-read from the bucket, validates against "
    "mozilla_nimbus_schemas' Statistics and holds every window and row of its view; a view that fails "
    "validation is not published.",
)


@dataclass(frozen=True)
class PublishedAnalysis:
    """An experiment's latest analysis as its asset's materialization recorded it."""

    slug: str
    warehouse: Warehouse
    config: AnalysisConfig
    plan: AnalysisPlan  # every window ready by the analysis date
    started: dt.datetime  # when the run that materialized it started (naive UTC)
    metadata: dict[str, dg.MetadataValue]


def _latest_materialization(instance: dg.DagsterInstance, asset: dg.AssetKey, slug: str):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[slug]), limit=1
    ).records
    return records[0] if records else None


@contextlib.contextmanager
def published_analysis(
    context: dg.AssetCheckExecutionContext, asset: dg.AssetKey, warehouse: WarehouseResource,
    metric_hub: MetricHubResource,
) -> Iterator["PublishedAnalysis | str"]:
    """The partition's latest analysis of `asset`, or why there is nothing to check (a string)."""
    slug = context.partition_key
    wh = warehouse.get_warehouse()
    with wh.session():
        record = _latest_materialization(context.instance, asset, slug)
        metadata = dict(record.asset_materialization.metadata) if record else {}
        if record is None:
            yield f"{asset.to_user_string()} has not been materialized for {slug}"
        elif SKIPPED in metadata:
            yield f"{slug} was skipped: {metadata[SKIPPED].value}"
        elif ANALYSIS_DATE not in metadata:
            yield f"{slug}'s latest {asset.to_user_string()} records no analysis date"
        elif (experiment := read_snapshot(wh, today=dt.datetime.now(dt.timezone.utc).date()).get(slug)) is None:
            yield f"{slug} is not in the Experimenter snapshot"
        else:
            config = metric_hub.get_metric_hub().resolve(experiment)
            date = dt.date.fromisoformat(metadata[ANALYSIS_DATE].value)
            yield PublishedAnalysis(slug, wh, config, plan_analysis(config, date, rerun=True),
                                    run_started_at(context.instance, record.run_id), metadata)


def _enrolled_per_branch(analysis: PublishedAnalysis) -> dict[str, int] | None:
    wh, table = analysis.warehouse, enrollments_table(analysis.slug)
    if not wh.table_exists(wh.dataset, table):
        return None
    frame = wh.query(f"SELECT branch, COUNT(*) AS clients FROM {wh.table_ref(wh.dataset, table)} GROUP BY branch",
                     QueryLabels(experiment=analysis.slug))
    return {str(b): int(n) for b, n in zip(frame["branch"], frame["clients"])}


def _evaluate_enrollments(
    check: CheckDefinition, context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
    metric_hub: MetricHubResource, rule: Callable[[PublishedAnalysis, dict[str, int]], HealthResult],
) -> dg.AssetCheckResult:
    """`rule` on the partition's enrolled clients per branch, read from its enrollments table."""
    with published_analysis(context, ENROLLMENTS_KEY, warehouse, metric_hub) as analysis:
        if isinstance(analysis, str):
            return check.nothing_to_check(analysis)
        enrolled = _enrolled_per_branch(analysis)
        if enrolled is None:
            return check.nothing_to_check(f"{enrollments_table(analysis.slug)} does not exist")
        return check.result(rule(analysis, enrolled))


@SAMPLE_RATIO.decorator()
def sample_ratio(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                 metric_hub: MetricHubResource) -> dg.AssetCheckResult:
    return _evaluate_enrollments(SAMPLE_RATIO, context, warehouse, metric_hub, lambda analysis, enrolled: (
        sample_ratio_mismatch(enrolled, {b.slug: b.ratio for b in analysis.config.experiment.branches})
    ))


@ENROLLMENT_VOLUME.decorator()
def enrollment_volume_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                            metric_hub: MetricHubResource) -> dg.AssetCheckResult:
    def rule(analysis: PublishedAnalysis, enrolled: dict[str, int]) -> HealthResult:
        dates = analysis.plan.dates
        days = enrollment_days_passed(dates.start_date, dates.last_enrollment_date, analysis.plan.date)
        return enrollment_volume(sum(enrolled.values()), days)

    return _evaluate_enrollments(ENROLLMENT_VOLUME, context, warehouse, metric_hub, rule)


@UNENROLLMENT_RATE.decorator()
def unenrollment_rate(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                      metric_hub: MetricHubResource) -> dg.AssetCheckResult:
    return _evaluate_enrollments(UNENROLLMENT_RATE, context, warehouse, metric_hub, lambda analysis, _: (
        measure_unenrollment(analysis.warehouse, analysis.slug, events_table(analysis.config),
                             analysis.plan.dates.start_date, analysis.plan.date)
    ))


@STATISTICS_COMPLETENESS.decorator()
def statistics_completeness_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                                  metric_hub: MetricHubResource) -> dg.AssetCheckResult:
    with published_analysis(context, STATISTICS_KEY, warehouse, metric_hub) as analysis:
        if isinstance(analysis, str):
            return STATISTICS_COMPLETENESS.nothing_to_check(analysis)
        wh, config, plan = analysis.warehouse, analysis.config, analysis.plan
        missing = [name for name in expected_relations(config, plan) if not wh.table_exists(wh.dataset, name)]
        # a metric that failed in any earlier daily run left its window without rows, logged then
        explained = metrics_with_logged_errors(wh, analysis.slug, dt.datetime.combine(plan.dates.start_date, dt.time()))
        windows = read_window_statistics(wh, config, plan)
        return STATISTICS_COMPLETENESS.result(statistics_completeness(config, plan, windows, missing, explained))


@ANALYSIS_ERRORS.decorator()
def analysis_errors_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                          metric_hub: MetricHubResource) -> dg.AssetCheckResult:
    with published_analysis(context, STATISTICS_KEY, warehouse, metric_hub) as analysis:
        if isinstance(analysis, str):
            return ANALYSIS_ERRORS.nothing_to_check(analysis)
        return ANALYSIS_ERRORS.result(analysis_errors(analysis.warehouse, analysis.slug, analysis.started))


@EXPORT_CONTRACT.decorator()
def export_contract_check(context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource,
                          metric_hub: MetricHubResource, bucket: BucketResource) -> dg.AssetCheckResult:
    with published_analysis(context, STATISTICS_JSON_KEY, warehouse, metric_hub) as analysis:
        if isinstance(analysis, str):
            return EXPORT_CONTRACT.nothing_to_check(analysis)
        wh, slug, target = analysis.warehouse, analysis.slug, bucket.get_bucket()
        keys = [statistics_object(slug, p.period.table_suffix) for p in analysis.plan.periods
                if p.windows or wh.table_exists(wh.dataset, statistics_view(slug, p.period.table_suffix))]
        refused = analysis.metadata[REFUSED].value if REFUSED in analysis.metadata else {}
        problems = missing_exported_rows(wh, target, slug, analysis.plan) | refused
        return EXPORT_CONTRACT.result(export_contract(target, keys, Statistics, problems))


ANALYSIS_CHECKS = [
    sample_ratio, enrollment_volume_check, unenrollment_rate,
    statistics_completeness_check, analysis_errors_check, export_contract_check,
]
