"""Every topic is defined once, in the channel registry: a topic written as a string anywhere else in the product
(``services/``, ``shared/``, ``sim/``, ``tools/``) fails here, so renaming a channel cannot silently blank a page
or cut a subscription."""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

from shared.topics import CHANNELS, home_channels

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("services", "shared", "sim", "tools")
REGISTRY = ROOT / "shared" / "topics.py"


def _fragments() -> set[str]:
    """Two consecutive fixed levels of any registered topic (``pricing/import``, ``planner/plan``, ``mode/set``)."""
    out: set[str] = set()
    for ch in [*CHANNELS, *home_channels()]:
        levels = ch.path.split("/")
        for a, b in itertools.pairwise(levels):
            if "{" not in a and "{" not in b:
                out.add(f"{a}/{b}")
    return out


FRAGMENTS = _fragments()
SHAPES = re.compile(r"(^|/)(cmd/|set$|result$)|[^/]/(status|health)$|/#$|^\+/")  # "/health" alone: a web route


def looks_like_topic(text: str) -> bool:
    if "/" not in text or " " in text.strip() or "://" in text:
        return False
    return SHAPES.search(text) is not None or any(re.search(rf"(^|/){re.escape(f)}(/|$)", text) for f in FRAGMENTS)


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def topic_literals(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        is_text = isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        if is_text and looks_like_topic(node.value):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    return found


def test_the_scan_recognises_topics() -> None:
    for topic in (
        "pricing/import/rates",
        "/planner/plan",
        "executor/mode/set",
        "+/cmd/+",
        "fleet/cmd/sync",
        "a/#",
        "x/status",
    ):
        assert looks_like_topic(topic), topic
    for text in ("text/event-stream", "application/json", "/api/now", "https://x/y", "%Y/%m", "data/x.db", "/health"):
        assert not looks_like_topic(text), text


def test_no_topic_is_written_outside_the_registry() -> None:
    files = [p for d in PRODUCT for p in sorted((ROOT / d).rglob("*.py")) if p != REGISTRY]
    assert len(files) > 50
    found = [hit for p in files for hit in topic_literals(p)]
    assert found == [], "topic strings outside shared/topics.py:\n" + "\n".join(found)
