"""batsched in a real Home Assistant (``make test-ha``; not part of ``make test``).

Home Assistant core from its own venv (``tools/ha_venv.py``; skipped with the reason where no Python fits) is
onboarded and given the MQTT integration through its APIs, pointed at this test's Mosquitto. The seven services
run with their own entry points: the executor and the watchdog on the NetZero simulator (dry run), the other
upstream endpoints dead (the test publishes the prices as the pricing service would). Then, through Home
Assistant's REST and WebSocket APIs: every entity the services announced exists on the one batsched device with
its unit, device class, display precision and state; a number change, the Replan button and the override buttons
reach their services; the plan action is unknown when no slot is current; and everything comes back after Home
Assistant restarts.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.clock import RealClock
from shared.models import PlanNow, Rate, RateSeries
from shared.slots import SLOT, slot_start
from shared.topics import Topics
from sim.netzero import NetZeroSim, serve
from tests.deploy.test_ha_discovery import SERVICE_MODULES
from tests.ha.home_assistant import HomeAssistant
from tests.support.broker import Broker, free_port
from tests.support.probe import Probe
from tests.support.procs import ServiceProcess
from tools import ha_venv

pytestmark = [pytest.mark.ha, pytest.mark.timeout(900)]  # the first run builds the HA venv
T = Topics()
DISCOVERY = "homeassistant/+/+/+/config"
SOC = 55.123456


def wait_until(what: str, check: Callable[[], Any], timeout: float = 60.0, every: float = 0.5) -> Any:
    """Poll ``check`` until it returns something truthy (no sleeping for luck: a deadline and a reason)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (AssertionError, KeyError, ValueError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")


@pytest.fixture(scope="module")
def hass_bin() -> Path:
    chosen = ha_venv.choose()
    if isinstance(chosen, str):
        pytest.skip(f"Home Assistant test skipped: {chosen}")
    return ha_venv.ensure()


@pytest.fixture(scope="module")
def world(hass_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Broker, probe, the seven services and an onboarded Home Assistant with MQTT: shared by the tests below, which
    run in order (each leaves the system as the next expects)."""
    t0 = time.monotonic()
    root = tmp_path_factory.mktemp("ha")
    broker = Broker(root / "broker").start()
    probe = Probe(broker.port).start()
    now = datetime.now(UTC)
    first = slot_start(now) - 4 * SLOT
    prices = [0.30 if (first + k * SLOT).hour in (16, 17, 18) else 0.12 + 0.01 * (k % 7) for k in range(56)]
    rates = RateSeries(
        generated_at=now,
        valid_until=first + 56 * SLOT,
        tariff_code="E-1R-AGILE-FLEX-22-11-25-J",
        rates=[Rate(start=first + k * SLOT, end=first + (k + 1) * SLOT, value_inc_vat=p) for k, p in enumerate(prices)],
    )
    probe.publish(T.import_rates, rates.to_json(), retain=True)
    # The Powerwall behind the executor and the watchdog: the NetZero simulator on the wall clock.
    netzero = serve(NetZeroSim(RealClock(), soc_pct=SOC, apply_delay_s=1.0))
    netzero_url = f"http://127.0.0.1:{netzero.server_address[1]}/api/v1"

    procs = []
    dead = str(free_port())
    extra = {"BATSCHED_ACCOUNTING_MONEY_INTERVAL_S": "10"}
    for module, name, env in SERVICE_MODULES:
        env = {k: v.format(dead=dead, free=free_port()) for k, v in env.items()}
        if "BATSCHED_NETZERO_BASE_URL" in env:
            env["BATSCHED_NETZERO_BASE_URL"] = netzero_url
        full = {**broker.env, "BATSCHED_DATA_DIR": str(root / "data"), **extra, **env}
        procs.append(ServiceProcess(module, full, root / "logs" / f"{name}.log").start())
    for _, name, _ in SERVICE_MODULES:
        probe.wait_for(T.status(name), lambda m: m.text == "online", timeout=60)
    services_s = time.monotonic() - t0

    ha = HomeAssistant(hass_bin, root / "ha", free_port())
    try:
        ha.start()
        ha.onboard()
        ha.add_mqtt(broker.port)
        yield {"ha": ha, "probe": probe, "broker": broker, "procs": procs, "root": root}
    finally:
        ha.stop()
        for p in procs:
            p.kill()
        probe.stop()
        netzero.shutdown()
        broker.kill()
        starts = ", ".join(f"{s:.1f}" for s in ha.starts)
        print(f"\ntest-ha: services up in {services_s:.1f} s; Home Assistant API up after {starts} s")


def announced(probe: Probe) -> dict[str, dict[str, Any]]:
    """unique_id -> the last discovery config each service sent."""
    out = {}
    for m in probe.on(DISCOVERY):
        if m.payload:
            config = json.loads(m.payload)
            out[config["unique_id"]] = {**config, "_component": m.topic.split("/")[1]}
    return out


def by_unique_id(ha: HomeAssistant) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    entities, devices = ha.registry()
    return {e["unique_id"]: e for e in entities if e.get("platform") == "mqtt"}, devices


def registry_with(ha: HomeAssistant, ids: set[str]) -> dict[str, dict[str, Any]] | None:
    """The MQTT entity registry by unique_id once it holds every one of ``ids``."""
    registry = by_unique_id(ha)[0]
    return registry if ids <= set(registry) else None


def states_available(ha: HomeAssistant, entity_ids: list[str]) -> dict[str, dict[str, Any]] | None:
    """Every state once none of ``entity_ids`` is missing or unavailable."""
    states = ha.states()
    ok = all(states.get(e, {}).get("state") not in (None, "unavailable") for e in entity_ids)
    return states if ok else None


def retained(probe: Probe, topic: str) -> Any:
    m = probe.latest(topic)
    assert m is not None and m.payload, f"nothing on {topic}"
    return m.json()


def entity_of(ha: HomeAssistant, unique_id: str) -> str:
    return by_unique_id(ha)[0][unique_id]["entity_id"]


def state_of(ha: HomeAssistant, unique_id: str) -> dict[str, Any]:
    return ha.get(f"/api/states/{entity_of(ha, unique_id)}")


def test_every_entity_exists_on_the_batsched_device_with_unit_and_state(world: dict[str, Any]) -> None:
    ha, probe = world["ha"], world["probe"]
    t0 = time.monotonic()
    configs = wait_until("the services' discovery", lambda: announced(probe), timeout=30)
    expected_ids = set(configs)
    registry = wait_until("every announced entity in HA's registry", lambda: registry_with(ha, expected_ids))
    _, devices = by_unique_id(ha)
    ours = [d for d in devices if ["mqtt", "batsched"] in d["identifiers"]]
    assert len(ours) == 1 and ours[0]["name"] == "Battery Scheduler", ours
    entity_ids = [registry[u]["entity_id"] for u in expected_ids]
    states = wait_until("no announced entity unavailable", lambda: states_available(ha, entity_ids))
    services = {
        u.removeprefix("batsched_").removesuffix("_status") for u, c in configs.items() if u.endswith("_status")
    }
    assert services == {"pricing", "forecast", "planner", "executor", "watchdog", "accounting", "dashboard"}
    for uid, config in configs.items():
        entry = registry[uid]
        assert entry["device_id"] == ours[0]["id"], uid
        st = states[entry["entity_id"]]
        attrs = st["attributes"]
        assert attrs.get("unit_of_measurement") == config.get("unit_of_measurement"), uid
        assert attrs.get("device_class") == config.get("device_class"), uid
        assert attrs.get("friendly_name", "").startswith("Battery Scheduler "), uid
        if config["_component"] == "sensor" and config.get("unit_of_measurement"):
            precision = ha.entry(entry["entity_id"])["options"].get("sensor", {}).get("suggested_display_precision")
            assert precision == config.get("suggested_display_precision") is not None, uid
        if uid.endswith("_status"):
            assert st["state"] == "on", uid  # every service connected
    # states that follow from what is on the bus
    soc = wait_until(
        "the battery level in HA as the executor read it",
        lambda: float(state_of(ha, "batsched_battery_soc")["state"]) == retained(probe, T.battery_state)["soc_pct"],
    )
    assert soc and abs(float(state_of(ha, "batsched_battery_soc")["state"]) - SOC) < 5
    plan = wait_until("a plan", lambda: retained(probe, T.plan)["status"] == "ok" and retained(probe, T.plan))
    cost = wait_until("the plan cost in HA", lambda: state_of(ha, "batsched_plan_expected_cost"))
    assert float(cost["state"]) == pytest.approx(plan["expected_cost_gbp"])
    assert cost["attributes"]["device_class"] == "monetary" and cost["attributes"]["unit_of_measurement"] == "GBP"
    current = retained(probe, T.plan_current)
    assert current["slot"] is not None
    now_state = state_of(ha, "batsched_next_action")
    assert now_state["state"] == current["slot"]["action"]
    assert now_state["attributes"]["reason"] == current["slot"]["reason"]
    money = wait_until("today's money", lambda: (m := retained(probe, T.accounting_money))["today"] and m)
    today = wait_until(
        "cost today in HA", lambda: (s := state_of(ha, "batsched_cost_today"))["state"] != "unknown" and s
    )
    assert float(today["state"]) == pytest.approx(money["today"]["actual_cost_gbp"])
    print(f"test-ha: {len(configs)} entities checked in {time.monotonic() - t0:.1f} s")


def test_a_number_change_and_the_replan_button_reach_the_planner(world: dict[str, Any]) -> None:
    ha, probe = world["ha"], world["probe"]
    reserve = entity_of(ha, "batsched_min_soc_pct")
    assert float(ha.get(f"/api/states/{reserve}")["state"]) == pytest.approx(10.0)
    mark = probe.mark()
    ha.call("number", "set_value", entity_id=reserve, value=20)
    assert probe.wait_for(T.planner_setting_set("min_soc_pct"), timeout=15, after=mark).text in ("20", "20.0")
    answer = probe.wait_json(T.planner_setting_set("min_soc_pct") + "/result", timeout=15, after=mark)
    assert answer["status"] == "ok", answer
    probe.wait_for(T.planner_setting("min_soc_pct"), lambda m: float(m.text) == 20.0, timeout=15, after=mark)
    wait_until("the reserve in HA", lambda: float(ha.get(f"/api/states/{reserve}")["state"]) == 20.0, timeout=15)

    mark = probe.mark()
    ha.call("button", "press", entity_id=entity_of(ha, "batsched_replan"))
    answer = probe.wait_json(T.planner_replan + "/result", timeout=15, after=mark)
    assert answer["status"] == "ok", answer


def test_override_buttons_reach_the_executor_and_its_last_decision_is_small(world: dict[str, Any]) -> None:
    ha, probe = world["ha"], world["probe"]
    mark = probe.mark()
    ha.call("button", "press", entity_id=entity_of(ha, "batsched_override_hold"))
    sent = probe.wait_json(T.executor_override, timeout=15, after=mark)
    until = datetime.fromisoformat(sent["until"])
    assert sent["action"] == "hold" and timedelta(minutes=59) < until - datetime.now(UTC) <= timedelta(hours=1)
    answer = probe.wait_json(T.executor_override + "/result", timeout=15, after=mark)
    assert answer["status"] == "ok", answer
    # The override in force, as the executor publishes it: one line, and a few attributes.
    held = wait_until(
        "the override in HA",
        lambda: (st := state_of(ha, "batsched_override_in_force"))["state"].startswith("Hold until ") and st,
    )
    assert held["attributes"]["action"] == "hold" and datetime.fromisoformat(held["attributes"]["until"]) == until
    mark = probe.mark()
    ha.call("button", "press", entity_id=entity_of(ha, "batsched_override_cancel"))
    answer = probe.wait_json(T.executor_override + "/result", timeout=15, after=mark)
    assert answer["status"] == "ok", answer
    wait_until("no override in HA", lambda: state_of(ha, "batsched_override_in_force")["state"] == "None in force")

    decision = wait_until("a last decision", lambda: retained(probe, T.executor_last_decision))
    shown = wait_until(
        "the last decision in HA", lambda: (st := state_of(ha, "batsched_last_decision"))["state"] != "unknown" and st
    )
    latest = retained(probe, T.executor_last_decision)
    assert shown["state"] in (decision["summary"], latest["summary"])
    attrs = {k: v for k, v in shown["attributes"].items() if k not in ("friendly_name", "icon")}
    assert set(attrs) == {"action", "outcome", "rule", "mode", "decided_at"}
    assert len(json.dumps(attrs)) < 300  # the whole decision (executor/applied) was ~1 KB of attributes


def test_plan_action_is_unknown_when_no_slot_is_current(world: dict[str, Any]) -> None:
    ha, probe = world["ha"], world["probe"]
    now = datetime.now(UTC)
    if slot_start(now) + SLOT - now < timedelta(seconds=20):  # the planner replans at the boundary: not during this
        time.sleep((slot_start(now) + SLOT - now).total_seconds() + 2)
        now = datetime.now(UTC)
    nothing = PlanNow(generated_at=now, valid_until=now + timedelta(minutes=5), plan_id="none", slot=None)
    probe.publish(T.plan_current, nothing.to_json(), retain=True)
    wait_until("plan action unknown", lambda: state_of(ha, "batsched_next_action")["state"] == "unknown", timeout=15)
    probe.publish(T.planner_replan, b'{"reason": "test"}')  # the planner puts its own current slot back
    wait_until("plan action back", lambda: state_of(ha, "batsched_next_action")["state"] != "unknown", timeout=15)


def test_entities_come_back_after_home_assistant_restarts(world: dict[str, Any]) -> None:
    ha, probe = world["ha"], world["probe"]
    kept = ("batsched_min_soc_pct", "batsched_battery_soc", "batsched_last_decision", "batsched_executor_mode")
    before = {uid: state_of(ha, uid)["state"] for uid in kept}
    ids = set(announced(probe))
    mark = probe.mark()
    ha.stop()
    ha.start()
    probe.wait_for(T.ha_status, lambda m: m.text == "online", timeout=60, after=mark)  # its MQTT birth message
    registry = wait_until("every entity back in the registry", lambda: registry_with(ha, ids))
    entity_ids = [registry[u]["entity_id"] for u in ids]
    wait_until("every entity available again", lambda: states_available(ha, entity_ids))
    wait_until("the same states", lambda: {uid: state_of(ha, uid)["state"] for uid in before} == before, 30)
