"""Hypothesis strategies for hostile MQTT payloads: garbage bytes, broken JSON, wrong JSON shapes, mutations of a
valid document (dropped fields, wrong types, NaN/Infinity, extreme numbers, naive/far-future/far-past times,
duplicate/unsorted/overlapping slots, huge arrays), and documents that are valid but hostile (extreme but legal
values, year-9999 horizons, the maximum number of slots)."""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime
from typing import Any

from hypothesis import strategies as st

from tests.reliability.docs import KINDS, TEXT_VALUES

NEST_MARK = "@@fuzz-nest:"
NEST_RE = re.compile(r'"@@fuzz-nest:(\d+)"')
BROKEN_JSON = [
    "{",
    "}",
    "[1,",
    "{'a': 1}",
    '{"a":}',
    '"unterminated',
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "nul",
    "\ufeff{}",
    '{"a": 1}{"b": 2}',
    '{"a": 1,}',
    "\x00",
]
WEIRD_NUMBERS: list[Any] = [
    float("nan"),
    float("inf"),
    float("-inf"),
    1e308,
    -1e308,
    5e-324,
    2**64,
    -(2**63) - 1,
    10**400,
    0,
    -0.0,
    True,
]
WEIRD_VALUES: list[Any] = [None, "", "x" * 10_000, [], {}, [None], {"": None}, "NaN", "1e999", "\u0000", *WEIRD_NUMBERS]
BAD_TIMES = [
    "2025-01-15T16:00:00",  # naive
    "2025-01-15 16:00",  # naive, space
    "9999-12-31T23:59:59Z",  # far future
    "9999-12-31T23:30:00+00:00",
    "0001-01-01T00:00:00Z",  # far past
    "0001-01-01T00:00:00+01:00",  # overflows when converted to UTC
    "9999-12-31T23:30:00-01:00",
    "1970-01-01T00:00:00Z",
    "2025-02-30T00:00:00Z",  # no such day
    "2025-03-30T01:30:00+00:00",
    "2025-10-26T01:30:00+01:00",  # ambiguous local time as an offset
    "2025-01-15T16:00:00+14:00",
    "2025-01-15T16:00:00-12:00",
    "2025-01-15T16:15:00Z",  # off the half-hour grid
    "2025-01-15T16:00:00.000001Z",
    "yesterday",
    "",
    "1736956800",  # epoch seconds as text
]
# Valid but hostile values for numeric fields (they pass the schema).
HOSTILE_NUMBERS: list[float] = [0.0, -0.0, 1e300, -1e300, 1e-300, 100.0, -100.0, 2.0, -1.0, 99.999999, 1e15]
HOSTILE_TIMES = [
    "9999-12-31T23:00:00Z",
    "0001-01-01T00:00:00Z",
    "1970-01-01T00:00:00Z",
    "2000-01-01T00:00:00Z",
    "2100-06-01T12:00:00Z",
    "2199-12-31T23:00:00Z",
]


def _is_time_key(key: str) -> bool:
    return key in {"start", "end", "until", "date"} or key.endswith(("_at", "_until", "_start", "_end", "_from", "_to"))


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        # Only a few items: mutating item 0, 1 or the last is as good as any.
        for i in sorted({0, 1, len(node) - 1} & set(range(len(node)))):
            out += _paths(node[i], (*path, i))
    return out


