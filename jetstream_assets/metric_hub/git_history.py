"""Where a metric-hub file came from: the last commit that touched it, when its folder is a git work tree."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

_COMMIT_HASH = re.compile(r"[0-9a-f]{40}")
_GIT_TIMEOUT_SECONDS = 10


def last_commit_hash(file: Path) -> str | None:
    """`git log -1 --format=%H -- <file>`; None outside a work tree, for an uncommitted file, or
    without a usable git (the hash is informative metadata, never a reason to fail an analysis)."""
    try:
        done = subprocess.run(
            ["git", "log", "-1", "--format=%H", "--", file.name],
            cwd=file.parent,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and _COMMIT_HASH.fullmatch(commit) else None


def is_git_work_tree(folder: Path) -> bool:
    """Whether `folder` lies inside a git work tree (and git is usable)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--is-inside-work-tree"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and done.stdout.strip() == "true"
