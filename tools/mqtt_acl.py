"""The broker's access control list, generated from the channel registry (``shared/topics.py``): who may write
and read which topics.

``python -m tools.mqtt_acl`` rewrites ``mosquitto/acl``; ``--check`` exits 1 when the committed file is stale;
``--prefix batsched/site-0042`` renders the ACL for another topic prefix (a fleet home); ``--users-only`` prints
only the user sections, to append to the ACL of a broker you already run (docs/integrations.md, "Use an existing
broker").

Rules (docs/architecture.md): one user per service, named after the service, with its own namespace
``<prefix>/<service>/#`` (state, status, its ``cmd/…`` and ``…/set`` topics, which it must also clear when someone
retained them), the channels it owns elsewhere, and read access to exactly the channels it reads. A channel under
another service's namespace that the service does not own is denied to it. Every service may announce Home
Assistant discovery under its own ``homeassistant/+/<node>_<service>/#`` and read HA's birth message.
Controllers (the dashboard, Home Assistant) may write only setters and commands, never state. A channel may name
services that must never read it (``Channel.denied_to``: the price estimate is never a price, so the executor
cannot even read it). ``readonly`` reads everything under the prefix (MQTT Explorer, browser dashboards, Grafana).
Anonymous clients may read only the broker's uptime: mosquitto.conf admits them on one listener alone, the
healthcheck's, on the broker container's own loopback.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from shared.topics import CHANNELS, HA_STATUS, Channel, below, home_channels

ACL_PATH = Path(__file__).resolve().parents[1] / "mosquitto" / "acl"
ANONYMOUS_READ = ("$SYS/broker/uptime",)  # the broker container's healthcheck, on its loopback listener only


@dataclass(frozen=True)
class User:
    name: str
    doc: str
    service: bool = False  # its topics come from the registry (owner and readers)
    read_all: bool = False  # reads everything under the prefix
    controller: bool = False  # writes setters and commands
    ha: bool = False  # Home Assistant itself: its discovery tree and birth message


USERS: tuple[User, ...] = (
    User("pricing", "Octopus prices: writes its own namespace only", service=True),
    User("forecast", "PV and load forecasts: reads the battery history", service=True),
    User("planner", "plans from prices, forecasts, battery state and its settings", service=True),
    User(
        "executor",
        "the only NetZero poller: also owns battery/state; the watchdog's and accounting's topics are not its",
        service=True,
    ),
    User("watchdog", "watches the executor's heartbeat and restores the baseline when it stops", service=True),
    User("accounting", "daily plan-vs-actual summary, published as executor/daily_summary", service=True),
    User(
        "dashboard", "reads everything, writes only setters and commands", service=True, read_all=True, controller=True
    ),
    User(
        "homeassistant",
        "Home Assistant: its own discovery tree and birth message, reads everything, writes setters and commands",
        read_all=True,
        controller=True,
        ha=True,
    ),
    User("readonly", "MQTT Explorer, Node-RED read-only flows, browser dashboards: reads, never writes", read_all=True),
)
SERVICE_NAMES = frozenset(u.name for u in USERS if u.service)


def _namespace(ch: Channel) -> str:
    return ch.path.split("/", 1)[0]


def owned(service: str) -> list[str]:
    """What a service may write besides its own namespace: the channels it owns elsewhere (a namespace that is no
    service's, like ``battery/``, as a whole)."""
    out: list[str] = []
    for ch in home_channels():
        if ch.owner != service or _namespace(ch) == service:
            continue
        topic = below(_namespace(ch)) if _namespace(ch) not in SERVICE_NAMES else ch.path
        if topic not in out:
            out.append(topic)
    return out


def denied(service: str) -> list[str]:
    """Channels in a service's namespace that another service owns, and channels it must never read."""
    out = [ch.path for ch in home_channels() if _namespace(ch) == service and ch.owner != service]
    return out + [ch.path for ch in home_channels() if service in ch.denied_to and ch.path not in out]


def reads(service: str) -> list[str]:
    return [ch.path for ch in home_channels() if service in ch.readers and _namespace(ch) != service]


def controller_writes() -> list[str]:
    """Setters and commands of every service, as filters: ``+/+/set`` and ``+/cmd/+``."""
    out: list[str] = []
    for ch in sorted(CHANNELS, key=lambda c: c.kind != "set"):
        if ch.scope == "home" and ch.kind in ("set", "command"):
            shape = "/".join(lvl if lvl in ("set", "cmd") else "+" for lvl in ch.path.split("/"))
            if shape not in out:
                out.append(shape)
    return out


def node_prefix(prefix: str) -> str:
    return prefix.replace("/", "_")


def render(prefix: str = "batsched", discovery_prefix: str = "homeassistant", users_only: bool = False) -> str:
    lines = [
        "# Generated by `python -m tools.mqtt_acl` from the channel registry (shared/topics.py): do not edit.",
        "# mosquitto rejects the whole file on an inline comment, so comments are on their own lines.",
        "# Every user has its own password (mosquitto/make-passwords.sh reads the user names from this file).",
        "",
    ]
    if not users_only:  # lines before the first user apply to anonymous clients
        lines += [
            "# anonymous: admitted only on the healthcheck's listener (the broker container's loopback): the uptime",
            *(f"topic read {t}" for t in ANONYMOUS_READ),
            "",
        ]
    node = node_prefix(prefix)
    ha_status = f"{discovery_prefix}/{HA_STATUS.path}"
    for user in USERS:
        lines += [f"# {user.name}: {user.doc}", f"user {user.name}"]
        if user.service:
            lines += [f"topic deny {prefix}/{t}" for t in denied(user.name)]
            lines += [f"topic readwrite {prefix}/{t}" for t in (below(user.name), *owned(user.name))]
            lines += [f"topic read {prefix}/{t}" for t in reads(user.name)]
        if user.read_all:
            lines.append(f"topic read {below(prefix)}")
        if user.controller:
            lines += [f"topic write {prefix}/{t}" for t in controller_writes()]
        if user.ha:
            lines += [f"topic read {below(discovery_prefix)}", f"topic write {ha_status}"]
        elif user.read_all and not user.service:
            lines.append(f"topic read {below(discovery_prefix)}")
        if user.service:
            lines += [f"topic read {ha_status}", f"topic write {below(f'{discovery_prefix}/+/{node}_{user.name}')}"]
        lines.append("")
    return "\n".join(lines)


def user_names() -> list[str]:
    return [u.name for u in USERS]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    prefix = argv[argv.index("--prefix") + 1] if "--prefix" in argv else "batsched"
    text = render(prefix, users_only="--users-only" in argv)
    if "--check" in argv:
        if not ACL_PATH.exists() or ACL_PATH.read_text() != text:
            print("mosquitto/acl is out of date: run `python -m tools.mqtt_acl`", file=sys.stderr)
            return 1
        return 0
    if "--stdout" in argv or "--users-only" in argv or prefix != "batsched":
        sys.stdout.write(text)
        return 0
    ACL_PATH.parent.mkdir(parents=True, exist_ok=True)
    ACL_PATH.write_text(text)
    print(f"wrote {ACL_PATH.relative_to(Path.cwd()) if ACL_PATH.is_relative_to(Path.cwd()) else ACL_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
