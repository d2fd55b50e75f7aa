"""Home Assistant MQTT discovery payloads: one "batsched" device, per-service entities (docs/integrations.md).

Each service's discovery table names its entities' topics by channel (``shared.topics``). Sent on every connect and
again when Home Assistant announces ``homeassistant/status = online`` (its birth message). Not retained by default
(retained discovery leaves ghost entities); a setting turns retain on.
"""

from __future__ import annotations

import json
import random
import re
import threading
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from shared.bus import Bus
from shared.topics import HA_STATUS, Channel, is_status_topic

SUPPORT_URL = "https://github.com/batsched/batsched"


def _version() -> str:
    try:
        return version("batsched")
    except PackageNotFoundError:
        return "0"


def device_block(bus: Bus) -> dict[str, Any]:
    node = bus.topics.node_prefix
    return {"identifiers": [node], "name": "Battery Scheduler", "manufacturer": "batsched", "model": "batsched"}


def origin_block() -> dict[str, Any]:
    return {"name": "batsched", "sw_version": _version(), "support_url": SUPPORT_URL}


def entity(
    bus: Bus,
    component: str,
    object_id: str,
    name: str,
    state_topic: Channel | str | None,
    **extra: Any,
) -> tuple[str, dict[str, Any]]:
    """A discovery (topic, payload) for one entity owned by ``bus.service``; every ``…_topic`` may be a channel.
    ``state_topic`` None: an entity without state (a button)."""
    node = bus.topics.node_prefix
    state_topic = bus.topics.of(state_topic) if isinstance(state_topic, Channel) else state_topic
    extra = {k: bus.topics.of(v) if isinstance(v, Channel) else v for k, v in extra.items()}
    unique_id = f"{node}_{object_id}"
    payload: dict[str, Any] = {
        "name": name,
        "unique_id": unique_id,
        "default_entity_id": f"{component}.{unique_id}",
        **({"state_topic": state_topic} if state_topic is not None else {}),
        "availability": [{"topic": bus.status_topic}],
        "device": device_block(bus),
        "origin": origin_block(),
        **extra,
    }
    return bus.topics.ha_discovery(component, bus.service, object_id), payload


def register_discovery(bus: Bus, build: Any, with_status: bool = True) -> None:
    """Publish ``build()`` (a list of (topic, payload)) on connect and when HA comes online (with jitter).

    ``with_status`` adds the service's status entity (``status_entity``) first."""
    if not bus.settings.ha_discovery:
        return
    retain = bus.settings.ha_discovery_retain

    def send() -> None:
        for topic, payload in [*([status_entity(bus)] if with_status else []), *build()]:
            bus.publish(topic, payload, retain=retain)

    def on_ha_status(text: str | None) -> None:
        if text == "online":
            threading.Timer(random.uniform(0, 5), send).start()

    bus.on_connect(send)
    bus.subscribe(HA_STATUS, on_ha_status)


# ---------------------------------------------------------------------------------------------------------------
# Service status entity and payload checks (added by the deployment work; additive).

DEVICE_NAME = "Battery Scheduler"
MAX_DISCOVERY_BYTES = 16 * 1024  # HA's recorder drops attributes above 16384 bytes; keep whole configs below it
_ID = re.compile(r"^[A-Za-z0-9_-]+$")
ENERGY_UNITS = {"Wh", "kWh", "MWh", "GWh", "mWh", "MJ", "GJ", "cal", "kcal", "Mcal", "Gcal"}
POWER_UNITS = {"mW", "W", "kW", "MW", "GW", "TW", "BTU/h"}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
# sensor device_class -> (allowed units, allowed state classes); None = any. From Home Assistant core's
# sensor/const.py (DEVICE_CLASS_UNITS, DEVICE_CLASS_STATE_CLASSES), the part our entities can use.
SENSOR_CLASSES: dict[str, tuple[set[str] | None, set[str]]] = {
    "energy": (ENERGY_UNITS, {"total", "total_increasing"}),
    "energy_storage": (ENERGY_UNITS, {"measurement"}),
    "power": (POWER_UNITS, {"measurement"}),
    "battery": ({"%"}, {"measurement"}),
    "monetary": (None, {"total"}),  # unit: an ISO 4217 currency code
    "timestamp": (set(), set()),
    "enum": (set(), set()),
    "duration": ({"d", "h", "min", "s", "ms"}, {"measurement", "total", "total_increasing"}),
}
BINARY_SENSOR_CLASSES = {"battery_charging", "connectivity", "problem", "running", "power", "plug", "safety"}
COMMAND_COMPONENTS = {"select", "switch", "number", "button", "text"}


# What each service does, in a household's words: its connectivity sensor is "<this> service".
SERVICE_NAMES = {
    "pricing": "Prices",
    "forecast": "Solar and usage forecast",
    "planner": "Planner",
    "executor": "Battery control",
    "watchdog": "Watchdog",
    "accounting": "Money accounting",
    "dashboard": "Dashboard",
}


