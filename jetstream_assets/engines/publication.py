"""Publishing one step's tables of one experiment all at once.

A step builds its tables under staging names (`_jetstream_staging_<token>__<final name>`: the final name
carries the experiment's table slug, the token is unique per publication) and records the views to
recreate and the tables to drop; the engine swaps everything in when the step succeeded
(`Warehouse.publication`). Staging names never match published naming: they start with `_`, which no
table slug, `enrollments_`, `statistics_` or view prefix does. A process killed mid-step leaves its
staging tables behind; the next publication of the same experiment removes those whose writer is dead
(same host, pid gone) or older than `STAGING_MAX_AGE`, never a live writer's.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from jetstream_assets.core.schema import Schema
from jetstream_assets.engines.processes import process_alive

if TYPE_CHECKING:
    from jetstream_assets.engines.warehouse import QueryLabels, Warehouse

STAGING_PREFIX = "_jetstream_staging_"
# longer than any step runs: a writer this old is dead even when its pid cannot be checked (another host)
STAGING_MAX_AGE = dt.timedelta(hours=24)
_STAGING_NAME = re.compile(rf"^{STAGING_PREFIX}([0-9a-f]{{12}})__(.+)$")


def staging_name(token: str, table: str) -> str:
    return f"{STAGING_PREFIX}{token}__{table}"


def staging_token(name: str) -> str | None:
    """The publication token of a staging table's name; None for any other name."""
    match = _STAGING_NAME.match(name)
    return match.group(1) if match else None


@dataclass(frozen=True)
class StagingWriter:
    """Who builds a publication's staging tables, as the engine records it."""

    token: str
    pid: int
    host: str
    started: dt.datetime  # naive UTC

    @classmethod
    def current(cls) -> StagingWriter:
        return cls(secrets.token_hex(6), os.getpid(), socket.gethostname(),
                   dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))

    def abandoned(self, now: dt.datetime) -> bool:
        if now - self.started > STAGING_MAX_AGE:
            return True
        return self.host == socket.gethostname() and not process_alive(self.pid)


@dataclass
class Staged:
    staging: str
    description: str
    labels: QueryLabels | None


@dataclass
class Publication:
    """The handle a step writes through; the engine swaps its content in when the `with` block ends."""

    warehouse: Warehouse
    dataset: str
    slug: str
    writer: StagingWriter = field(default_factory=StagingWriter.current)
    built: dict[str, Staged] = field(default_factory=dict)  # final name -> its staging table
    views: dict[str, str] = field(default_factory=dict)  # view -> table prefix of its windows
    dropped: list[str] = field(default_factory=list)
    cancelled: bool = False

    def staging(self, table: str) -> str:
        return staging_name(self.writer.token, table)

    def create_table_as(self, table: str, sql: str, *, description: str = "", labels: QueryLabels | None = None) -> int:
        rows = self.warehouse.create_table_as(self.dataset, self.staging(table), sql, description=description,
                                              labels=labels)
        self.built[table] = Staged(self.staging(table), description, labels)
        return rows

    def load_rows(self, table: str, rows: Iterable[dict[str, Any]], schema: Schema, *, description: str = "",
                  labels: QueryLabels | None = None) -> int:
        written = self.warehouse.load_rows(self.dataset, self.staging(table), rows, schema,
                                           description=description, labels=labels)
        self.built[table] = Staged(self.staging(table), description, labels)
        return written

    def discard(self, table: str) -> None:
        """Drop a staged table now (a scratch table): it is not published."""
        self.warehouse.drop_tables(self.dataset, [self.staging(table)])
        self.built.pop(table, None)

    def create_window_view(self, view: str, table_prefix: str) -> None:
        """(Re)create the view over the published `<table_prefix><n>` tables, after the swap."""
        self.views[view] = table_prefix

    def cancel(self) -> None:
        """Publish nothing when the block ends: the staging tables are dropped, the published state stays."""
        self.cancelled = True

    def drop(self, names: Iterable[str]) -> None:
        """Drop these published tables or views in the swap, unless this publication rebuilds them."""
        self.dropped.extend(n for n in names if n not in self.dropped)

    @property
    def stale(self) -> list[str]:
        """Dropped names this publication does not rebuild (a view recreated after the drop is dropped too:
        with no window table left it must go rather than point at dropped tables)."""
        return [n for n in self.dropped if n not in self.built]
