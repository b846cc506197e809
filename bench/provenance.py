"""Which code a benchmark measured, saved beside its figures.

Figures from two commits (or from a tree with uncommitted changes) are not comparable
without saying so; an A/B run of an old and a new version must be told apart later.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def code_version() -> dict[str, Any]:
    """The commit checked out and the source files changed since it (bench results and
    other untracked outputs aside); ``{"commit": None}`` outside a git checkout."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.rstrip("\n")

    try:
        commit = git("rev-parse", "HEAD")
        changed = [
            line[3:]
            for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
            if not line[3:].startswith("bench/results/")
        ]
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "changed": []}
    return {"commit": commit, "changed": changed}