def status_entity(bus: Bus) -> tuple[str, dict[str, Any]]:
    """A "<what it does> service" connectivity sensor on the service's own ``status`` topic (its last will).

    It has no availability: it must show "disconnected" rather than "unavailable" when the service is gone."""
    topic, payload = entity(
        bus,
        "binary_sensor",
        f"{bus.service}_status",
        f"{SERVICE_NAMES.get(bus.service, bus.service.capitalize())} service",
        bus.status_topic,
        device_class="connectivity",
        payload_on="online",
        payload_off="offline",
        entity_category="diagnostic",
    )
    payload.pop("availability")
    return topic, payload


def check_discovery(
    topic: str, payload: dict[str, Any] | bytes | str, discovery_prefix: str = "homeassistant"
) -> list[str]:
    """What Home Assistant would reject or warn about in one discovery message (empty list: fine).

    Checks the fields HA requires in practice (unique_id, device with identifiers, origin, availability), the
    deprecated ``object_id``, sensor device_class / unit / state_class combinations, and the size limit."""
    problems: list[str] = []
    raw = payload if isinstance(payload, bytes) else (payload.encode() if isinstance(payload, str) else None)
    if raw is not None:
        if len(raw) >= MAX_DISCOVERY_BYTES:
            problems.append(f"payload is {len(raw)} bytes (limit {MAX_DISCOVERY_BYTES})")
        try:
            payload = json.loads(raw)
        except ValueError:
            return [*problems, "payload is not JSON"]
    elif len(json.dumps(payload).encode()) >= MAX_DISCOVERY_BYTES:
        problems.append(f"payload is over {MAX_DISCOVERY_BYTES} bytes")
    if not isinstance(payload, dict):
        return [*problems, "payload is not a JSON object"]
    levels = topic.split("/")
    if len(levels) != 5 or levels[0] != discovery_prefix or levels[4] != "config":
        problems.append(f"topic {topic!r} is not {discovery_prefix}/<component>/<node_id>/<object_id>/config")
        component = payload.get("platform", "?")
    else:
        component = levels[1]
        problems += [f"id {lvl!r} has characters outside [A-Za-z0-9_-]" for lvl in levels[2:4] if not _ID.match(lvl)]

    if not payload.get("unique_id"):
        problems.append("no unique_id")
    if "object_id" in payload:
        problems.append("object_id is deprecated (HA 2025.10): use default_entity_id")
    if (dei := payload.get("default_entity_id")) and not str(dei).startswith(f"{component}."):
        problems.append(f"default_entity_id {dei!r} is not in the {component} domain")
    device = payload.get("device")
    if not isinstance(device, dict) or not device.get("identifiers"):
        problems.append("no device with identifiers")
    origin = payload.get("origin")
    if not isinstance(origin, dict) or not origin.get("name"):
        problems.append("no origin with a name")
    name = payload.get("name")
    if isinstance(name, str) and name.lower().startswith(DEVICE_NAME.lower()):
        problems.append(f"name {name!r} repeats the device name")
    is_status = is_status_topic(str(payload.get("state_topic", ""))) and component == "binary_sensor"
    avail = payload.get("availability") or payload.get("availability_topic")
    if not avail and not is_status:
        problems.append("no availability")
    if isinstance(payload.get("availability"), list) and not all(
        isinstance(a, dict) and a.get("topic") for a in payload["availability"]
    ):
        problems.append("availability entries need a topic")

    if component in ("sensor", "binary_sensor", "select", "switch", "number") and not payload.get("state_topic"):
        problems.append(f"{component} without state_topic")
    if component in COMMAND_COMPONENTS and not payload.get("command_topic"):
        problems.append(f"{component} without command_topic")
    if component == "select" and not payload.get("options"):
        problems.append("select without options")
    if component == "binary_sensor" and (dc := payload.get("device_class")) and dc not in BINARY_SENSOR_CLASSES:
        problems.append(f"binary_sensor device_class {dc!r} unknown")
    if component == "sensor":
        problems += _check_sensor_classes(payload)
    return problems


def _check_sensor_classes(payload: dict[str, Any]) -> list[str]:
    problems = []
    dc, sc, unit = payload.get("device_class"), payload.get("state_class"), payload.get("unit_of_measurement")
    if sc is not None and sc not in STATE_CLASSES:
        problems.append(f"state_class {sc!r} unknown")
    if dc is None:
        return problems
    if dc not in SENSOR_CLASSES:
        return [*problems, f"sensor device_class {dc!r} not in the checked table"]
    units, classes = SENSOR_CLASSES[dc]
    if dc == "monetary":
        if not (isinstance(unit, str) and re.fullmatch(r"[A-Z]{3}", unit)):
            problems.append(f"monetary needs an ISO 4217 currency unit, not {unit!r}")
    elif units is not None and (unit or None) is not None and unit not in units:
        problems.append(f"{dc} does not take unit {unit!r}")
    elif units and unit is None:
        problems.append(f"{dc} needs a unit ({', '.join(sorted(units))})")
    if sc is not None and sc not in classes:
        problems.append(f"{dc} does not take state_class {sc!r} (allowed: {', '.join(sorted(classes)) or 'none'})")
    if dc == "enum" and not payload.get("options"):
        problems.append("enum sensor without options")
    return problems
