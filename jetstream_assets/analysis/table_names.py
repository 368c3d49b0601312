"""One owner per table name: slugs such as `tab_groups_live` and `tab-groups-live` map to the same
tables and bucket files (`core.naming.table_slug`), so only one of them may be analysed.

The owner is, among the snapshot's experiments sharing the name:
1. one that has already published results under it (so published data never changes hands), else
2. the one with the earliest start date (experiments without one last), then the smallest slug.
Ties within rule 1 are broken by rule 2. The others are refused before anything is written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from jetstream_assets.core.naming import table_slug
from jetstream_assets.experimenter.models import Experiment


@dataclass(frozen=True)
class TableNameClash:
    slug: str  # the refused experiment
    owner: str
    table_slug: str
    owner_published: bool

    def __str__(self) -> str:
        why = "it has published results under that name" if self.owner_published else "it started first"
        return (
            f"{self.slug}: not analysed: its tables and bucket files would be named `{self.table_slug}`, "
            f"like those of experiment {self.owner}, which owns them ({why}); "
            f"{self.owner}'s results are left untouched"
        )


def table_name_clash(
    slug: str,
    experiments: Mapping[str, Experiment],
    published: Callable[[], Collection[str]] = frozenset,
) -> TableNameClash | None:
    """Why `slug` may not use its table name, or None when it owns it (or shares it with nobody).

    `published` returns the slugs that already published results; it is called only when the
    snapshot holds another slug with the same table name."""
    name = table_slug(slug)
    sharing = [e for s, e in experiments.items() if table_slug(s) == name]
    if not any(e.slug != slug for e in sharing):
        return None
    done = set(published())
    owner = _owner([e for e in sharing if e.slug in done] or sharing)
    if owner.slug == slug:
        return None
    return TableNameClash(slug=slug, owner=owner.slug, table_slug=name, owner_published=owner.slug in done)


def _owner(candidates: list[Experiment]) -> Experiment:
    return min(candidates, key=lambda e: (e.start_date is None, e.start_date or dt.date.min, e.slug))
