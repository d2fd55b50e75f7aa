"""Issue 20: the executor against a NetZero whose state changes under its feet (the simulator's hostile mode), on a
real broker. Each decision is driven by hand on a fixed clock (``tick``), except where the point is that the loop
wakes by itself (an input that forbids the active charge).

- a charge or hold is sent only right after a read that showed the grid up and no storm watch;
- the write's own response is read: off-grid or storm watch is ``grid_down_after_write``, the forced state stays
  in the journal, nothing more is sent until a read shows the grid back, and then it is decided on at once;
- the baseline is the user's own configuration; one NetZero cannot restore forces nothing and raises the alert;
- a price, limit, peak, mode or plan expiry that forbids the active charge stops it within 5 s;
- 429 and 403 are said as they are; 403 backs off up to 15 min with an alert, cleared by the next good answer.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.executor.__main__ import subscribe
from shared.models import Action, ExecutorAlert, PowerwallConfig
from sim.netzero import NetZeroSim
from tests.executor.support import (
    SITE,
    TOKEN,
    SimServer,
    current_rate,
    make_plan,
    make_rates,
    sim_clock_env,
    utc,
    wait_sim_time,
    wait_until,
)
from tests.executor.test_executor import PROFILES, T0, Rig

CHARGE = {"operational_mode": "backup", "grid_charging": True}
USER_95 = {"operational_mode": "backup", "backup_reserve_percent": 95, "grid_charging": True}


@pytest.fixture
def rig(tmp_path: Path, broker) -> Iterator[Rig]:
    r = Rig(tmp_path, broker.port)
    yield r
    r.close()


def requests(rig: Rig) -> list[dict[str, Any]]:
    return rig.sim.log()["requests"]


def rule(applied, name: str):
    return next(r for r in applied.rules if r.rule == name)


# ------------------------------------------------------------------------------ a fresh read before every charge


def test_a_plan_arriving_after_a_read_is_acted_on_only_after_a_fresh_read(rig: Rig) -> None:
    """Before: a decision woken by a new plan reused a read up to 29 s old and charged on it."""
    assert rig.executor.tick().outcome == "unchanged"  # 01:00:00, read
    rig.clock.advance(20)
    rig.plan(charge=[T0])  # the planner's new plan, 20 s later: woken early
    applied = rig.executor.tick()
    assert applied.action == Action.CHARGE and applied.outcome == "applied"
    log = requests(rig)
    assert [(r["method"], r["t"]) for r in log] == [
        ("GET", T0.isoformat()),
        ("GET", (T0 + timedelta(seconds=20)).isoformat()),  # read again in the same decision …
        ("POST", (T0 + timedelta(seconds=20)).isoformat()),  # … and the charge sent right after it
    ]
    assert rule(applied, "fresh_read").verdict == "pass"


def test_storm_watch_that_came_on_after_the_last_read_stops_the_charge_before_it_is_sent(rig: Rig) -> None:
    """The issue's case: storm watch came on 5-25 s before a new plan arrived."""
    assert rig.executor.tick().outcome == "unchanged"
    rig.clock.advance(8)
    rig.sim.control(storm=True)
    rig.clock.advance(12)
    rig.plan(charge=[T0])
    applied = rig.executor.tick()
    assert applied.outcome == "stood_aside" and "storm watch" in rule(applied, "off_grid").detail
    rig.clock.advance(15)
    rig.executor.on_plan(make_plan(rig.clock.now(), T0, 4, charge=[T0], plan_id="p2"))
    assert rig.executor.tick().outcome == "stood_aside"  # a read that showed storm watch is never reused
    assert rig.writes() == [] and [r["method"] for r in requests(rig)] == ["GET", "GET", "GET"]
    rig.sim.control(storm=False)
    rig.clock.advance(30)  # 01:01:05: the first read has left the request window
    rig.executor.on_plan(make_plan(rig.clock.now(), T0, 4, charge=[T0], plan_id="p3"))
    assert rig.executor.tick().outcome == "applied"  # read again: the grid is fine, the charge goes
    assert [r["method"] for r in requests(rig)][-2:] == ["GET", "POST"]


def test_a_fresh_read_and_the_write_that_do_not_both_fit_make_the_write_wait(rig: Rig) -> None:
    assert rig.executor.tick().outcome == "unchanged"
    for _ in range(2):  # the budget: 3 of our 4 requests this minute used
        rig.executor.client.get()
    rig.clock.advance(20)
    rig.plan(charge=[T0])
    waited = rig.executor.tick()
    assert waited.outcome == "deferred" and waited.action == Action.CHARGE and rig.writes() == []
    detail = rule(waited, "fresh_read").detail
    assert "do not both fit" in detail and "the write waits" in detail, detail
    assert len(requests(rig)) == 3  # no read that could not be followed by its write
    assert rig.executor.budget_wait_s == pytest.approx(40)  # decided again when two requests are free
    rig.clock.advance(40)
    assert rig.executor.tick().outcome == "applied"
    assert [r["method"] for r in requests(rig)][-2:] == ["GET", "POST"]
    assert rig.sim.log()["max_per_minute"] <= 4


