"""Upstream faults on the simulated system (slow; ``make soak``): NetZero 500/403/429,
Octopus 500 and CDN 403 HTML, Open-Meteo outage. Each: the service stays up, the bus says what went wrong, the
last good data stays published, the request budget holds, and nothing is left forced on the battery."""

from __future__ import annotations

import json

import pytest

from tests.reliability import docs
from tests.reliability.system import failure_lines, module_runnable
from tests.reliability.world import System
from tests.support.probe import Probe

pytestmark = pytest.mark.slow


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
