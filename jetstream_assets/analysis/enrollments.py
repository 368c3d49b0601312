"""The enrollments table of one experiment: built once, then reused by every later run (Jetstream's cache).

An experiment nobody enrolled in (in its branches) is skipped like Jetstream's other skips
(`NoEnrolledClientsException`): there is nothing to compute statistics from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from jetstream_assets.analysis.logs import context
from jetstream_assets.analysis.plan import AnalysisPlan
from jetstream_assets.analysis.runnable import NoEnrolledClientsException
from jetstream_assets.core.naming import enrollments_table
from jetstream_assets.core.platforms import LEGACY_EVENTS_STREAM, shared_table
from jetstream_assets.engines.warehouse import QueryLabels, Warehouse
from jetstream_assets.metric_hub.models import AnalysisConfig
from jetstream_assets.sql.enrollments import build_enrollments_query


@dataclass(frozen=True)
class EnrollmentsResult:
    table: str
    rows: int
    created: bool
    clients_per_branch: dict[str, int]
    unknown_branches: dict[str, int]


def _branch_counts(warehouse: Warehouse, table: str, slug: str) -> dict[str, int]:
    frame = warehouse.query(
        f"SELECT branch, COUNT(*) AS clients FROM {warehouse.table_ref(warehouse.dataset, table)} "
        "GROUP BY branch ORDER BY branch",
        QueryLabels(experiment=slug),
    )
    return {str(b): int(n) for b, n in zip(frame["branch"], frame["clients"])}


def events_stream_source(warehouse: Warehouse, config: AnalysisConfig, log: logging.Logger) -> str:
    """The experiment's `<app dataset>.events_stream` (in Mozilla's shared project, as mozanalysis reads
    it); a warehouse that has only the single `telemetry.events_stream` of earlier versions is still
    read, with a WARNING naming both tables."""
    table = config.experiment.events_stream
    if warehouse.table_exists(*table.split(".", 1)):
        return shared_table(table)
    if warehouse.table_exists(*LEGACY_EVENTS_STREAM.split(".", 1)):
        slug = config.experiment.slug
        log.warning(
            "%s: %s not found; reading enrollments and exposures from %s instead (move each app's Nimbus "
            "events to its own <app dataset>.events_stream)",
            slug, table, LEGACY_EVENTS_STREAM, extra=context(experiment=slug),
        )
        return LEGACY_EVENTS_STREAM
    return shared_table(table)


def ensure_enrollments(
    warehouse: Warehouse, config: AnalysisConfig, plan: AnalysisPlan, log: logging.Logger, *, recreate: bool = False
) -> EnrollmentsResult:
    slug = config.experiment.slug
    table = enrollments_table(slug)
    existing = warehouse.table_exists(warehouse.dataset, table)
    created = False
    if existing and not recreate:
        counts = _branch_counts(warehouse, table, slug)
    else:
        counts = {}
    # an empty cached table would hide enrollments that arrived later: rebuild it
    if not existing or recreate or not counts:
        sql = build_enrollments_query(
            config, first_enrollment_date=plan.dates.start_date, last_enrollment_date=plan.dates.last_enrollment_date,
            events_table=events_stream_source(warehouse, config, log),
        )
        with warehouse.publication(warehouse.dataset, slug) as pub:
            pub.create_table_as(
                table, sql, description=slug,
                labels=QueryLabels(experiment=slug, destination=f"{warehouse.dataset}.{table}"),
            )
        counts = _branch_counts(warehouse, table, slug)
        created = True
    known = set(config.experiment.branch_slugs)
    unknown = {b: n for b, n in counts.items() if b not in known}
    if unknown:
        log.warning(
            "%s: %d clients enrolled in branches unknown to Experimenter (%s); they are kept in %s "
            "but left out of the statistics",
            slug, sum(unknown.values()), ", ".join(sorted(unknown)), table,
            extra=context(experiment=slug),
        )
    if not any(counts.get(branch) for branch in config.experiment.branch_slugs):
        # the (empty) table stays published: it is rebuilt by the next run, when clients may have enrolled
        detail = f"no enrollments yet in {table}" if not counts else f"{table} has clients only in unknown branches"
        raise NoEnrolledClientsException(slug, f"no enrolled clients: {detail}")
    for branch in config.experiment.branch_slugs:
        if not counts.get(branch):
            log.warning(
                "%s: nobody enrolled in branch %r of %s; its statistics are counts of 0",
                slug, branch, table, extra=context(experiment=slug),
            )
    return EnrollmentsResult(
        table=table,
        rows=sum(counts.values()),
        created=created,
        clients_per_branch={b: counts.get(b, 0) for b in config.experiment.branch_slugs},
        unknown_branches=unknown,
    )