# ------------------------------------------------------------------------------ the write's own response


@pytest.mark.parametrize(
    ("event", "said"),
    [
        ({"on": "after_get", "set": {"grid_outage": True}}, "grid down or islanded"),  # between the read and the write
        ({"on": "before_post", "set": {"storm": True}}, "storm watch active"),  # in the write's response
    ],
    ids=["grid-down-between-read-and-write", "storm-in-the-response"],
)
def test_a_write_whose_response_shows_the_grid_down_is_not_applied_and_handed_back_when_it_is_up(
    rig: Rig, probe, event: dict, said: str
) -> None:
    rig.plan(charge=[T0])
    rig.sim.control(events=[event])
    applied = rig.executor.tick()
    assert applied.outcome == "grid_down_after_write" and applied.sent is not None
    assert said in applied.error and "nothing more is sent" in applied.error
    on_bus = probe.wait_json("batsched/executor/applied", lambda d: d["decision_id"] == applied.decision_id)
    assert on_bus["outcome"] == "grid_down_after_write"
    assert rig.executor.journal.forced() is not None  # what was sent may be in force: ours to hand back
    assert probe.wait_json("batsched/executor/heartbeat", lambda d: d["forced"])
    assert [c["status"] for c in rig.executor.journal.commands()] == ["grid_down"]
    rig.plan(charge=[])  # meanwhile the plan no longer wants the charge …
    during = [rig.tick(1) for _ in range(3)]
    assert {a.outcome for a in during} == {"stood_aside"} and len(rig.writes()) == 1  # … but nothing is sent
    rig.sim.control(grid_outage=False, storm=False)
    back = rig.tick(1)  # the first read that shows the grid back is decided on at once
    assert back.action == Action.SELF_USE and back.outcome == "applied"
    assert [r["method"] for r in requests(rig)][-2:] == ["GET", "POST"]
    assert rig.sim.state()["config"]["grid_charging"] is False and rig.executor.journal.forced() is None


def test_a_charge_the_plan_still_wants_is_kept_when_the_grid_is_back(rig: Rig) -> None:
    rig.plan(charge=[T0, utc(2024, 1, 15, 1, 30)])
    rig.sim.control(events=[{"on": "before_post", "set": {"grid_outage": True}}])
    assert rig.executor.tick().outcome == "grid_down_after_write"
    assert rig.tick(1).outcome == "stood_aside"
    rig.sim.control(grid_outage=False)
    kept = rig.tick(1)
    assert kept.action == Action.CHARGE and kept.outcome == "unchanged"  # already charging: nothing to send
    assert rig.executor.journal.forced().lease_until > rig.clock.now()  # the lease is renewed
    assert len(rig.writes()) == 1


# ------------------------------------------------------------------------------ the user's own baseline


def test_a_users_reserve_of_95_is_their_baseline_forces_nothing_and_raises_the_alert(tmp_path, broker, probe) -> None:
    rig = Rig(tmp_path, broker.port, sim_kwargs={"config": USER_95})
    try:
        assert rig.executor.tick().outcome == "unchanged"
        assert rig.executor.journal.baseline() == PowerwallConfig(
            operational_mode="backup", backup_reserve_pct=95, grid_charging=True, energy_exports="pv_only"
        )
        alert = ExecutorAlert.model_validate(probe.wait_json("batsched/executor/alert"))
        assert alert.code == "baseline_unrestorable" and "95%" in alert.message and "Tesla app" in alert.message
        rig.plan(charge=[], hold=[utc(2024, 1, 15, 1, 30)])
        held = rig.tick(31)  # a hold would turn grid charging off, and 95 % could not come back exactly
        assert held.requested_action == Action.HOLD and held.action == Action.SELF_USE
        assert rule(held, "baseline").verdict == "blocked"
        assert rig.writes() == [] and rig.sim.state()["config"]["backup_reserve_percent"] == 95
        rig.sim.control(config={"backup_reserve_percent": 100})  # the user follows the alert's advice
        assert rig.tick(1).action == Action.HOLD  # their new baseline can be restored: the hold goes
        assert probe.wait_json("batsched/executor/alert", lambda d: d["code"] == "ok")
        assert [w["body"] for w in rig.writes()] == [{"grid_charging": False}]
    finally:
        rig.close()


