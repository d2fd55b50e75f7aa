"""``batsched config``: every effective setting of every service, its value and where it came from.

Sources: ``default``, a ``BATSCHED_…`` variable (or another accepted name), ``secret file <name>``, or ``seed
<NAME>`` (the original app's variable, converted to batsched's unit). Secrets are never printed: only whether
they are set and from where. ``--env FILE`` reads that env file instead of the process environment (the secrets
directory is then the one the file names in ``BATSCHED_SECRETS_DIR``, or the default).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from shared.seed_settings import SeedSettingError, env_names
from shared.settings import ServiceSettings, build_settings, describe_error
from tools.settings_doc import _mentions, settings_classes

HIDDEN = "******"


@dataclass(frozen=True)
class Row:
    group: str
    field: str
    setting: str
    value: Any
    shown: str
    source: str
    secret: bool


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (quotes, ``export`` and comments as dotenv reads them); lines without ``=`` (the seed's
    sample starts with a sentence) are skipped."""
    import logging

    from dotenv import dotenv_values

    logging.getLogger("dotenv.main").setLevel(logging.ERROR)  # it warns about every line that is not KEY=value
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _show(value: Any) -> tuple[Any, str, bool]:
    if isinstance(value, SecretStr):
        return None, "(set)", True
    if isinstance(value, Path):
        value = str(value)
    if hasattr(value, "isoformat"):
        value = value.isoformat()
    if isinstance(value, list):
        value = [v.model_dump() if hasattr(v, "model_dump") else v for v in value]
    if value is None:
        return None, "unset", False
    if isinstance(value, bool):
        return value, "true" if value else "false", False
    text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return value, text, False


def collect(environ: Mapping[str, str]) -> tuple[list[Row], list[dict[str, str]], list[str]]:
    """(rows, seed notes, errors) for every service group, as that service would see ``environ``."""
    rows: list[Row] = []
    notes: list[dict[str, str]] = []
    errors: list[str] = []
    seen_notes: set[str] = set()
    base = set(ServiceSettings.model_fields)
    for group, classes in settings_classes().items():
        done: set[str] = set()
        for cls in classes:
            try:
                settings = build_settings(cls, environ=environ, service=group)
            except SeedSettingError as exc:
                errors.append(f"{group}: {exc}")
                continue
            except ValidationError as exc:
                errors.append(f"{group}: {describe_error(cls, exc, exc.__dict__.get('batsched_resolution'))}")
                continue
            resolution = settings.seed_resolution
            for note in resolution.notes:
                if note.text not in seen_notes:
                    seen_notes.add(note.text)
                    notes.append({"level": note.level, "variable": note.variable, "text": note.text})
            for name in cls.model_fields:
                if name in done or (group != "all" and name in base):
                    continue
                done.add(name)
                value, shown, _ = _show(getattr(settings, name))
                secret = _mentions(cls.model_fields[name].annotation, SecretStr)
                source = str(resolution.sources[name])
                if name == "dashboard_session_secret" and value is None and "short_session_secret" in resolution.flags:
                    shown, source = "(random, kept in the data directory)", "seed FLASK_SECRET_KEY too short"
                rows.append(Row(group, name, env_names(cls, name)[0], value, shown, source, secret))
    return rows, notes, errors


def render_table(rows: list[Row], notes: list[dict[str, str]], errors: list[str]) -> str:
    out: list[str] = []
    width = max((len(r.setting) for r in rows), default=10)
    vwidth = min(max((len(r.shown) for r in rows), default=10), 48)
    group = None
    for r in rows:
        if r.group != group:
            group = r.group
            title = "every service" if group == "all" else f"services/{group}"
            out += ["", f"[{title}]", f"  {'setting':<{width}}  {'value':<{vwidth}}  source"]
        shown = r.shown if len(r.shown) <= vwidth else r.shown[: vwidth - 1] + "…"
        out.append(f"  {r.setting:<{width}}  {shown:<{vwidth}}  {r.source}")
    if notes:
        out += ["", "[the seed's variables]"]
        out += [f"  {'warning' if n['level'] == 'warning' else 'used':<7}  {n['text']}" for n in notes]
    if errors:
        out += ["", "[errors: these services would not start]"]
        out += [f"  {e}" for e in errors]
    return "\n".join(out).lstrip("\n") + "\n"


def main(env_file: Path | None, as_json: bool) -> int:
    environ: Mapping[str, str]
    if env_file is not None:
        try:
            environ = read_env_file(env_file)
        except OSError as exc:
            print(f"batsched config: cannot read {env_file}: {exc}")
            return 2
    else:
        environ = dict(os.environ)
    rows, notes, errors = collect(environ)
    if as_json:
        doc = {
            "source": str(env_file) if env_file else "environment",
            "settings": [
                {
                    "service": r.group,
                    "setting": r.setting,
                    "field": r.field,
                    "value": (HIDDEN if r.shown != "unset" else None) if r.secret else r.value,
                    "set": r.shown != "unset",
                    "source": r.source,
                    "secret": r.secret,
                }
                for r in rows
            ],
            "seed": notes,
            "errors": errors,
        }
        print(json.dumps(doc, indent=2, default=str))
    else:
        print(render_table(rows, notes, errors), end="")
    return 1 if errors else 0
