"""Upstream faults on the simulated system (slow; ``make soak``): NetZero 500/403/429 and a NetZero that hangs
past the client's timeout, Octopus 500 and CDN 403 HTML, Open-Meteo outage. Each: the service stays up, the bus
says what went wrong, the last good data stays published, the request budget holds, and nothing is left forced
on the battery."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.reliability import docs
from tests.reliability.system import SimWorld, failure_lines, module_runnable
from tests.reliability.world import System
from tests.support.probe import Probe

pytestmark = pytest.mark.slow
ALERT = "batsched/pricing/alert"
RATES = "batsched/pricing/import/rates"
PLAN = "batsched/planner/plan"


@pytest.mark.timeout(300)
@pytest.mark.skipif(not module_runnable("services.executor"), reason="executor has not landed")
@pytest.mark.parametrize(
    "fault",
    [
        {"api_error": {"status": 500, "html": True, "count": None}},
        {"api_error": {"status": 403, "html": False, "count": None}},
        {"api_error": {"status": 429, "html": False, "count": None}},
    ],
    ids=["500-html", "403", "429"],
)
def test_netzero_fault_is_survived_and_leaves_nothing_forced(fault: dict, spawn, probe: Probe) -> None:
    system = System(spawn, probe)
    system.world.start_sims(spawn, ("netzero",))
    env = {**system.world.env, "BATSCHED_DECISION_INTERVAL_S": "5"}
    executor = spawn("services.executor", env=env, name="executor")
    probe.wait_for("batsched/executor/status", lambda m: m.text == "online", timeout=30)
    probe.wait_json("batsched/battery/state", timeout=60)
    baseline = system.netzero()["config"]

    system.netzero("/_control", fault)
    mark = probe.mark()
    probe.publish("batsched/executor/mode/set", "force_charge")
    # Reads fail: no decision can be made, but the loop goes on (heartbeats) and nothing is written.
    probe.wait_json("batsched/executor/heartbeat", timeout=60, after=mark)
    probe.wait_json("batsched/executor/heartbeat", timeout=60, after=probe.mark())
    assert system.netzero()["config"] == baseline, "the battery was changed while NetZero was failing"

    system.netzero("/_control", {"api_error": None, "drop_rate": 0.0, "apply_delay_s": 0})
    mark = probe.mark()
    probe.publish("batsched/executor/mode/set", "off")
    probe.wait_json("batsched/executor/applied", lambda d: d.get("mode") == "off", timeout=120, after=mark)
    stats = system.netzero()
    assert stats["max_per_minute"] <= 5, f"NetZero rate limit exceeded: {stats['max_per_minute']}/min"
    assert executor.alive()
    assert not failure_lines(executor.log()), failure_lines(executor.log())[:3]
    forced = stats["config"].get("grid_charging") or stats["config"].get("operational_mode") == "backup"
    assert not forced, f"left forced after the fault and mode off: {stats['config']} (baseline {baseline})"


@pytest.mark.timeout(300)
@pytest.mark.skipif(not module_runnable("services.executor"), reason="executor has not landed")
def test_netzero_hanging_past_the_client_timeout_is_survived_and_forces_nothing(spawn, probe: Probe) -> None:
    """Every NetZero request hangs (30 s) past the executor's client timeout (2 s here) while the user asks for a
    charge: the executor stays online, its heartbeats go on, nothing reaches the Powerwall, and it keeps to its
    request budget (4/min); once NetZero answers again the charge is applied, and mode off restores the baseline.
    A clock three times real time with a decision every 20 s leaves a request a minute for writes beside the
    reads; the hang and the timeout are real seconds, as they would be."""
    system = System(spawn, probe, world=SimWorld(speed=3.0))
    system.world.start_sims(spawn, ("netzero",))
    system.netzero("/_control", {"apply_delay_s": 0})
    env = {
        **system.world.env,
        "BATSCHED_DECISION_INTERVAL_S": "20",
        "BATSCHED_NETZERO_TIMEOUT_S": "2",
        "BATSCHED_RETRY_BACKOFF_S": "10",
        "BATSCHED_RETRY_BACKOFF_MAX_S": "20",
    }
    executor = spawn("services.executor", env=env, name="executor")
    probe.wait_for("batsched/executor/status", lambda m: m.text == "online", timeout=30)
    probe.wait_json("batsched/executor/applied", lambda d: d["outcome"] == "unchanged", timeout=30)
    baseline = system.netzero()["config"]
    now = system.world.now()
    probe.publish("batsched/pricing/import/current", json.dumps(docs.current_rate(now, 0.05)), retain=True)
    probe.publish("batsched/pricing/import/rates", json.dumps(docs.rate_series(now)), retain=True)

    system.netzero("/_control", {"hang_s": 30})
    mark = probe.mark()
    outage_from = system.world.now().isoformat()
    probe.publish("batsched/executor/mode/set", "force_charge")
    failed = probe.wait_json(
        "batsched/executor/applied", lambda d: "timed out" in (d.get("error") or ""), timeout=60, after=mark
    )
    assert failed["requested_action"] == "charge" and failed["outcome"] == "failed", failed
    beats = []
    for _ in range(3):  # the loop goes on: three more decisions while every request hangs
        beats.append(probe.wait_json("batsched/executor/heartbeat", timeout=30, after=probe.mark()))
    state = system.netzero()
    assert state["hung"] >= 2 and state["writes"] == 0, state
    assert state["config"] == baseline, "the battery changed while NetZero was hanging"
    assert probe.latest("batsched/executor/status").text == "online"
    assert executor.alive() and not failure_lines(executor.log())

    system.netzero("/_control", {"hang_s": 0})
    back, mark = time.monotonic(), probe.mark()
    applied = probe.wait_json(
        "batsched/executor/applied", lambda d: d["action"] == "charge" and d["outcome"] == "applied", 90, mark
    )
    to_applied = time.monotonic() - back
    assert system.netzero()["config"]["grid_charging"] is True
    mark = probe.mark()
    probe.publish("batsched/executor/mode/set", "off")
    probe.wait_json("batsched/executor/applied", lambda d: d["mode"] == "off" and d["outcome"] == "applied", 60, mark)
    state = system.netzero()
    assert state["config"] == baseline
    log = system.netzero("/_log")
    during = [r for r in log["requests"] if r["t"] >= outage_from and r.get("hung")]
    print(
        f"\nNetZero hanging: {len(during)} requests held, {len(beats) + 1} heartbeats in the outage, none written; "
        f"charge applied {to_applied:.1f} s after it answered again; {state['request_count']} requests, "
        f"max {state['max_per_minute']}/min; executor error: {failed['error']!r}; applied: {applied['decision_id']}"
    )
    assert state["max_per_minute"] <= 4 and state["rate_limited"] == 0, state
    assert executor.alive() and not failure_lines(executor.log())


@pytest.mark.skipif(not module_runnable("services.pricing"), reason="pricing has not landed")
@pytest.mark.parametrize("fault", [{"fail_500": -1}, {"forbidden_html": -1}], ids=["500", "403-html"])
def test_octopus_fault_keeps_last_good_prices_and_raises_an_alert(fault: dict, spawn, probe: Probe) -> None:
    system = System(spawn, probe)
    system.world.start_sims(spawn, ("octopus",))
    pricing = spawn("services.pricing", env=system.world.env, name="pricing")
    good = probe.wait_for("batsched/pricing/import/rates", lambda m: bool(m.payload), timeout=60)
    system.sim_control("octopus", fault)
    mark = probe.mark()
    probe.publish("batsched/pricing/cmd/refresh", json.dumps(docs.command("during-fault")))
    result = probe.wait_json(
        "batsched/pricing/cmd/refresh/result", lambda d: d.get("request_id") == "during-fault", timeout=60, after=mark
    )
    assert result["status"] == "error", result
    alert = probe.wait_json("batsched/pricing/alert", lambda d: d.get("code") == "fetch_failing", timeout=30)
    assert alert["message"]
    latest = probe.latest("batsched/pricing/import/rates")
    assert latest is not None and latest.payload, "the last good prices were withdrawn"
    assert json.loads(latest.payload)["rates"] == json.loads(good.payload)["rates"] or latest.at >= good.at
    assert pricing.alive() and not failure_lines(pricing.log())


@pytest.mark.skipif(not module_runnable("services.forecast"), reason="forecast has not landed")
@pytest.mark.parametrize("failure", ["500", "timeout", "garbage", "html"])
def test_openmeteo_outage_keeps_the_forecast(failure: str, spawn, probe: Probe) -> None:
    system = System(spawn, probe)
    system.world.start_sims(spawn, ("openmeteo",))
    env = {**system.world.env, "BATSCHED_OPENMETEO_TIMEOUT_S": "2"}
    forecast = spawn("services.forecast", env=env, name="forecast")
    good = probe.wait_for("batsched/forecast/pv", lambda m: bool(m.payload), timeout=60)
    system.sim_control("openmeteo", {"failure": failure}, path="/control")
    mark = probe.mark()
    probe.publish("batsched/forecast/cmd/refresh", json.dumps(docs.command("outage")))
    result = probe.wait_json(
        "batsched/forecast/cmd/refresh/result", lambda d: d.get("request_id") == "outage", timeout=60, after=mark
    )
    assert result["status"] == "error", result
    latest = probe.latest("batsched/forecast/pv")
    assert latest is not None and latest.payload, "the PV forecast was withdrawn during the outage"
    assert latest.at >= good.at
    assert forecast.alive() and not failure_lines(forecast.log())


@pytest.mark.timeout(300)
@pytest.mark.skipif(not module_runnable("services.executor"), reason="executor has not landed")
def test_netzero_change_silently_not_applied_is_reported_not_hammered(spawn, probe: Probe) -> None:
    """NetZero#94/#380: the API accepts the change, the Powerwall never applies it. The read-back must say
    ``mismatch`` (not ``applied``), and the executor must not hammer the API with the same write."""
    system = System(spawn, probe)
    system.world.start_sims(spawn, ("netzero",))
    env = {**system.world.env, "BATSCHED_DECISION_INTERVAL_S": "5"}
    executor = spawn("services.executor", env=env, name="executor")
    probe.wait_for("batsched/executor/status", lambda m: m.text == "online", timeout=30)
    probe.wait_json("batsched/battery/state", timeout=60)
    system.netzero("/_control", {"drop_rate": 1.0, "apply_delay_s": 0})
    now = system.world.now()
    # A known, cheap current price: without one the price rule (rightly) blocks any charge.
    probe.publish("batsched/pricing/import/current", json.dumps(docs.current_rate(now, 0.05)), retain=True)
    probe.publish("batsched/pricing/import/rates", json.dumps(docs.rate_series(now)), retain=True)
    mark = probe.mark()
    probe.publish("batsched/executor/mode/set", "force_charge")
    bad = probe.wait_json("batsched/executor/applied", lambda d: d.get("outcome") == "mismatch", 60, mark)
    assert bad["action"] == "charge" and bad["error"]
    # Three more decisions (5 s apart) while the gateway keeps ignoring the change.
    later = probe.mark()
    for _ in range(3):
        seen = probe.mark()
        probe.wait_json("batsched/executor/applied", timeout=60, after=seen)
    state = system.netzero()
    assert state["writes"] <= 3, f"{state['writes']} writes for one unapplied change"
    assert state["config"].get("grid_charging") is False, "the simulator applied a dropped change?"
    outcomes = [m.json()["outcome"] for m in probe.on("batsched/executor/applied") if m.at >= later and m.payload]
    assert "applied" not in outcomes, outcomes
    assert executor.alive() and not failure_lines(executor.log())


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.timeout(300)
@pytest.mark.skipif(
    not all(module_runnable(m) for m in ("services.pricing", "services.planner", "services.executor")),
    reason="pricing, planner and executor are needed",
)
def test_tomorrows_prices_published_late_keep_plans_to_the_known_slots(spawn, probe: Probe) -> None:
    """Octopus publishes tomorrow's prices at 20:45 UK time instead of about 16:00 (the simulator's
    ``publish_at``). Pricing, forecast, planner and executor run from about 15:30 on a clock 300 times real time. After
    20:00 pricing raises ``prices_late``; until the prices come every plan covers only slots with a published price
    (no charge slot without one) and the executor charges only in a planned charge slot; once they come a plan
    covering tomorrow follows within a bounded time (the pricing poll back-off, at most 30 min, plus the planner's
    reaction) and the alert clears."""
    speed = 300.0
    world = SimWorld(start=datetime(2023, 6, 12, 14, 0, tzinfo=UTC), speed=speed)  # 15:00 BST, online by ~15:45
    late_after = datetime(2023, 6, 12, 19, 0, tzinfo=UTC)  # 20:00 BST
    release = datetime(2023, 6, 12, 19, 45, tzinfo=UTC)  # 20:45 BST
    today_end = datetime(2023, 6, 12, 22, 0, tzinfo=UTC)  # 23:00 BST: the end of today's published prices
    bound = timedelta(minutes=70)  # ≤ 33 min to the next poll + ≤ 30 min to the planner's next slot boundary

    def real_s(t: datetime) -> float:
        return max(0.0, (t - world.now()).total_seconds() / speed)

    system = System(spawn, probe, world=world)
    world.start_sims(spawn)
    system.sim_control("octopus", {"publish_at": "20:45"})
    # A decision every 3 simulated minutes (0.6 s real) keeps the load sane at this speed; the battery state it
    # publishes each time stays fresh (5 min) for the planner.
    system.start_services({"BATSCHED_DECISION_INTERVAL_S": "180"}, names=("pricing", "forecast", "planner", "executor"))
    system.wait_online(timeout=60)
    online = world.now()
    first = probe.wait_json(RATES, timeout=30)
    assert at(first["valid_until"]) == today_end, "tomorrow's prices were there before 20:45"

    late = probe.wait_json(ALERT, lambda d: d["code"] == "prices_late", timeout=real_s(late_after) + 30)
    raised = at(late["generated_at"])
    assert late_after <= raised < late_after + timedelta(minutes=31), late
    assert "tomorrow" in late["message"], late
    fresh = probe.wait_json(RATES, lambda d: at(d["valid_until"]) > today_end, timeout=real_s(release + bound) + 30)
    published = at(fresh["generated_at"])
    assert release <= published <= release + timedelta(minutes=34), fresh["generated_at"]
    covering = probe.wait_json(
        PLAN,
        lambda d: d["status"] == "ok" and max(at(s["end"]) for s in d["slots"]) > today_end,
        timeout=real_s(release + bound) + 30,
    )
    planned = at(covering["generated_at"])
    assert planned <= release + bound, f"the plan covering tomorrow came at {planned}, {planned - release} late"
    probe.wait_json(ALERT, lambda d: d["code"] == "ok", timeout=30)

    # Every plan kept to the prices it was made from: no slot past them, a published price on every charge slot.
    rates_by_time = {m.json()["generated_at"]: m.json() for m in probe.on(RATES) if m.payload}
    plans = [m.json() for m in probe.on(PLAN) if m.payload]
    before_release = [p for p in plans if at(p["generated_at"]) < published]
    during_late = [p for p in before_release if at(p["generated_at"]) >= late_after]
    assert during_late, "no plan was published while the prices were late"
    for plan in plans:
        if plan["status"] == "degraded":  # made without usable inputs (e.g. before the first prices): self-use only
            assert {s["action"] for s in plan["slots"]} == {"self_use"}, plan
            continue
        rates = rates_by_time.get(plan["inputs"]["rates_generated_at"])
        assert rates is not None, f"plan {plan['plan_id']} made from prices never published"
        known = {r["start"]: r["value_inc_vat"] for r in rates["rates"]}
        assert max(at(s["end"]) for s in plan["slots"]) <= at(rates["valid_until"]), plan["plan_id"]
        for slot in plan["slots"]:
            if slot["action"] == "charge":
                assert known.get(slot["start"]) is not None, f"charge slot {slot['start']} without a published price"
    for plan in before_release:
        if plan["status"] != "degraded":
            assert max(at(s["end"]) for s in plan["slots"]) <= today_end, plan["plan_id"]

    # The executor forced the battery only as planned: grid charging in a charge slot, backup (hold) in a charge or
    # hold slot, give or take one decision interval and the gateway's apply delay after the slot's end.
    def slots(*actions: str) -> list[tuple[datetime, datetime]]:
        return [
            (at(s["start"]), at(s["end"]) + timedelta(minutes=4))
            for p in plans
            for s in p["slots"]
            if s["action"] in actions
        ]

    charge_slots, forcing_slots = slots("charge"), slots("charge", "hold")
    samples = system.netzero("/_log")["samples"]
    charging = [s["t"] for s in samples if s["grid_charging"]]
    held = [s["t"] for s in samples if s["mode"] == "backup" and not s["grid_charging"]]
    unplanned = [t for t in charging if not any(a <= at(t) < b for a, b in charge_slots)]
    unplanned += [t for t in held if not any(a <= at(t) < b for a, b in forcing_slots)]
    assert not unplanned, f"forced outside any planned slot at {unplanned[:5]}"
    by_id = {p["plan_id"]: p for p in plans}
    for d in (m.json() for m in probe.on("batsched/executor/applied") if m.payload):
        if d["action"] in ("charge", "hold") and d["plan_id"] is not None:
            slot = next(s for s in by_id[d["plan_id"]]["slots"] if s["start"] == d["slot_start"])
            assert slot["action"] == d["action"] and slot["value_inc_vat"] is not None, d
    for name, proc in system.procs.items():
        assert proc.alive(), f"{name} exited:\n{proc.log()[-2000:]}"
        assert not failure_lines(proc.log()), f"{name}: {failure_lines(proc.log())[:3]}"
    print(
        f"\nlate prices: online at {online:%H:%M}Z; prices_late at {raised:%H:%M}Z (late after {late_after:%H:%M}Z); "
        f"published {release:%H:%M}Z, "
        f"fetched {published:%H:%M}Z, plan covering tomorrow {planned:%H:%M}Z ({planned - release} after); "
        f"{len(plans)} plans ({len(during_late)} while late); {len(charging)} min charging, {len(held)} min holding"
    )