def _get(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _set(doc: Any, path: tuple, value: Any) -> None:
    _get(doc, path[:-1])[path[-1]] = value


def _lists(doc: Any) -> list[tuple]:
    return [p for p in _paths(doc) if isinstance(_get(doc, p), list) and _get(doc, p)]


def mutate(data: st.DataObject, doc: dict[str, Any]) -> dict[str, Any] | list | Any:
    """One to three random mutations of a valid document."""
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        kind = data.draw(
            st.sampled_from(
                ["drop", "wrong", "time", "number", "dup", "empty", "huge", "reverse", "overlap", "extra", "nest"]
            ),
            label="mutation",
        )
        path = data.draw(st.sampled_from(paths), label="path")
        lists = _lists(doc)
        if kind == "drop":
            parent = _get(doc, path[:-1])
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif parent:
                parent.pop()
        elif kind == "wrong":
            _set(doc, path, copy.deepcopy(data.draw(st.sampled_from(WEIRD_VALUES), label="value")))
        elif kind == "time":
            time_paths = [p for p in paths if isinstance(p[-1], str) and _is_time_key(p[-1])] or paths
            _set(doc, data.draw(st.sampled_from(time_paths)), data.draw(st.sampled_from(BAD_TIMES), label="time"))
        elif kind == "number":
            num_paths = [p for p in paths if isinstance(_get(doc, p), (int, float))] or paths
            _set(doc, data.draw(st.sampled_from(num_paths)), data.draw(st.sampled_from(WEIRD_NUMBERS), label="num"))
        elif kind in {"dup", "empty", "huge", "reverse", "overlap"} and lists:
            lp = data.draw(st.sampled_from(lists), label="list")
            items = _get(doc, lp)
            if kind == "dup":
                i = data.draw(st.integers(0, len(items) - 1))
                items.insert(i, copy.deepcopy(items[i]))
            elif kind == "empty":
                items.clear()
            elif kind == "huge":
                # Up to ~2 MB: some stay under the bus's 1 MB cap (and must be handled), some go over it.
                factor = data.draw(st.sampled_from([30, 100, 300, 2000]), label="factor")
                _set(doc, lp, (items * factor)[: factor * 50])
            elif kind == "reverse":
                items.reverse()
            elif kind == "overlap" and len(items) > 1 and all(isinstance(x, dict) for x in items[:2]):
                items[1] = {**items[1], "start": items[0].get("start"), "end": items[0].get("end")}
        elif kind == "extra":
            parent = _get(doc, path[:-1])
            if isinstance(parent, dict):
                parent[data.draw(st.text(max_size=20), label="key")] = copy.deepcopy(
                    data.draw(st.sampled_from(WEIRD_VALUES))
                )
        elif kind == "nest":
            # Expanded by ``encode`` into a deeply nested array (too deep to build as Python lists).
            depth = data.draw(st.sampled_from([10, 200, 5000]), label="depth")
            _set(doc, path, f"{NEST_MARK}{depth}")
    return doc


def hostile_valid(data: st.DataObject, doc: dict[str, Any]) -> dict[str, Any]:
    """Legal but extreme: numbers at odd corners, far-away times, every slot value the same, max-length lists."""
    doc = copy.deepcopy(doc)
    choice = data.draw(st.sampled_from(["numbers", "shift", "maxlen", "horizon"]), label="hostile")
    if choice == "numbers":
        for p in _paths(doc):
            if p and isinstance(_get(doc, p), float) and data.draw(st.booleans()):
                _set(doc, p, data.draw(st.sampled_from(HOSTILE_NUMBERS)))
    elif choice == "maxlen":
        for lp in _lists(doc):
            items = _get(doc, lp)
            if isinstance(items[0], dict) and "start" in items[0]:
                _set(doc, lp, _shifted_series(items, 2000))
    elif choice in {"shift", "horizon"}:
        # Move every time field to one far-away instant (keeps slots 30 min long where possible).
        when = data.draw(st.sampled_from(HOSTILE_TIMES), label="when")
        for p in _paths(doc):
            if p and isinstance(p[-1], str) and _is_time_key(p[-1]) and isinstance(_get(doc, p), str):
                if p[-1] == "date":
                    _set(doc, p, when[:10])
                elif p[-1] in {"end", "slot_end"}:
                    _set(doc, p, when[:14] + "30:00Z")
                elif choice == "shift" or p[-1] == "valid_until":
                    _set(doc, p, when)
        for lp in _lists(doc):
            items = _get(doc, lp)
            if isinstance(items[0], dict) and "start" in items[0]:
                del items[1:]
    return doc


def _shifted_series(items: list[dict], n: int) -> list[dict]:
    from datetime import timedelta

    first = datetime.fromisoformat(items[0]["start"].replace("Z", "+00:00"))
    out = []
    for i in range(n):
        s = first + timedelta(minutes=30 * i)
        e = s + timedelta(minutes=30)
        out.append(
            {
                **items[i % len(items)],
                "start": s.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "end": e.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    return out


def encode(doc: Any) -> bytes:
    try:
        text = json.dumps(doc, allow_nan=True, separators=(",", ":"))
    except (ValueError, RecursionError, OverflowError):
        return b'{"broken": '
    return NEST_RE.sub(lambda m: "[" * int(m.group(1)) + "1" + "]" * int(m.group(1)), text).encode()


def json_payload(data: st.DataObject, kind: str, now: datetime) -> bytes:
    """A hostile payload for a JSON topic of ``kind`` (a key of ``docs.KINDS``)."""
    builder, _model = KINDS[kind]
    category = data.draw(
        st.sampled_from(["mutated"] * 6 + ["hostile"] * 2 + ["garbage", "broken", "shape", "empty", "valid"]),
        label="category",
    )
    if category == "garbage":
        return data.draw(st.binary(max_size=300), label="bytes")
    if category == "broken":
        return data.draw(st.sampled_from(BROKEN_JSON)).encode("utf-8", errors="surrogatepass")
    if category == "shape":
        shape = data.draw(
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                max_leaves=12,
            ),
            label="shape",
        )
        return encode(shape)
    if category == "empty":
        return data.draw(st.sampled_from([b"", b" ", b"\n", b"{}", b"[]", b"null"]))
    if category == "valid":
        return encode(builder(now))
    if category == "hostile":
        return encode(hostile_valid(data, builder(now)))
    return encode(mutate(data, builder(now)))


def text_payload(data: st.DataObject, kind: str) -> bytes:
    """A hostile payload for a plain-text topic (settings, mode, status)."""
    valid = TEXT_VALUES.get(kind, ["on"])
    text = data.draw(
        st.one_of(
            st.sampled_from(valid),
            st.sampled_from(["", " ", "nan", "NaN", "inf", "-inf", "1e999", "-0", "99999999999999999999", "25:61"]),
            st.sampled_from([v.upper() for v in valid] + [f" {v} " for v in valid] + [f'"{v}"' for v in valid]),
            st.text(max_size=40),
            st.just("x" * 200_000),
        ),
        label="text",
    )
    return text.encode("utf-8", errors="surrogatepass")
