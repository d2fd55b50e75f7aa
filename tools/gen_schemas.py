"""Write the JSON Schema of every bus message to ``schemas/`` (Node-RED and Home Assistant users read these).

``python -m tools.gen_schemas`` rewrites them; ``--check`` exits 1 when a committed file is out of date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shared.models import SCHEMA_MODELS

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"


def render() -> dict[str, str]:
    out = {}
    for stem, model in SCHEMA_MODELS.items():
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://batsched.invalid/schemas/{stem}.json"
        out[f"{stem}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    wanted = render()
    if "--check" in argv:
        stale = [
            n for n, text in wanted.items() if not (SCHEMA_DIR / n).exists() or (SCHEMA_DIR / n).read_text() != text
        ]
        extra = sorted(p.name for p in SCHEMA_DIR.glob("*.json") if p.name not in wanted)
        for name in stale + extra:
            print(f"schemas/{name} is out of date: run `make schemas`")
        return 1 if stale or extra else 0
    SCHEMA_DIR.mkdir(exist_ok=True)
    for old in SCHEMA_DIR.glob("*.json"):
        if old.name not in wanted:
            old.unlink()
    for name, text in wanted.items():
        (SCHEMA_DIR / name).write_text(text)
    print(f"wrote {len(wanted)} schemas to schemas/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
