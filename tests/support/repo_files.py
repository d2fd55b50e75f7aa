"""The repository's own files, for the tests that read every one of them.

From git where the checkout has it; otherwise (a copy of the tracked files, as `make test-fresh` runs on a fresh
Debian without git) every file under the root, minus what the run itself makes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_MADE_BY_RUNS = {".venv", ".git", "__pycache__", "node_modules", ".pytest_cache", ".ruff_cache", ".hypothesis", "build"}
_TOP_MADE_BY_RUNS = {"artifacts", "data"}  # the run's outputs and the services' stores, at the root only


def repo_files() -> list[str]:
    """Paths relative to the repository's root, with forward slashes."""
    if shutil.which("git") and (ROOT / ".git").exists():
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        return out.splitlines()
    return sorted(
        p.relative_to(ROOT).as_posix()
        for p in ROOT.rglob("*")
        if p.is_file() and _tracked_kind(p.relative_to(ROOT).parts)
    )


def _tracked_kind(parts: tuple[str, ...]) -> bool:
    made = _MADE_BY_RUNS.intersection(parts) or parts[0] in _TOP_MADE_BY_RUNS
    return not made and not any(part.endswith(".egg-info") for part in parts)
