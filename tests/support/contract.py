"""The published JSON Schemas (``schemas/``) checked with a real JSON Schema validator (``jsonschema``, Draft 2020-12)
against every JSON payload the services publish in the tests: the ``probe`` fixture hands what it saw here when a
test ends. A payload a test itself published (valid or hostile on purpose) is not the services' and is skipped."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from shared.topics import CHANNELS, result_topic

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
NOT_JSON_SCHEMA = {"ge", "le", "gt", "lt", "max_length", "min_length", "multiple_of"}  # pydantic's names


def _stem(model: type) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", model.__name__).lower()


@cache
def _routes() -> list[tuple[re.Pattern[str], str]]:
    """(topic pattern, schema stem), longest path first, so ``forecast/pv/today`` is not read as ``forecast/pv``."""
    out = []
    for ch in sorted(CHANNELS, key=lambda c: -len(c.path)):
        if ch.model is None:
            continue
        pattern = re.escape(ch.path)
        for param in ch.params:
            pattern = pattern.replace(re.escape(f"{{{param}}}"), r"[^/]+")
        out.append((re.compile(rf"(^|/){pattern}$"), _stem(ch.model)))
    out.append((re.compile(re.escape(result_topic("")) + "$"), "command_result"))
    return out


@cache
def validator(stem: str) -> Draft202012Validator:
    schema = json.loads((SCHEMA_DIR / f"{stem}.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_for(topic: str) -> str | None:
    return next((stem for pattern, stem in _routes() if pattern.search(topic)), None)


def violations(
    messages: list[tuple[str, bytes]], published_by_tests: set[tuple[str, bytes]], per_schema: int = 20
) -> list[str]:
    """What the validator says about the distinct JSON payloads on channels with a model: per schema the first and
    the last ``per_schema / 2`` (a plan takes ~20 ms to validate and a fast-clock test publishes hundreds)."""
    by_stem: dict[str, list[tuple[str, bytes]]] = {}
    seen: set[tuple[str, bytes]] = set()
    for topic, payload in messages:
        if not payload or (topic, payload) in seen or (topic, payload) in published_by_tests:
            continue
        seen.add((topic, payload))
        if (stem := schema_for(topic)) is not None:
            by_stem.setdefault(stem, []).append((topic, payload))
    problems: list[str] = []
    for stem, found in by_stem.items():
        half = per_schema // 2
        for topic, payload in found if len(found) <= per_schema else found[:half] + found[-half:]:
            problems += _check(stem, topic, payload)
    return problems


def _check(stem: str, topic: str, payload: bytes) -> list[str]:
    try:
        doc: Any = json.loads(payload)
    except ValueError:
        return [f"{topic}: not JSON: {payload[:80]!r}"]
    return [
        f"{topic} ({stem}.json) at {'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message[:200]}"
        for e in validator(stem).iter_errors(doc)
    ]


def foreign_keywords(schema: Any, path: str = "") -> list[str]:
    """Keywords that are pydantic's, not JSON Schema's (a third-party validator would ignore the bound)."""
    found = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in NOT_JSON_SCHEMA and path.rsplit("/", 1)[-1] != "properties":
                found.append(f"{path}/{key}")
            found += foreign_keywords(value, f"{path}/{key}")
    elif isinstance(schema, list):
        for i, item in enumerate(schema):
            found += foreign_keywords(item, f"{path}/{i}")
    return found
