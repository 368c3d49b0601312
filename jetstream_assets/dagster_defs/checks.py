"""The asset checks of an experiment's analysis: names, severity, blocking, and their results.

Checks are declared in-asset (`check_specs=`) and evaluated by the asset's own step, so each result
belongs to the experiment partition that was analysed (partitioned `@asset_check` is a preview feature).

Severity, as a user reads it:
- sample ratio mismatch: ERROR. The branches are not comparable, so the results are suspect; they are
  still published (Experimenter shows them next to its own SRM alert), hence not blocking.
- low enrollment, high unenrollment, errors logged in the run: WARN. The results are valid but weak
  or partial; a person should look.
- statistics completeness: ERROR, not blocking. A metric whose SQL or statistic failed is missing (and
  logged, and in errors.json); the other metrics' results are valid and are published, as Jetstream
  publishes them, so one bad metric does not hide a whole experiment from Experimenter.
- export contract: ERROR and blocking. A file Experimenter cannot read must not be published.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Sequence

import dagster as dg

from jetstream_assets.analysis.health import HealthResult
from jetstream_assets.dagster_defs.partitions import WAREHOUSE_POOL, experiments_partitions


@dataclass(frozen=True)
class CheckDefinition:
    name: str
    severity: dg.AssetCheckSeverity
    blocking: bool
    description: str

    def spec(self, asset: dg.AssetKey) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(self.name, asset=asset, blocking=self.blocking, description=self.description)

    def result(self, health: HealthResult) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            check_name=self.name,
            passed=health.passed,
            severity=self.severity,
            description=health.description,
            metadata=health.metadata,
        )


SAMPLE_RATIO = CheckDefinition(
    "sample_ratio", dg.AssetCheckSeverity.ERROR, blocking=False,
    description="Experimenter's SRM_MISMATCH: chi-square of enrollments per branch against the branch ratios "
    "fails when p < 0.001 and a branch's share is at least 5 percentage points off.",
)
ENROLLMENT_VOLUME = CheckDefinition(
    "enrollment_volume", dg.AssetCheckSeverity.WARN, blocking=False,
    description="Experimenter's ZERO_ENROLLMENT: fewer than 1,000 clients after 3 or more days of enrollment.",
)
UNENROLLMENT_RATE = CheckDefinition(
    "unenrollment_rate", dg.AssetCheckSeverity.WARN, blocking=False,
    description="Experimenter's UNENROLLMENT_SPIKE: more than 10% of the enrolled clients sent a Nimbus "
    "unenrollment event.",
)
STATISTICS_COMPLETENESS = CheckDefinition(
    "statistics_completeness", dg.AssetCheckSeverity.ERROR, blocking=False,
    description="Every configured metric, statistic, branch (and ordered branch pair), segment and basis has "
    "its rows in each window computed by the run, without NULL estimates.",
)
ANALYSIS_ERRORS = CheckDefinition(
    "analysis_errors", dg.AssetCheckSeverity.WARN, blocking=False,
    description="ERROR rows logged to monitoring.logs for the experiment during this run.",
)
EXPORT_CONTRACT = CheckDefinition(
    "export_contract", dg.AssetCheckSeverity.ERROR, blocking=True,
    description="Every published statistics file, re-read from the bucket, validates against "
    "mozilla_nimbus_schemas' Statistics; a view that fails validation is not published.",
)


def checked_asset(spec: dg.AssetSpec, checks: Sequence[CheckDefinition]):
    """Decorator for an experiment-partitioned asset whose own step evaluates `checks`.

    `@asset(check_specs=)` requires every check result whenever the step succeeds, but a step with
    nothing to do (a skipped experiment, no window ready) yields neither a materialization nor anything
    to check; `can_subset` makes every output optional. The op keeps the name `@asset` would give it,
    so step keys stay `mozanalysis__enrollments` and so on."""
    return dg.multi_asset(
        name="__".join(spec.key.path),
        specs=[spec],
        check_specs=[c.spec(spec.key) for c in checks],
        partitions_def=experiments_partitions,
        can_subset=True,
        pool=WAREHOUSE_POOL,
    )


def run_started_at(context: dg.AssetExecutionContext) -> dt.datetime:
    """When the current run started (naive UTC, as `monitoring.logs` stores timestamps)."""
    record = context.instance.get_run_record_by_id(context.run_id)
    if record.start_time is not None:
        return dt.datetime.fromtimestamp(record.start_time, dt.timezone.utc).replace(tzinfo=None)
    return record.create_timestamp.astimezone(dt.timezone.utc).replace(tzinfo=None)
