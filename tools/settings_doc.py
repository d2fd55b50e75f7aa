"""Every setting, documented from the settings models: ``.env.example`` and the README's configuration table.

    python -m tools.settings_doc           # rewrite both
    python -m tools.settings_doc --check   # exit 1 when either is out of date (a test runs this)

Settings classes are found, not listed: every ``ServiceSettings`` subclass defined in a ``services.<name>.config``
module that exists, plus the shared base. So a new setting shows up in both files on the next run.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
import typing
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from shared.settings import ENV_PREFIX, ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"
SEED_START, SEED_END = "<!-- seed-table:start -->", "<!-- seed-table:end -->"


@dataclass(frozen=True)
class Setting:
    field: str
    env: str
    legacy: tuple[str, ...]
    default: str | None  # None: required
    description: str
    secret: bool
    choices: tuple[str, ...]


def _mentions(annotation: Any, kind: type) -> bool:
    if annotation is kind:
        return True
    return any(_mentions(arg, kind) for arg in typing.get_args(annotation))


def _choices(annotation: Any) -> tuple[str, ...]:
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(str(a) for a in typing.get_args(annotation))
    for arg in typing.get_args(annotation):
        if found := _choices(arg):
            return found
    return ()


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def describe(name: str, info: FieldInfo) -> Setting:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        names = [str(c) for c in alias.choices]
        env, others = names[0], names[1:]
    else:
        env, others = f"{ENV_PREFIX}{name.upper()}", []
    # the bare lower-case name is there for the secret file; upper-case legacy names (the seed app's) are shown
    legacy: list[str] = []
    for n in others:
        if n != name and n.upper() != env.upper() and n.upper() not in {x.upper() for x in legacy}:
            legacy.append(n)
    if info.is_required():
        default = None
    elif info.default_factory is not None:
        default = _show(info.default_factory())  # type: ignore[call-arg]
    else:
        default = _show(None if info.default is PydanticUndefined else info.default)
    return Setting(
        field=name,
        env=env,
        legacy=tuple(legacy),
        default=default,
        description=(info.description or "").strip(),
        secret=_mentions(info.annotation, SecretStr),
        choices=_choices(info.annotation),
    )


def settings_classes() -> dict[str, list[type[ServiceSettings]]]:
    """``{group: [classes]}``: ``all`` for the shared base, then each service with a ``config`` module."""
    import services

    found: dict[str, list[type[ServiceSettings]]] = {"all": [ServiceSettings]}
    for pkg in sorted(pkgutil.iter_modules(services.__path__), key=lambda m: m.name):
        if not pkg.ispkg or importlib.util.find_spec(f"services.{pkg.name}.config") is None:
            continue
        module = importlib.import_module(f"services.{pkg.name}.config")
        classes = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type)
            and issubclass(obj, ServiceSettings)
            and obj is not ServiceSettings
            and obj.__module__ == module.__name__
        ]
        if classes:
            found[pkg.name] = classes
    return found


def collect() -> dict[str, list[Setting]]:
    groups: dict[str, list[Setting]] = {}
    base = set(ServiceSettings.model_fields)
    for group, classes in settings_classes().items():
        seen: dict[str, Setting] = {}
        for cls in classes:
            for name, info in cls.model_fields.items():
                if (group == "all" or name not in base) and name not in seen:
                    seen[name] = describe(name, info)
        groups[group] = list(seen.values())
    return groups


def _title(group: str) -> str:
    return "Every service" if group == "all" else f"`services/{group}`"


# Where compose.yaml publishes the stack on the host (read by Compose itself, not by the services).
COMPOSE_PORTS = (
    (
        "BATSCHED_MQTT_BIND",
        "127.0.0.1",
        "Host address of plain MQTT and WebSockets: this host only (0.0.0.0: the LAN, in clear text)",
    ),
    ("BATSCHED_MQTT_HOST_PORT", "11883", "Plain MQTT (container 1883); not 1883, which another broker often holds"),
    ("BATSCHED_MQTT_WS_HOST_PORT", "19001", "MQTT over WebSockets, ws:// (container 9001)"),
    ("BATSCHED_MQTTS_BIND", "0.0.0.0", "Host address of the TLS listeners: the LAN"),
    ("BATSCHED_MQTTS_HOST_PORT", "8883", "MQTT over TLS, mqtts:// (container 8883)"),
    ("BATSCHED_MQTT_WSS_HOST_PORT", "8884", "MQTT over secure WebSockets, wss:// (container 8884)"),
    ("BATSCHED_DASHBOARD_BIND", "0.0.0.0", "Host address of the dashboard: the LAN (127.0.0.1: this host only)"),
    ("BATSCHED_DASHBOARD_HOST_PORT", "5000", "Dashboard (container 5000)"),
)


def render_env(groups: dict[str, list[Setting]]) -> str:
    out = [
        "# batsched settings with their defaults. Generated by `python -m tools.settings_doc`: do not edit by hand.",
        "# Copy to .env (Compose reads it into every service) and uncomment what you change.",
        "# Secrets are not set here: each is a file named after the setting in lower case (compose.yaml mounts",
        "# secrets/<file> at /run/secrets/<setting>); outside Compose, point BATSCHED_SECRETS_DIR at such a folder.",
        "",
        "# ---- Docker Compose: host addresses and ports (compose.yaml; the services do not read these)",
    ]
    for name, default, note in COMPOSE_PORTS:
        out += [f"# {note}", f"#{name}={default}"]
    for group, settings in groups.items():
        out += ["", f"# ---- {_title(group).replace('`', '')}"]
        for s in settings:
            note = s.description or s.field
            if s.choices:
                note += f" [{' | '.join(s.choices)}]"
            if s.legacy:
                note += f" (also read from {', '.join(s.legacy)})"
            if s.default is None and not s.secret:
                note = f"REQUIRED: {note}"
            out.append(f"# {note}")
            if s.secret:
                out.append(f"# secret: file `{s.field}` (or the variable {s.env})")
            elif s.default is None:
                out.append(f"#{s.env}=")
            else:
                out.append(f"#{s.env}={s.default}")
    return "\n".join(out) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(groups: dict[str, list[Setting]]) -> str:
    out: list[str] = []
    for group, settings in groups.items():
        out += ["", f"**{_title(group)}**", "", "| variable | default | meaning |", "|---|---|---|"]
        for s in settings:
            if s.secret:
                default = f"secret file `{s.field}`"
            elif s.default is None:
                default = "**required**"
            else:
                default = f"`{s.default}`" if s.default else "unset"
            meaning = s.description or ""
            if s.choices:
                meaning += f" ({', '.join(f'`{c}`' for c in s.choices)})"
            if s.legacy:
                meaning += f"; also {', '.join(f'`{n}`' for n in s.legacy)}"
            out.append(f"| `{s.env}` | {_cell(default)} | {_cell(meaning.strip('; '))} |")
    return "\n".join(out).lstrip("\n")


def render_seed_table() -> str:
    """The original app's variables: which batsched setting each becomes, or what replaces it."""
    from shared.seed_settings import SEED_VARIABLES

    out = ["| seed variable | batsched setting | note |", "|---|---|---|"]
    previous = ""
    for v in SEED_VARIABLES:
        if v.honoured:
            target = ", ".join(f"`{ENV_PREFIX}{f.upper()}`" for f in v.fields)
            note = v.note or "same meaning and unit"
            note, previous = ("as above" if note == previous and v.note else note), note
            if v.extra:
                target += "; " + ", ".join(f"`{ENV_PREFIX}{k.upper()}={val}`" for k, val in v.extra.items())
        else:
            target = "— (not used)"
            note = f"replaced by {v.replaced_by}; one warning line at start ({v.owner})"
        out.append(f"| `{v.name}` | {target} | {_cell(note)} |")
    return "\n".join(out)


def _between(start: str, end: str, body: str, text: str) -> str:
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        raise SystemExit(f"settings_doc: README.md has no {start} … {end} markers")
    return pattern.sub(lambda _m: f"{start}\n{body}\n{end}", text)


def readme_with(table: str, readme: str) -> str:
    return _between(SEED_START, SEED_END, render_seed_table(), _between(START, END, table, readme))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    groups = collect()
    env_text = render_env(groups)
    readme_text = readme_with(render_table(groups), README.read_text())
    if "--check" in argv:
        stale = [p.name for p, t in ((ENV_EXAMPLE, env_text), (README, readme_text)) if p.read_text() != t]
        if stale:
            print(f"out of date: {', '.join(stale)}; run `python -m tools.settings_doc`", file=sys.stderr)
            return 1
        return 0
    ENV_EXAMPLE.write_text(env_text)
    README.write_text(readme_text)
    print(f"wrote .env.example and the README table ({sum(len(s) for s in groups.values())} settings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
