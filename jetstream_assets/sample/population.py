"""Who is in the sample: client ids, experiment, branch, enrollment day and planted effects."""

from __future__ import annotations

import datetime as dt
import uuid
import zlib
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from jetstream_assets.sample.designs import EFFECT_COLUMNS, UNKNOWN_BRANCH, ExperimentDesign

NOT_ENROLLED = -1


@dataclass(frozen=True)
class Population:
    """One entry per client; days are offsets from the first telemetry date."""

    client_id: np.ndarray  # str, unique
    sample_id: np.ndarray  # int32 in 0..99
    experiment: np.ndarray  # str, None for background clients
    branch: np.ndarray  # str, None for background clients
    enrollment_day: np.ndarray  # int64, NOT_ENROLLED for background clients
    exposure_rate: np.ndarray  # float, 0 for background clients
    unenroll_rate: np.ndarray  # float, 0 for background clients
    multipliers: Mapping[str, np.ndarray]  # EFFECT_COLUMNS -> float, 1.0 unless the branch shifts

    @property
    def size(self) -> int:
        return len(self.client_id)

    @property
    def enrolled(self) -> np.ndarray:
        return self.enrollment_day != NOT_ENROLLED


@dataclass(frozen=True)
class _Block:
    experiment: np.ndarray
    branch: np.ndarray
    enrollment_day: np.ndarray
    exposure_rate: np.ndarray
    unenroll_rate: np.ndarray
    multipliers: dict[str, np.ndarray]


def population_size(designs: Sequence[ExperimentDesign], background_clients: int) -> int:
    return sum(d.n_clients + d.unknown_branch_clients for d in designs) + background_clients


def build_population(
    designs: Sequence[ExperimentDesign],
    *,
    data_start: dt.date,
    data_end: dt.date,
    background_clients: int,
    balance_rank: np.ndarray,
    rng: np.random.Generator,
) -> Population:
    """Experiment clients in design order, then background clients.

    `balance_rank` (one per client, in that order) orders clients so that neighbours are alike;
    branches are balanced along it.
    """
    if len(balance_rank) != population_size(designs, background_clients):
        raise ValueError("balance_rank needs one value per client of the population")
    blocks = []
    offset = 0
    for design in designs:
        n = design.n_clients + design.unknown_branch_clients
        if n:
            rank = balance_rank[offset : offset + design.n_clients]
            blocks.append(
                _experiment_block(
                    design, data_start=data_start, data_end=data_end, rank=rank, rng=rng
                )
            )
        offset += n
    blocks.append(_background_block(background_clients))
    client_id = client_ids(len(balance_rank), rng)
    return Population(
        client_id=client_id,
        sample_id=sample_ids(client_id),
        experiment=np.concatenate([b.experiment for b in blocks]),
        branch=np.concatenate([b.branch for b in blocks]),
        enrollment_day=np.concatenate([b.enrollment_day for b in blocks]),
        exposure_rate=np.concatenate([b.exposure_rate for b in blocks]),
        unenroll_rate=np.concatenate([b.unenroll_rate for b in blocks]),
        multipliers={
            c: np.concatenate([b.multipliers[c] for b in blocks]) for c in EFFECT_COLUMNS
        },
    )


def client_ids(n: int, rng: np.random.Generator) -> np.ndarray:
    """Version-4 UUID strings drawn from the seeded generator (122 random bits: no collisions)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    return np.array([str(uuid.UUID(bytes=row.tobytes())) for row in raw], dtype=object)


def sample_ids(ids: np.ndarray) -> np.ndarray:
    """Telemetry's sample_id: crc32 of the client id, modulo 100."""
    return np.fromiter((zlib.crc32(c.encode()) % 100 for c in ids), dtype=np.int32, count=len(ids))


def balanced_branches(
    ratios: Sequence[float], rank: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Branch index per client, randomised within blocks of clients adjacent in `rank`.

    Blocked randomisation: each block holds the branches in proportion to their ratios, so the
    branches start out alike and the demo's planted effects show up without a chance imbalance
    of heavy users between branches.
    """
    pattern = np.repeat(np.arange(len(ratios)), _block_counts(ratios))
    n_blocks = -(-len(rank) // len(pattern))
    labels = rng.permuted(np.tile(pattern, (n_blocks, 1)), axis=1).ravel()[: len(rank)]
    branch = np.empty(len(rank), dtype=np.int64)
    branch[np.argsort(rank, kind="stable")] = labels
    return branch


def _block_counts(ratios: Sequence[float]) -> np.ndarray:
    """Integer ratios as they are; others rounded to a block of 100 by largest remainders."""
    r = np.asarray(ratios, dtype=float)
    if np.all(r == np.round(r)) and r.sum() <= 100:
        return r.astype(np.int64)
    exact = r / r.sum() * 100
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(counts - exact, kind="stable")[: 100 - counts.sum()]] += 1
    return counts


def _experiment_block(
    design: ExperimentDesign,
    *,
    data_start: dt.date,
    data_end: dt.date,
    rank: np.ndarray,
    rng: np.random.Generator,
) -> _Block:
    first = (design.start_date - data_start).days
    last = (min(design.last_enrollment_date, data_end) - data_start).days
    if first < 0 or first > last:
        raise ValueError(
            f"{design.slug}: enrollment {design.start_date}..{design.last_enrollment_date} "
            f"must start within the telemetry dates {data_start}..{data_end}"
        )
    branch_index = balanced_branches([b.assignment_ratio for b in design.branches], rank, rng)
    branch_slugs = np.array(design.branch_slugs, dtype=object)
    n = design.n_clients + design.unknown_branch_clients
    branch = np.concatenate(
        [branch_slugs[branch_index], np.full(design.unknown_branch_clients, UNKNOWN_BRANCH, object)]
    )
    multipliers = {}
    for column in EFFECT_COLUMNS:
        by_branch = np.array([b.multiplier(column) for b in design.branches])
        multipliers[column] = np.concatenate(
            [by_branch[branch_index], np.ones(design.unknown_branch_clients)]
        )
    return _Block(
        experiment=np.full(n, design.slug, dtype=object),
        branch=branch,
        enrollment_day=rng.integers(first, last + 1, size=n),
        exposure_rate=np.full(n, design.exposure_rate),
        unenroll_rate=np.full(n, design.unenroll_rate),
        multipliers=multipliers,
    )


def _background_block(n: int) -> _Block:
    return _Block(
        experiment=np.full(n, None, dtype=object),
        branch=np.full(n, None, dtype=object),
        enrollment_day=np.full(n, NOT_ENROLLED, dtype=np.int64),
        exposure_rate=np.zeros(n),
        unenroll_rate=np.zeros(n),
        multipliers={c: np.ones(n) for c in EFFECT_COLUMNS},
    )
