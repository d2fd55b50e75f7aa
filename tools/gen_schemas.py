"""Write the bus contract from the channel registry (``shared/topics.py``): the JSON Schema of every payload to
``schemas/``, the topic tree in the README and the channel table in docs/architecture.md (Node-RED, Home
Assistant and dashboard authors read these).

``python -m tools.gen_schemas`` (``make schemas``) rewrites them; ``--check`` exits 1 when one is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from shared.topics import CHANNELS, HA_DISCOVERY, SCHEMA_MODELS, Channel, Topics, result_topic

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = ROOT / "schemas"
README = ROOT / "README.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
TREE_START, TREE_END = "<!-- topic-tree:start -->", "<!-- topic-tree:end -->"
TABLE_START, TABLE_END = "<!-- channel-table:start -->", "<!-- channel-table:end -->"
DOC_COLUMN = 35


def _published_on(model: type) -> list[str]:
    """Where a model travels, for the schema's ``$comment``."""
    t = Topics()
    out = []
    for ch in CHANNELS:
        if ch.model is model and ch.scope == "home":
            where = ch.path.replace("{", "<").replace("}", ">")
            out.append(f"<prefix>/{where}" + (" (retained)" if ch.retained else ""))
        elif ch.model is model and ch.scope == "fleet":
            out.append(f"<fleet root>/{ch.path.replace('{', '<').replace('}', '>')}")
    if model.__name__ == "CommandResult":
        out.append(f"<command or setter topic>/result, e.g. {result_topic(t.planner_replan)}")
    return out


def render_schemas() -> dict[str, str]:
    out = {}
    for stem, model in SCHEMA_MODELS.items():
        schema: dict[str, Any] = model.model_json_schema(mode="serialization")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"https://batsched.invalid/schemas/{stem}.json"
        if where := _published_on(model):
            schema["$comment"] = "Published on " + "; ".join(where)
        out[f"{stem}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def _line(indent: str, last: bool, name: str, ch: Channel) -> str:
    head = f"{indent}{'└── ' if last else '├── '}{name}"
    return f"{head:<{DOC_COLUMN}}{'R' if ch.retained else ' '}  {ch.doc}".rstrip()


def render_tree(prefix: str = "batsched") -> str:
    """The README's topic tree: a home's channels grouped by their first level, families shown as ``<param>``."""
    home = [c for c in CHANNELS if c.scope == "home"]
    top = [c for c in home if c.path.startswith("{")]
    groups: dict[str, list[Channel]] = {}
    for ch in home:
        if ch not in top:
            groups.setdefault(ch.path.split("/", 1)[0], []).append(ch)
    lines = [f"{prefix}/"]
    lines += [_line("", False, ch.path.replace("{", "<").replace("}", ">"), ch) for ch in top]
    for i, (group, channels) in enumerate(groups.items()):
        last_group = i == len(groups) - 1
        lines.append(f"{'└── ' if last_group else '├── '}{group}/")
        for j, ch in enumerate(channels):
            name = ch.path.split("/", 1)[1].replace("{", "<").replace("}", ">")
            lines.append(_line("    " if last_group else "│   ", j == len(channels) - 1, name, ch))
    discovery = HA_DISCOVERY.path.replace("{node}", f"{prefix}_<service>").replace("{", "<").replace("}", ">")
    lines.append(f"homeassistant/{discovery}   {HA_DISCOVERY.doc}")
    return "\n".join(lines) + "\n"


def render_channel_table() -> str:
    """docs/architecture.md's table of every channel: topic, payload, retained, owner, readers, QoS."""
    roots = {"home": "", "discovery": "<discovery prefix>/", "fleet": "<fleet root>/"}
    rows = ["| topic | payload | R | owner | readers | QoS |", "|---|---|---|---|---|---|"]
    for ch in CHANNELS:
        topic = roots[ch.scope] + ch.path.replace("{", "<").replace("}", ">")
        payload = f"`{ch.model.__name__}`" if ch.model else "text"
        owner = "each service" if ch.owner.startswith("{") else ch.owner
        row = [f"`{topic}`", payload, "R" if ch.retained else "", owner, ", ".join(ch.readers), str(ch.qos)]
        rows.append("| " + " | ".join(row) + " |")
    return "\n".join(rows) + "\n"


def between(start: str, end: str, block: str, text: str) -> str:
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}{end}{tail}"


def readme_with(tree: str, text: str) -> str:
    return between(TREE_START, TREE_END, f"```\n{tree}```\n", text)


def documents() -> dict[Path, str]:
    """The generated parts of the README and docs/architecture.md, in place."""
    return {
        README: readme_with(render_tree(), README.read_text()),
        ARCHITECTURE: between(TABLE_START, TABLE_END, render_channel_table(), ARCHITECTURE.read_text()),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    wanted = render_schemas()
    docs = documents()
    if "--check" in argv:
        stale = [
            n for n, text in wanted.items() if not (SCHEMA_DIR / n).exists() or (SCHEMA_DIR / n).read_text() != text
        ]
        extra = sorted(p.name for p in SCHEMA_DIR.glob("*.json") if p.name not in wanted)
        for name in stale + extra:
            print(f"schemas/{name} is out of date: run `make schemas`")
        stale_docs = [p for p, text in docs.items() if p.read_text() != text]
        for path in stale_docs:
            print(f"{path.relative_to(ROOT)}: a generated table is out of date: run `make schemas`")
        return 1 if stale or extra or stale_docs else 0
    SCHEMA_DIR.mkdir(exist_ok=True)
    for old in SCHEMA_DIR.glob("*.json"):
        if old.name not in wanted:
            old.unlink()
    for name, text in wanted.items():
        (SCHEMA_DIR / name).write_text(text)
    for path, text in docs.items():
        path.write_text(text)
    print(f"wrote {len(wanted)} schemas to schemas/, the README's topic tree and docs/architecture.md's channel table")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
