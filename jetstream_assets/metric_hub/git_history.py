"""Where a metric-hub file came from: the last commit that touched it, when its folder is a git work tree."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

_COMMIT_HASH = re.compile(r"[0-9a-f]{40}")
_GIT_TIMEOUT_SECONDS = 10


def _git(args: list[str], cwd: Path) -> str | None:
    """git's stdout, stripped; None when git fails or cannot run (git metadata is informative, never a
    reason to fail an analysis)."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=_GIT_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def last_commit_hash(file: Path) -> str | None:
    """`git log -1 --format=%H -- <file>`; None outside a work tree, for an uncommitted file, or without git."""
    commit = _git(["log", "-1", "--format=%H", "--", file.name], file.parent)
    return commit if commit and _COMMIT_HASH.fullmatch(commit) else None


def is_git_work_tree(folder: Path) -> bool:
    """Whether `folder` lies inside a git work tree (and git is usable)."""
    return _git(["rev-parse", "--is-inside-work-tree"], folder) == "true"