def test_accepting_the_nearest_reserve_lets_it_charge_and_hands_back_what_can_be(tmp_path, broker, probe) -> None:
    user = {"operational_mode": "self_consumption", "backup_reserve_percent": 90, "grid_charging": False}
    rig = Rig(tmp_path, broker.port, sim_kwargs={"config": user}, baseline_accept_nearest_reserve=True)
    try:
        rig.plan(charge=[T0])
        assert rig.executor.tick().outcome == "applied"
        assert probe.wait_json("batsched/executor/alert")["code"] == "ok"
        rig.plan(charge=[])
        assert rig.tick(1).outcome == "applied"
        assert [w["body"] for w in rig.writes()] == [
            CHARGE,
            {"operational_mode": "self_consumption", "grid_charging": False},  # the reserve was never touched
        ]
        assert rig.sim.state()["config"]["backup_reserve_percent"] == 90
    finally:
        rig.close()


def test_a_change_the_user_makes_between_charges_is_what_they_get_back(rig: Rig) -> None:
    rig.plan(charge=[utc(2024, 1, 15, 1, 30)])
    assert rig.executor.tick().outcome == "unchanged"
    rig.sim.control(config={"backup_reserve_percent": 35, "energy_exports": "battery_ok"})  # in the Tesla app
    assert rig.tick(29).outcome == "unchanged"  # 01:29: not ours, left alone
    assert rig.tick(2).outcome == "applied"  # 01:31: charge
    assert rig.tick(31).outcome == "applied"  # 02:02: handed back
    cfg = rig.sim.state()["config"]
    assert (cfg["backup_reserve_percent"], cfg["energy_exports"], cfg["operational_mode"]) == (
        35,
        "battery_ok",
        "self_consumption",
    )


# ------------------------------------------------------------------------------ reasons: 429 and 403


def test_a_429_with_retry_after_is_said_with_its_wait_and_end(rig: Rig) -> None:
    rig.plan(charge=[T0])
    rig.sim.control(api_error={"status": 429, "retry_after_s": 120, "methods": ["POST"], "html": False, "count": 1})
    failed = rig.executor.tick()
    assert failed.outcome == "failed" and "Retry-After 120 s" in failed.error
    waiting = rig.tick(0.5)
    assert waiting.outcome == "deferred"
    detail = rule(waiting, "budget").detail
    assert "NetZero answered HTTP 429 and asked us to wait (Retry-After 120 s)" in detail, detail
    assert "no request before 01:02:00 UTC (in 90s)" in detail, detail
    assert "budget used for this minute" not in detail
    rig.clock.advance(90)
    assert rig.executor.tick().outcome == "applied"


def test_a_403_storm_backs_off_to_15_minutes_raises_the_alert_and_recovers(rig: Rig, probe) -> None:
    rig.sim.control(api_error={"status": 403, "html": False})
    mark = probe.mark()
    for _ in range(51):  # 50 minutes of decisions, one a minute
        assert rig.executor.tick() is None  # nothing could ever be read: nothing to decide on
        rig.clock.advance(60)
    log = requests(rig)
    assert {r["status"] for r in log} == {403}
    times = [datetime.fromisoformat(r["t"]) for r in log]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    print(f"403 storm: {len(log)} requests in 50 minutes, gaps {gaps} s")
    assert gaps == [60, 120, 240, 480, 900, 900]  # not every 60 s: 1, 2, 4, 8, then 15 min
    alert = ExecutorAlert.model_validate(
        probe.wait_json("batsched/executor/alert", lambda d: d["code"] == "netzero_refused", after=mark)
    )
    assert "HTTP 403" in alert.message and "BATSCHED_NETZERO_API_KEY" in alert.message
    assert "next try at" in alert.message and "15 min" in alert.message
    assert probe.wait_json("batsched/executor/heartbeat")  # alive and saying so meanwhile
    rig.sim.control(api_error=None)  # the user fixes the token
    due = times[-1] + timedelta(seconds=900)
    rig.clock.set(due - timedelta(seconds=1))
    rig.executor.tick()
    assert len(requests(rig)) == len(log)  # still backing off
    rig.clock.set(due)
    assert rig.executor.tick().outcome == "unchanged"  # the first good answer …
    assert probe.wait_json("batsched/executor/alert", lambda d: d["code"] == "ok", after=mark)  # … clears it
    assert rig.executor.client.refusals == 0


# ------------------------------------------------------------------------------ inputs that forbid the charge


