"""Home Assistant discovery: every payload the services publish passes the checks HA needs, on one device.

Generic on purpose: the payloads are collected from a real broker, from whatever announces itself under
``homeassistant/#`` — the reference stand-in (``ha_reference_service``) and every batsched service that exists in
this tree, started with its own entry point. Each payload goes through ``shared.ha.check_discovery``.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from typing import Any

import pytest

from shared.bus import Bus
from shared.ha import check_discovery, entity, status_entity
from shared.settings import ServiceSettings
from shared.topics import Topics
from tests.support.broker import free_port
from tests.support.probe import Probe, Seen

T = Topics()
DISCOVERY = "homeassistant/+/+/+/config"

# (owner, what, matcher): the entities the issue asks for, recognised by what they do rather than their ids.
Matcher = Callable[[str, dict[str, Any]], bool]
EXPECTED: list[tuple[str, str, Matcher]] = [
    ("pricing", "current price", lambda c, p: c == "sensor" and p.get("state_topic") == T.import_current),
    ("planner", "next action", lambda c, p: c == "sensor" and p.get("state_topic") == T.plan_current),
    (
        "executor",
        "battery SOC",
        lambda c, p: c == "sensor" and p.get("state_topic") == T.battery_state and p.get("device_class") == "battery",
    ),
    ("executor", "mode select", lambda c, p: c == "select" and p.get("command_topic") == T.executor_mode_set),
    ("executor", "dry-run switch", lambda c, p: c == "switch" and p.get("command_topic") == T.executor_dry_run_set),
]

# module, bus name, extra environment (dead endpoints: discovery must not wait for the outside world)
NETZERO = {
    "BATSCHED_NETZERO_BASE_URL": "http://127.0.0.1:{dead}/api/v1",
    "BATSCHED_NETZERO_API_KEY": "demo-token",
    "BATSCHED_NETZERO_SITE_ID": "1234567890",
}
SERVICE_MODULES = [
    ("services.pricing", "pricing", {"BATSCHED_OCTOPUS_BASE_URL": "http://127.0.0.1:{dead}"}),
    ("services.forecast", "forecast", {"BATSCHED_OPENMETEO_URL": "http://127.0.0.1:{dead}/v1/forecast"}),
    ("services.planner", "planner", {}),
    ("services.executor", "executor", {**NETZERO, "BATSCHED_DRY_RUN": "true"}),
    ("services.executor.watchdog", "watchdog", NETZERO),
    ("services.accounting", "accounting", {}),
    ("services.dashboard", "dashboard", {"BATSCHED_DASHBOARD_AUTH": "local", "BATSCHED_DASHBOARD_PORT": "{free}"}),
]


def runnable(module: str) -> bool:
    """``python -m module`` would run: a module, or a package with a ``__main__``."""
    try:
        spec = importlib.util.find_spec(module)
        if spec is None:
            return False
        if spec.submodule_search_locations is not None:
            return importlib.util.find_spec(f"{module}.__main__") is not None
        return True
    except ModuleNotFoundError:
        return False


def configs(seen: list[Seen]) -> dict[str, dict[str, Any]]:
    """The last non-empty config per discovery topic."""
    out = {}
    for m in seen:
        if m.payload:
            out[m.topic] = json.loads(m.payload)
    return out


def component(topic: str) -> str:
    return topic.split("/")[1]


def assert_all_valid(found: dict[str, dict[str, Any]]) -> None:
    problems = {topic: check_discovery(topic, payload) for topic, payload in found.items()}
    assert {t: p for t, p in problems.items() if p} == {}
    identifiers = {tuple(p["device"]["identifiers"]) for p in found.values()}
    assert identifiers == {("batsched",)}, "one device for the whole system"
    assert any(p["device"].get("name") == "Battery Scheduler" for p in found.values())
    unique_ids = [p["unique_id"] for p in found.values()]
    assert len(unique_ids) == len(set(unique_ids)), "unique_id collision"


def wait_for_entity(probe: Probe, owner: str, what: str, match: Matcher, timeout: float, after: float | None = None):
    def ok(m: Seen) -> bool:
        return bool(m.payload) and f"_{owner}/" in m.topic and match(component(m.topic), json.loads(m.payload))

    try:
        return probe.wait_for(DISCOVERY, ok, timeout=timeout, after=after)
    except TimeoutError:
        pytest.fail(f"{owner} announced no {what} entity to Home Assistant")


def test_reference_entities_announce_one_device_and_come_back_when_ha_restarts(spawn, probe: Probe) -> None:
    spawn("tests.deploy.ha_reference_service", name="hademo")
    probe.wait_for(T.status("hademo"), lambda m: m.text == "online", timeout=15)
    for _owner, what, match in EXPECTED:
        wait_for_entity(probe, "hademo", what, match, timeout=10)
    status = wait_for_entity(probe, "hademo", "status", lambda c, p: p.get("state_topic") == T.status("hademo"), 10)
    assert json.loads(status.payload)["device_class"] == "connectivity"
    found = configs(probe.on(DISCOVERY))
    assert len(found) == len(EXPECTED) + 1
    assert_all_valid(found)
    assert not any(m.retain for m in probe.on(DISCOVERY)), "discovery is not retained by default (ghost entities)"

    # Home Assistant restarts: its birth message makes every service announce itself again (within its jitter)
    mark = probe.mark()
    probe.publish("homeassistant/status", "online")
    for _owner, what, match in EXPECTED:
        wait_for_entity(probe, "hademo", what, match, timeout=10, after=mark)


SPAWNABLE = [s for s in SERVICE_MODULES if runnable(s[0])]


@pytest.mark.skipif(not SPAWNABLE, reason="no batsched service with an entry point in this tree yet")
def test_every_service_announces_valid_entities(spawn, probe: Probe) -> None:
    dead = str(free_port())
    running = []
    for module, name, env in SPAWNABLE:
        env = {k: v.format(dead=dead, free=free_port()) for k, v in env.items()}
        spawn(module, env=env, name=name)
        running.append(name)
    for name in running:
        probe.wait_for(T.status(name), lambda m: m.text == "online", timeout=30)
    for owner, what, match in EXPECTED:
        if owner in running:
            wait_for_entity(probe, owner, what, match, timeout=15)
    found = configs(probe.on(DISCOVERY))
    assert found, "no service announced anything"
    assert_all_valid(found)
    for name in {component_owner(t) for t in found}:
        wait_for_entity(probe, name, "status", lambda c, p, n=name: p.get("state_topic") == T.status(n), 10)


def component_owner(topic: str) -> str:
    return topic.split("/")[2].removeprefix(f"{T.node_prefix}_")


# ---- the checker itself, on payloads built with shared.ha


@pytest.fixture(scope="module")
def bus() -> Bus:
    return Bus(ServiceSettings(), "pricing")


def good(bus: Bus, **extra: Any) -> tuple[str, dict[str, Any]]:
    base: dict[str, Any] = {
        "unit_of_measurement": "GBP/kWh",
        "state_class": "measurement",
        "suggested_display_precision": 4,
    }
    return entity(bus, "sensor", "import_price", "Import price", T.import_current, **{**base, **extra})


def test_well_formed_entities_pass(bus: Bus) -> None:
    assert check_discovery(*good(bus)) == []
    assert check_discovery(*status_entity(bus)) == []
    topic, payload = good(bus)
    assert check_discovery(topic, json.dumps(payload).encode()) == []
    pv = entity(bus, "sensor", "pv_today", "PV today", T.forecast_pv_today, device_class="energy",
                unit_of_measurement="kWh", state_class="total", suggested_display_precision=1)  # fmt: skip
    assert check_discovery(*pv) == []


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda p: p.pop("unique_id"), "no unique_id"),
        (lambda p: p.pop("device"), "no device with identifiers"),
        (lambda p: p["device"].pop("identifiers"), "no device with identifiers"),
        (lambda p: p.pop("origin"), "no origin"),
        (lambda p: p.pop("availability"), "no availability"),
        (lambda p: p.update(object_id="x"), "object_id is deprecated"),
        (lambda p: p.update(device_class="monetary", unit_of_measurement="GBP"), "monetary does not take"),
        (lambda p: p.update(device_class="monetary", state_class="total", unit_of_measurement="£"), "ISO 4217"),
        (lambda p: p.update(device_class="energy", unit_of_measurement="kWh"), "energy does not take state_class"),
        (lambda p: p.pop("suggested_display_precision"), "needs suggested_display_precision"),
        (lambda p: p.update(device_class="battery", unit_of_measurement="%", state_class=None), "needs state_class"),
        (lambda p: p.update(name="battery_soc"), "reads like an id"),
        (lambda p: p.update(device_class="battery", unit_of_measurement="kWh"), "battery does not take unit"),
        (lambda p: p.update(device_class="power", unit_of_measurement="W", state_class="total"), "power does not"),
        (lambda p: p.update(device_class="enum", state_class=None, unit_of_measurement=None), "without options"),
        (lambda p: p.update(state_class="average"), "state_class 'average' unknown"),
        (lambda p: p.update(name="Battery Scheduler price"), "repeats the device name"),
        (lambda p: p.update(default_entity_id="switch.batsched_import_price"), "not in the sensor domain"),
        (lambda p: p.update(attributes="x" * 17_000), "bytes"),
    ],
)
def test_each_mistake_is_caught(bus: Bus, change: Callable[[dict[str, Any]], Any], problem: str) -> None:
    topic, payload = good(bus)
    change(payload)
    payload = {k: v for k, v in payload.items() if v is not None}
    found = check_discovery(topic, payload)
    assert any(problem in p for p in found), found


def test_command_entities_need_their_topics(bus: Bus) -> None:
    topic, payload = entity(bus, "select", "mode", "Mode", T.executor_mode)
    assert {"select without command_topic", "select without options"} <= set(check_discovery(topic, payload))
    bad_topic = "homeassistant/sensor/batsched pricing/price/config"
    assert any("characters outside" in p for p in check_discovery(bad_topic, good(bus)[1]))
