"""Manual windows: admitted or refused with the reason, kept across restarts, expired when over, enforced by the
executor through every safety rule, listed and changed over MQTT and the dashboard, and planned around."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from services.executor.decide import DecisionInputs, decide
from services.executor.rules import RuleConfig
from services.executor.windows import WindowBoard, WindowRefused, WindowStore, check_new
from services.planner.optimiser import plan
from shared.clock import RealClock
from shared.models import (
    Action,
    BatteryState,
    ExecutorMode,
    GridStatus,
    ManualWindow,
    PlannerSettings,
    PowerwallConfig,
    Reason,
    WindowList,
)
from shared.peak import PeakWindow
from shared.slots import SLOT
from tests.dashboard.helpers import InProcess, settings
from tests.executor.support import (
    SimServer,
    current_rate,
    make_plan,
    make_rates,
    sim_clock_env,
    utc,
    wait_sim_time,
    wait_until,
)
from tests.planner.helpers import battery, forecast, rates

LONDON = ZoneInfo("Europe/London")
PEAK = PeakWindow.parse("16:00", "19:00", LONDON)
CFG = RuleConfig(tz=LONDON)
BASE = PowerwallConfig(operational_mode="self_consumption", backup_reserve_pct=20, grid_charging=False)


def window(start: datetime, hours: float, action: str = "charge", target: float | None = 80.0, wid: int = 1):
    return ManualWindow(window_id=wid, start=start, end=start + timedelta(hours=hours), action=action,
                        target_soc_pct=target)  # fmt: skip


# ------------------------------------------------------------------ admission


def test_a_charge_window_in_the_peak_is_refused_with_the_reason() -> None:
    now = utc(2024, 1, 15, 10, 0)
    with pytest.raises(WindowRefused, match="overlaps the peak 16:00–19:00 local"):
        check_new(utc(2024, 1, 15, 15, 30), utc(2024, 1, 15, 16, 30), "charge", None, [], now, PEAK, LONDON)
    check_new(utc(2024, 1, 15, 15, 0), utc(2024, 1, 15, 16, 0), "charge", None, [], now, PEAK, LONDON)  # just before
    check_new(utc(2024, 1, 15, 16, 0), utc(2024, 1, 15, 17, 0), "hold", None, [], now, PEAK, LONDON)  # hold may


@pytest.mark.parametrize(
    ("day", "peak_utc"),
    [((2024, 3, 31), (15, 18)), ((2024, 10, 27), (16, 19))],  # spring forward: the peak is 15-18 UTC; autumn: 16-19
)
def test_peak_refusal_on_clock_change_days(day: tuple[int, int, int], peak_utc: tuple[int, int]) -> None:
    now = utc(*day, 0, 0)
    start, end = peak_utc
    with pytest.raises(WindowRefused, match="peak"):
        check_new(utc(*day, start, 0), utc(*day, start, 30), "charge", None, [], now, PEAK, LONDON)
    with pytest.raises(WindowRefused, match="peak"):
        check_new(utc(*day, end - 1, 30), utc(*day, end, 0), "charge", None, [], now, PEAK, LONDON)
    check_new(utc(*day, end, 0), utc(*day, end, 30), "charge", None, [], now, PEAK, LONDON)
    check_new(utc(*day, start - 1, 0), utc(*day, start, 0), "charge", None, [], now, PEAK, LONDON)


def test_other_refusals() -> None:
    now = utc(2024, 1, 15, 10, 0)
    cases = [
        (utc(2024, 1, 15, 9), utc(2024, 1, 15, 9, 30), "is over already"),
        (utc(2024, 1, 15, 12), utc(2024, 1, 15, 11), "ends before it starts"),
        (utc(2024, 1, 15, 20), utc(2024, 1, 16, 21), "at most 24 hours"),
        (utc(2024, 2, 15, 1), utc(2024, 2, 15, 2), "at most 14 days ahead"),
        (utc(2024, 1, 16, 1, 30), utc(2024, 1, 16, 2, 30), "overlaps window 7"),
    ]
    taken = [window(utc(2024, 1, 16, 1), 1, wid=7)]
    for start, end, why in cases:
        with pytest.raises(WindowRefused, match=why):
            check_new(start, end, "charge", None, taken, now, PEAK, LONDON)
    with pytest.raises(WindowRefused, match="outside the allowed 10–95%"):
        check_new(utc(2024, 1, 16, 3), utc(2024, 1, 16, 4), "charge", 99, taken, now, PEAK, LONDON, (10, 95))


def test_windows_are_kept_across_restarts_and_expire(tmp_path: Path) -> None:
    path = tmp_path / "Force_Charging.db"
    store = WindowStore(path)
    now = utc(2024, 1, 15, 10)
    a = store.add(utc(2024, 1, 15, 11), utc(2024, 1, 15, 12), "charge", 90.0, "mqtt", now)
    b = store.add(utc(2024, 1, 15, 13), utc(2024, 1, 15, 14), "hold", None, "dashboard", now)
    store.close()
    again = WindowStore(path)
    assert [w.window_id for w in again.pending()] == [a.window_id, b.window_id]
    assert again.expire(utc(2024, 1, 15, 12, 0)) == [a.window_id]
    assert [w.window_id for w in again.pending()] == [b.window_id]
    assert again.delete(b.window_id, now) and not again.delete(b.window_id, now) and again.pending() == []


# ------------------------------------------------------------------ the executor's decision


def inputs(
    now: datetime, w: ManualWindow | None, price: float | None = 0.10, soc: float = 40.0, **kw
) -> DecisionInputs:
    state = BatteryState(generated_at=now, observed_at=now, valid_until=now + timedelta(minutes=5), soc_pct=soc,
                         grid_status=GridStatus.ON_GRID, config=BASE)  # fmt: skip
    slot = now.replace(minute=0 if now.minute < 30 else 30, second=0)
    p = make_plan(now, slot, 4)  # all self_use
    return DecisionInputs(now=now, mode=ExecutorMode.AUTO, baseline=BASE, plan=p, battery=state,
                          current_rate=current_rate(now, slot, price), window=w, **kw)  # fmt: skip


def test_a_window_is_asked_for_and_passes_every_rule() -> None:
    now = utc(2024, 1, 15, 2, 10)
    w = window(utc(2024, 1, 15, 2, 0), 1, target=80)
    d = decide(inputs(now, w), CFG)
    assert d.source == "window" and d.action == Action.CHARGE and d.target_soc_pct == 80
    assert d.rules[0].rule == "manual_window" and "manual window 1: charge to 80%" in d.rules[0].detail
    assert d.lease_until is not None and d.lease_until <= w.end
    assert d.change is not None and d.change.grid_charging is True
    hold = decide(inputs(now, window(utc(2024, 1, 15, 2, 0), 1, action="hold")), CFG)
    assert hold.action == Action.HOLD


def test_a_window_never_beats_a_safety_rule() -> None:
    w = window(utc(2024, 1, 15, 2, 0), 1)
    dear = decide(inputs(utc(2024, 1, 15, 2, 10), w, price=0.35), CFG)
    assert dear.action == Action.SELF_USE and any(
        r.rule == "price_limit" and r.verdict == "blocked" for r in dear.rules
    )
    unknown = decide(inputs(utc(2024, 1, 15, 2, 10), w, price=None), CFG)
    assert unknown.action == Action.SELF_USE
    # a window stored before the peak moved (the admission test used the old peak): the peak rule still blocks
    late = window(utc(2024, 1, 15, 16, 0), 1)
    peak = decide(inputs(utc(2024, 1, 15, 16, 10), late), CFG)
    assert peak.action == Action.SELF_USE and any(
        r.rule == "peak_window" and r.verdict == "blocked" for r in peak.rules
    )
    full = decide(inputs(utc(2024, 1, 15, 2, 10), w, soc=85.0), CFG)
    assert full.action == Action.HOLD  # target 80% reached: hold, never past it


def test_an_override_and_a_manual_mode_come_before_a_window() -> None:
    from services.executor.decide import Override

    now = utc(2024, 1, 15, 2, 10)
    w = window(utc(2024, 1, 15, 2, 0), 1)
    d = decide(inputs(now, w, override=Override(Action.HOLD, now + timedelta(minutes=30))), CFG)
    assert d.source == "override" and d.action == Action.HOLD


# ------------------------------------------------------------------ over MQTT, with the real board


def _tomorrow(hour: int, minute: int = 0) -> datetime:
    d = datetime.now(LONDON).date() + timedelta(days=1)
    return datetime(d.year, d.month, d.day, hour, minute, tzinfo=LONDON).astimezone(UTC)


def test_windows_over_mqtt_and_the_dashboard(board: WindowBoard, probe, tmp_path: Path, broker) -> None:
    t = "batsched/executor/cmd/window_add"
    start = _tomorrow(2)
    probe.publish(t, {"request_id": "w-1", "start": start.isoformat(), "end": (start + SLOT).isoformat(),
                      "action": "charge", "target_soc_pct": 90})  # fmt: skip
    ok = probe.wait_json(f"{t}/result", lambda d: d["request_id"] == "w-1")
    assert ok["status"] == "ok" and ok["data"]["window"]["window_id"] == 1
    listed = probe.wait_json("batsched/executor/windows", lambda d: len(d["windows"]) == 1)
    assert listed["windows"][0]["target_soc_pct"] == 90
    probe.publish(t, {"request_id": "w-2", "start": _tomorrow(16, 30).isoformat(),
                      "end": _tomorrow(17).isoformat(), "action": "charge"})  # fmt: skip
    refused = probe.wait_json(f"{t}/result", lambda d: d["request_id"] == "w-2")
    assert refused["status"] == "error" and "overlaps the peak 16:00–19:00" in refused["error"]
    probe.publish(t, {"request_id": "w-4", "start": _tomorrow(5).isoformat(), "end": _tomorrow(6).isoformat(),
                      "action": "charge", "target_soc_pct": 5})  # fmt: skip
    low = probe.wait_json(f"{t}/result", lambda d: d["request_id"] == "w-4")
    assert low["status"] == "ok" and low["data"]["window"]["target_soc_pct"] == 10  # a safety value: brought inside
    assert "target 5% becomes 10%" in low["data"]["note"]
    probe.publish("batsched/executor/cmd/window_delete", {"request_id": "w-5", "window_id": 2})
    probe.wait_json("batsched/executor/cmd/window_delete/result", lambda d: d["request_id"] == "w-5")
    probe.publish(t, {"request_id": "w-3", "start": "soon", "end": "later"})
    bad = probe.wait_json(f"{t}/result", lambda d: d["request_id"] == "w-3")
    assert bad["status"] == "error" and "invalid command" in bad["error"]

    # the dashboard (REST + Control page) on the same broker
    dash = InProcess(settings(tmp_path / "d", mqtt_port=broker.port, dashboard_command_timeout_s=5.0),
                     clock=RealClock())  # fmt: skip
    dash.bus.start()
    assert dash.bus.wait_connected(10)
    try:
        out = dash_control(dash).add_window(_tomorrow(3), _tomorrow(4), "hold", None, "dashboard")
        assert out.ok and out.data["window"]["action"] == "hold"
        wait_until(lambda: len(dash.live.get("executor/windows").doc["windows"]) == 2, 10, "two windows listed")
        refused = dash_control(dash).add_window(_tomorrow(17), _tomorrow(18), "charge", None, "dashboard")
        assert not refused.ok and refused.status == 502 and "peak" in refused.message
        gone = dash_control(dash).delete_window(1, "dashboard")
        assert gone.ok
        missing = dash_control(dash).delete_window(1, "dashboard")
        assert not missing.ok and "no pending window 1" in missing.message
        wait_until(lambda: len(dash.live.get("executor/windows").doc["windows"]) == 1, 10, "one window left")
    finally:
        dash.bus.stop()


def dash_control(dash: InProcess):
    from services.dashboard.control import Controller

    return Controller(dash.bus, dash.live, dash.clock, dash.settings.dashboard_command_timeout_s)


# ------------------------------------------------------------------ the executor as a process


def test_the_executor_charges_in_a_window_keeps_it_across_a_restart_and_expires_it(probe, spawn) -> None:
    from sim.netzero import NetZeroSim, Profiles
    from tests.executor.support import SITE, TOKEN

    start = utc(2024, 1, 15, 1, 0)
    clock, clock_env = sim_clock_env(start, 200.0)
    sim = SimServer(NetZeroSim(clock, TOKEN, SITE, apply_delay_s=0, profiles=Profiles(4.0)))
    try:
        env = {**clock_env, **sim.env(), "BATSCHED_DECISION_INTERVAL_S": "60"}
        probe.publish("batsched/pricing/import/rates", make_rates(start, start, 8, lambda s: 0.07).model_dump_json(),
                      retain=True)  # fmt: skip
        probe.publish("batsched/planner/plan", make_plan(start, start, 8).model_dump_json(), retain=True)
        proc = spawn("services.executor", env=env, name="executor-1")
        probe.wait_json("batsched/executor/applied", timeout=20)
        w_start, w_end = start + timedelta(minutes=20), start + timedelta(minutes=35)
        probe.publish("batsched/executor/cmd/window_add", {"request_id": "x", "start": w_start.isoformat(),
                      "end": w_end.isoformat(), "action": "charge", "target_soc_pct": 95})  # fmt: skip
        assert probe.wait_json("batsched/executor/cmd/window_add/result")["status"] == "ok"
        proc.terminate()
        mark = probe.mark()
        spawn("services.executor", env=env, name="executor-2")
        listed = probe.wait_json("batsched/executor/windows", lambda d: len(d["windows"]) == 1, after=mark)
        assert listed["windows"][0]["action"] == "charge"
        wait_sim_time(clock, w_start + timedelta(minutes=5), timeout=60)
        wait_until(lambda: sim.state()["config"]["grid_charging"], 30, "charging in the window")
        applied = probe.wait_json("batsched/executor/applied", lambda d: d["action"] == "charge", timeout=30)
        assert any(r["rule"] == "manual_window" for r in applied["rules"])
        wait_sim_time(clock, w_end + timedelta(minutes=3), timeout=60)
        probe.wait_json("batsched/executor/windows", lambda d: d["windows"] == [], timeout=30)
        wait_until(lambda: not sim.state()["config"]["grid_charging"], 30, "charging stopped after the window")
    finally:
        sim.stop()


# ------------------------------------------------------------------ the planner plans around them


def flat(kind: str, now: datetime, kwh: float) -> object:
    return forecast(kind, now, [kwh] * 96)


def test_the_planner_treats_windows_as_fixed() -> None:
    now = utc(2024, 1, 15, 12, 0)
    prices = rates(now, [0.30] * 48)
    dear_window = window(now + timedelta(hours=1), 1, target=90)  # 13:00-14:00 at 30p: the plan would not charge
    listed = WindowList(generated_at=now, windows=[dear_window])
    p = plan(prices, flat("pv", now, 0.0), flat("load", now, 0.5), battery(now, 30.0),
             PlannerSettings(max_charge_price_gbp=0.40), now, windows=listed)  # fmt: skip
    inside = [s for s in p.slots if dear_window.start <= s.start < dear_window.end]
    assert [s.action for s in inside] == [Action.CHARGE, Action.CHARGE]
    assert all(s.reason == Reason.MANUAL_WINDOW for s in inside) and inside[-1].expected_soc_pct > 40
    before = [s for s in p.slots if s.start < dear_window.start]
    assert all(s.action != Action.CHARGE for s in before)
    hold = window(now + timedelta(hours=3), 2, action="hold", target=None, wid=2)
    q = plan(prices, flat("pv", now, 0.0), flat("load", now, 0.5), battery(now, 60.0),
             PlannerSettings(), now, windows=WindowList(generated_at=now, windows=[hold]))  # fmt: skip
    held = [s for s in q.slots if hold.start <= s.start < hold.end]
    assert {s.action for s in held} == {Action.HOLD}
    socs = [s.expected_soc_pct for s in held]
    assert np.allclose(socs, socs[0]) and all(s.grid_import_kwh == pytest.approx(0.5, abs=1e-3) for s in held)