class Loop:
    """The executor's own decision loop on a thread, its inputs from the broker (as in the service). The clock is
    fixed: the regular next decision never comes by itself, so a decision after an input proves the wake-up."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.stop = threading.Event()
        subscribe(rig.executor, rig.bus)
        self.thread = threading.Thread(target=rig.executor.run_forever, args=(self.stop,), daemon=True)

    def __enter__(self) -> Loop:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.rig.executor.wake.set()
        self.thread.join(10)


def hand_back_after(rig: Rig, act) -> float:
    """Real seconds from ``act()`` to the hand-back POST in the simulator's log."""
    writes = len(rig.writes())
    started = time.monotonic()
    act()
    wait_until(lambda: len(rig.writes()) > writes, 10, "the hand-back POST")
    took = time.monotonic() - started
    assert rig.writes()[-1]["body"]["grid_charging"] is False
    return took


@pytest.mark.parametrize(
    "trigger",
    ["current-price", "planner-limit", "planner-peak", "mode-off", "plan-expiry"],
)
def test_an_input_that_forbids_the_charge_hands_back_within_5_s(rig: Rig, probe, trigger: str) -> None:
    expires = T0 + timedelta(seconds=30)  # sooner than the next regular decision (60 s)
    plan = make_plan(T0, T0, 4, charge=[T0, utc(2024, 1, 15, 1, 30)], valid_until=expires)
    rates = make_rates(T0, T0, 4, lambda s: 0.05)
    probe.publish("batsched/pricing/import/rates", rates.model_dump_json(), retain=True)
    probe.publish("batsched/planner/plan", plan.model_dump_json(), retain=True)
    loop = Loop(rig)
    # Both in before the loop starts, so that no wake-up from them is pending when the input under test comes.
    wait_until(lambda: rig.executor.plan and rig.executor.rates, 10, "the retained plan and prices")
    with loop:
        wait_until(lambda: rig.sim.state()["config"]["grid_charging"], 10, "the charge to start")
        acts = {
            "current-price": lambda: probe.publish(
                "batsched/pricing/import/current", current_rate(T0, T0, 0.35).model_dump_json(), retain=True
            ),
            "planner-limit": lambda: probe.publish("batsched/planner/max_charge_price_gbp", "0.03", retain=True),
            "planner-peak": lambda: [
                probe.publish("batsched/planner/peak_start_local", "00:30", retain=True),
                probe.publish("batsched/planner/peak_end_local", "03:00", retain=True),
            ],
            "mode-off": lambda: probe.publish("batsched/executor/mode/set", "off"),
            "plan-expiry": lambda: rig.clock.set(expires),
        }
        took = hand_back_after(rig, acts[trigger])
    print(f"{trigger}: hand-back POST {took:.2f} s after the input")
    assert took < 5.0
    assert len(rig.writes()) == 2 and rig.executor.journal.forced() is None


# ------------------------------------------------------------------------------ as a new user would see it


def test_a_user_baseline_of_95_backup_and_grid_charging_gets_no_write_in_an_hour_and_the_alert(probe, spawn) -> None:
    """The issue's case 2 with the real service process: the Powerwall starts with the user's own reserve of 95 %,
    backup mode and grid charging on; no plan at all. Before: the first decision POSTed a reserve of 80 %."""
    clock, clock_env = sim_clock_env(T0, 600.0)
    sim = SimServer(NetZeroSim(clock, TOKEN, SITE, apply_delay_s=0, profiles=PROFILES, config=USER_95))
    try:
        env = {**clock_env, **sim.env(), "BATSCHED_DECISION_INTERVAL_S": "60"}
        spawn("services.executor", env=env, name="executor")
        alert = ExecutorAlert.model_validate(probe.wait_json("batsched/executor/alert", timeout=20))
        assert alert.code == "baseline_unrestorable", alert
        assert "95%" in alert.message and "80% or 100% in the Tesla app" in alert.message
        entity = probe.wait_json("homeassistant/binary_sensor/batsched_executor/executor_problem/config", timeout=5)
        assert entity["device_class"] == "problem" and entity["state_topic"] == "batsched/executor/alert"
        first = datetime.fromisoformat(probe.wait_json("batsched/executor/applied", timeout=20)["generated_at"])
        wait_sim_time(clock, first + timedelta(hours=1), timeout=60)  # an hour from its first decision
        decisions = [m.json() for m in probe.on("batsched/executor/applied")]
        log = sim.log()
        print(f"an hour at 600x: {len(decisions)} decisions, {log['request_count']} requests, {log['writes']} writes")
        assert len(decisions) >= 50  # it was deciding all along (one a minute)
        assert log["writes"] == 0 and {d["outcome"] for d in decisions} == {"unchanged"}
        assert {k: sim.state()["config"][k] for k in USER_95} == USER_95
        assert probe.latest("batsched/executor/alert").json()["code"] == "baseline_unrestorable"  # still said
    finally:
        sim.stop()
