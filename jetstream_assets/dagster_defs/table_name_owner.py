"""Refuses an experiment whose table name belongs to another one (rule: `analysis.table_names`),
asking the Dagster instance which of them already published results."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import dagster as dg

from jetstream_assets.analysis.logs import context as log_context
from jetstream_assets.analysis.table_names import TableNameClash, table_name_clash
from jetstream_assets.experimenter.models import Experiment


def _published(instance: dg.DagsterInstance) -> set[str]:
    # imported here: analysis_assets imports the experiment step, which imports this module
    from jetstream_assets.dagster_defs.analysis_assets import ENROLLMENTS_KEY

    return instance.get_materialized_partitions(ENROLLMENTS_KEY)


def clash_of(instance: dg.DagsterInstance, slug: str, experiments: Mapping[str, Experiment]) -> TableNameClash | None:
    return table_name_clash(slug, experiments, lambda: _published(instance))


def refuse_shared_table_name(
    instance: dg.DagsterInstance, slug: str, experiments: Mapping[str, Experiment], log: logging.Logger
) -> None:
    """An ERROR row naming both slugs and a failed step when `slug` may not use its table name."""
    clash = clash_of(instance, slug, experiments)
    if clash is not None:
        log.error("%s", clash, extra=log_context(experiment=slug))
        raise dg.Failure(str(clash))
