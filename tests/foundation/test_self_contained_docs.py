"""Every reference in the code and the docs points into the repository: a user has nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.repo_files import repo_files

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(r"architecture §|mqtt-conventions|apis\.md|reliability\.md|anchors(-mission)?\.md|design/arch")
DOC_PATH = re.compile(r"\bdocs/[a-z_\-]+\.md\b")


def tracked_text_files() -> list[Path]:
    return [ROOT / n for n in repo_files() if n.endswith((".py", ".md", ".yaml", ".sh", ".html", ".js"))]


def test_no_reference_to_documents_outside_the_repository() -> None:
    hits = []
    for path in tracked_text_files():
        if path == Path(__file__):
            continue
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{i}: {line.strip()[:100]}")
    assert hits == []


def test_every_docs_page_named_exists() -> None:
    named = {m for p in tracked_text_files() for m in DOC_PATH.findall(p.read_text(errors="replace"))}
    assert "docs/architecture.md" in named
    assert sorted(n for n in named if not (ROOT / n).exists()) == []
