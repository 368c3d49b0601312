"""Reproducible random streams: one fixed seed per (experiment, metric, statistic, window), one stream per branch."""

from __future__ import annotations

import hashlib

import numpy as np


def stable_seed(*parts: str | int) -> int:
    """A 63-bit seed from the parts; unlike `hash()` it is the same in every process and Python version."""
    text = "\x1f".join(f"{type(p).__name__}:{p}" for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") >> 1


def branch_rng(seed: int | None, *labels: str) -> np.random.Generator:
    """The random stream of one branch (and sub-label): independent of which other branches exist.

    `seed=None` draws fresh entropy, as mozanalysis does; any int gives the same stream every time.
    """
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng([seed, stable_seed(*labels)])
