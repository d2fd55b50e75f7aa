"""Home Assistant MQTT discovery payloads (mqtt-conventions §2): one "batsched" device, per-service entities.

Sent on every connect and again when Home Assistant announces ``homeassistant/status = online``.
Not retained by default (retained discovery leaves ghost entities); a setting turns retain on.
"""

from __future__ import annotations

import random
import threading
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from shared.bus import Bus, Incoming

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
    state_topic: str,
    **extra: Any,
) -> tuple[str, dict[str, Any]]:
    """A discovery (topic, payload) for one entity owned by ``bus.service``."""
    node = bus.topics.node_prefix
    unique_id = f"{node}_{object_id}"
    payload: dict[str, Any] = {
        "name": name,
        "unique_id": unique_id,
        "default_entity_id": f"{component}.{unique_id}",
        "state_topic": state_topic,
        "availability": [{"topic": bus.status_topic}],
        "device": device_block(bus),
        "origin": origin_block(),
        **extra,
    }
    return bus.topics.ha_discovery(component, bus.service, object_id), payload


def register_discovery(bus: Bus, build: Any) -> None:
    """Publish ``build()`` (a list of (topic, payload)) on connect and when HA comes online (with jitter)."""
    if not bus.settings.ha_discovery:
        return
    retain = bus.settings.ha_discovery_retain

    def send() -> None:
        for topic, payload in build():
            bus.publish(topic, payload, retain=retain)

    def on_ha_status(msg: Incoming) -> None:
        if msg.text.strip() == "online":
            threading.Timer(random.uniform(0, 5), send).start()

    bus.on_connect(send)
    bus.subscribe_text(bus.topics.ha_status, on_ha_status)
