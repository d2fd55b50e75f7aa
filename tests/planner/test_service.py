"""The planner service on a real broker: new inputs give a new plan quickly; bad inputs give a safe plan.

The planner runs on a clock shared with the test that starts at a chosen instant (at real speed), so no outcome
depends on when the tests run: on the real clock a run inside the 16:00-19:00 peak planned no charge at all.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from shared.slots import slot_start
from tests.executor.support import sim_clock_env
from tests.planner.helpers import HALF, battery, forecast, rates, utc
from tests.support.probe import Probe

P = "batsched"
PLAN = f"{P}/planner/plan"
# 02:05 London (winter: UTC): the cheap slots the tests set up lie well before the peak window, and a test has
# 25 minutes before the next half-hour boundary.
START = utc(2026, 1, 14, 2, 5)


def _start(spawn, probe: Probe) -> datetime:
    """Start the planner on its own clock; returns the test's ``now`` on that clock."""
    clock, env = sim_clock_env(START, 1.0)
    spawn("services.planner", env={"BATSCHED_PLANNER_DEBOUNCE_S": "0.2", **env}, name="planner")
    probe.wait_for(f"{P}/planner/status", lambda m: m.text == "online", timeout=20)
    return clock.now()


def _inputs(now: datetime, prices: list[float]):
    start = slot_start(now)
    return rates(start, prices, generated_at=now), battery(now, 40), forecast("load", start, [0.5] * len(prices))


def test_new_rates_give_a_new_plan_within_a_second(spawn, probe: Probe) -> None:
    now = _start(spawn, probe)
    r, b, load = _inputs(now, [0.10] * 6 + [0.35] * 42)
    probe.publish(f"{P}/battery/state", b.model_dump_json(), retain=True)
    probe.publish(f"{P}/forecast/load", load.model_dump_json(), retain=True)
    probe.publish(f"{P}/pricing/import/rates", r.model_dump_json(), retain=True)
    first = probe.wait_json(PLAN, lambda j: j["status"] == "ok", timeout=10)
    assert any(s["action"] == "charge" for s in first["slots"][:6])

    # New rates: the cheap slots move to the end of the horizon.
    r2, _, _ = _inputs(now, [0.35] * 40 + [0.05] * 8)
    mark = probe.mark()
    sent = time.monotonic()
    probe.publish(f"{P}/pricing/import/rates", r2.model_dump_json(), retain=True)
    msg = probe.wait_for(PLAN, lambda m: m.json()["plan_id"] != first["plan_id"], timeout=5, after=mark)
    latency = msg.at - sent
    print(f"new rates -> new plan: {latency * 1000:.0f} ms")
    assert latency < 1.0
    plan = msg.json()
    assert plan["status"] == "ok"
    assert not any(s["action"] == "charge" for s in plan["slots"][:6])
    current = probe.wait_json(f"{P}/planner/plan/current", lambda j: j["plan_id"] == plan["plan_id"], timeout=5)
    assert current["slot"]["start"] == plan["slots"][0]["start"]


def test_stale_battery_or_missing_prices_give_a_self_use_plan_with_the_reason(spawn, probe: Probe) -> None:
    now = _start(spawn, probe)
    # No prices at all yet: the battery state alone gives a degraded plan.
    probe.publish(f"{P}/battery/state", battery(now, 55).model_dump_json(), retain=True)
    plan = probe.wait_json(PLAN, lambda j: j["status"] == "degraded" and "prices" in (j["reason"] or ""), timeout=10)
    assert {s["action"] for s in plan["slots"]} == {"self_use"}
    # Good prices but a battery state 20 minutes old.
    r, _, _ = _inputs(now, [0.1] * 10)
    old = battery(now, 55, age=timedelta(minutes=20))
    mark = probe.mark()
    probe.publish(f"{P}/battery/state", old.model_dump_json(), retain=True)
    probe.publish(f"{P}/pricing/import/rates", r.model_dump_json(), retain=True)
    plan = probe.wait_json(PLAN, lambda j: "battery state is stale" in (j["reason"] or ""), timeout=10, after=mark)
    assert plan["status"] == "degraded" and {s["action"] for s in plan["slots"]} == {"self_use"}
    assert plan["slots"][0]["reason"] == "stale_inputs"
    # Expired prices.
    mark = probe.mark()
    expired = rates(slot_start(now) - 20 * HALF, [0.1] * 10)
    probe.publish(f"{P}/battery/state", battery(now, 55).model_dump_json(), retain=True)
    probe.publish(f"{P}/pricing/import/rates", expired.model_dump_json(), retain=True)
    plan = probe.wait_json(PLAN, lambda j: "expired" in (j["reason"] or ""), timeout=10, after=mark)
    assert {s["action"] for s in plan["slots"]} == {"self_use"}


def test_settings_are_published_applied_and_replan_on_command(spawn, probe: Probe) -> None:
    now = _start(spawn, probe)
    probe.wait_for(f"{P}/planner/max_charge_price_gbp", lambda m: m.text == "0.2", timeout=10)
    r, b, load = _inputs(now, [0.15] * 6 + [0.40] * 42)
    for topic, msg in (("battery/state", b), ("forecast/load", load), ("pricing/import/rates", r)):
        probe.publish(f"{P}/{topic}", msg.model_dump_json(), retain=True)
    probe.wait_json(PLAN, lambda j: any(s["action"] == "charge" for s in j["slots"]), timeout=10)

    mark = probe.mark()
    probe.publish(f"{P}/planner/max_charge_price_gbp/set", "0.12")
    probe.wait_for(f"{P}/planner/max_charge_price_gbp", lambda m: m.text == "0.12", timeout=10, after=mark)
    plan = probe.wait_json(PLAN, lambda j: True, timeout=10, after=mark)
    assert not any(s["action"] == "charge" for s in plan["slots"])

    probe.publish(f"{P}/planner/min_soc_pct/set", "250")  # refused: out of range
    mark = probe.mark()
    probe.publish(f"{P}/planner/cmd/replan", {"request_id": "r1"})
    result = probe.wait_json(f"{P}/planner/cmd/replan/result", lambda j: j["request_id"] == "r1", timeout=10)
    assert result["status"] == "ok" and result["data"]["status"] == "ok"
    plan = probe.wait_json(PLAN, lambda j: j["plan_id"] == result["data"]["plan_id"], timeout=10, after=mark)
    disc = probe.wait_json("homeassistant/sensor/batsched_planner/next_action/config", timeout=10)
    assert disc["state_topic"] == f"{P}/planner/plan/current" and "charge" in disc["options"]
    assert probe.wait_for(f"{P}/planner/min_soc_pct", timeout=5).text == "10.0"
