"""The executor, its request limiter and the watchdog when the wall clock steps under them (NTP, a user).

Durations (the request window, a retry's back-off, the manual mode's lease, the watchdog's silence limit) keep
their length across a step; the decision loop goes on deciding and heartbeating in the new time. On a fixed
clock: ``set``/``advance`` are time passing, ``step`` (and ``set`` to an earlier time) an NTP step.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from services.executor.config import WatchdogSettings
from services.executor.journal import DB_NAME, Journal
from services.executor.limiter import MAX_BLOCK_S, RateLimiter
from services.executor.netzero import NetZeroClient
from services.executor.watchdog import Watchdog
from shared.bus import Incoming
from shared.clock import FixedClock
from shared.logging import get_logger
from shared.models import Action, ExecutorMode, Heartbeat
from sim.netzero import NetZeroSim
from tests.executor.support import SITE, TOKEN, utc
from tests.executor.test_executor import PROFILES, T0, Rig
from tests.support.probe import Probe


@pytest.fixture
def rig(tmp_path: Path, broker) -> Iterator[Rig]:
    r = Rig(tmp_path, broker.port)
    yield r
    r.close()


# ----------------------------------------------------------------------------------------------- limiter


def test_a_step_back_does_not_keep_the_minutes_requests_counted_for_hours() -> None:
    """Before: the window held wall times, so after a 9 h step back the four requests stayed "in the last minute"
    for 9 h: no NetZero read or write (nor the watchdog's restore) meanwhile."""
    clock = FixedClock(T0)
    limiter = RateLimiter(clock, 4)
    assert all(limiter.try_acquire() for _ in range(4))
    clock.set(T0 - timedelta(hours=9))
    assert limiter.available() == 0  # still the same real minute
    clock.advance(61)
    assert limiter.available() == 4


def test_a_step_forward_does_not_forget_requests_the_server_still_counts() -> None:
    clock = FixedClock(T0)
    limiter = RateLimiter(clock, 4)
    assert all(limiter.try_acquire() for _ in range(4))
    clock.step(timedelta(hours=6))
    assert limiter.available() == 0 and not limiter.try_acquire()
    assert 59 <= limiter.next_free_in() <= 60
    clock.advance(60)
    assert limiter.available() == 4


def test_a_429_reset_hours_ahead_blocks_for_at_most_max_block() -> None:
    """A reset time hours away is a clock disagreement with the server, not a rate limit."""
    clock = FixedClock(T0)
    limiter = RateLimiter(clock, 4)
    limiter.block_until(T0 + timedelta(hours=9))
    assert limiter.available() == 0 and limiter.next_free_in() == MAX_BLOCK_S
    clock.advance(MAX_BLOCK_S)
    assert limiter.available() == 4
    limiter.block_until(clock.now() + timedelta(seconds=30))  # an ordinary one is kept as it is
    clock.step(timedelta(hours=-9))
    assert limiter.available() == 0
    clock.advance(30)
    assert limiter.available() == 4


# ----------------------------------------------------------------------------------------------- executor


def test_the_decision_loop_goes_on_after_a_step_back(rig: Rig, probe: Probe) -> None:
    """Before: the loop waited for ``now + 60 s`` reckoned before the step, 9 h away after it: no decision and no
    heartbeat for 9 h (the watchdog would restore the baseline behind a live executor)."""
    stop = threading.Event()
    loop = threading.Thread(target=rig.executor.run_forever, args=(stop,), daemon=True)
    loop.start()
    try:
        probe.wait_json("batsched/executor/applied", timeout=10)
        back = T0 - timedelta(hours=9)
        mark = probe.mark()
        rig.clock.set(back)
        hb = probe.wait_json(
            "batsched/executor/heartbeat", lambda d: d["generated_at"] == "2024-01-14T16:00:00Z", 5, mark
        )
        assert hb["seq"] >= 2
        probe.wait_json("batsched/executor/applied", lambda d: d["generated_at"].startswith("2024-01-14T16"), 5, mark)
        state = probe.wait_json("batsched/battery/state", lambda d: d["observed_at"].startswith("2024-01-14"), 5, mark)
        assert state["generated_at"] == back.isoformat().replace("+00:00", "Z")
    finally:
        stop.set()
        rig.executor.wake.set()  # a fixed clock never ends a wait by itself
        loop.join(10)


def test_a_retry_waits_its_back_off_not_the_wall_clock(tmp_path: Path, broker) -> None:
    """A charge command the gateway drops is sent again after the back-off (120 s): a 3 min step back must not
    stretch that to 5 min (nor a 9 h one to 9 h)."""
    rig = Rig(tmp_path, broker.port, sim_kwargs={"drop_rate": 1.0})
    try:
        rig.plan(charge=[T0 + timedelta(minutes=30), T0 + timedelta(minutes=60)])
        rig.executor.tick()  # 01:00: the baseline, nothing to send
        first = rig.tick(35)  # 01:35, in a charge slot: sent, dropped
        assert first.action == Action.CHARGE and first.outcome == "mismatch"
        rig.clock.step(timedelta(minutes=-3))
        assert rig.tick(1).outcome == "deferred"  # 01:33, 60 s into the back-off
        again = rig.tick(1)  # 01:34, 120 s after the first try
        assert again.outcome == "mismatch" and again.sent is not None, again.rules
        assert len(rig.writes()) == 2
    finally:
        rig.close()


@pytest.mark.parametrize("step", [timedelta(hours=-9), timedelta(hours=6)], ids=["back", "forward"])
def test_a_manual_mode_lasts_its_lease_across_a_step(rig: Rig, step: timedelta) -> None:
    """``force_charge`` set by hand reverts to auto after ``manual_lease_s`` (2 h) of real time. Before: a 9 h step
    back made it 11 h, a 6 h step forward ended it at once."""
    rig.executor.tick()
    rig.executor.on_mode_set("force_charge")
    rig.clock.step(step)
    rig.tick(1)
    assert rig.executor.mode == ExecutorMode.FORCE_CHARGE
    rig.tick(118)
    assert rig.executor.mode == ExecutorMode.FORCE_CHARGE
    rig.tick(2)
    assert rig.executor.mode == ExecutorMode.AUTO
    assert rig.executor.journal.get("mode") == "auto"


# ----------------------------------------------------------------------------------------------- watchdog


def watchdog(rig: Rig) -> Watchdog:
    settings = WatchdogSettings(
        mqtt_port=rig.settings.mqtt_port, data_dir=rig.settings.data_dir, watchdog_timeout_s=180
    )
    client = NetZeroClient(rig.sim.base_url, TOKEN, SITE, rig.clock, RateLimiter(rig.clock, 4))
    return Watchdog(settings, rig.clock, rig.bus, Journal(rig.settings.data_dir / DB_NAME), client, get_logger("wd"))


def heartbeat(rig: Rig, retain: bool = False, age: timedelta = timedelta(0)) -> Incoming:
    hb = Heartbeat(generated_at=rig.clock.now() - age, seq=1, forced=True)
    return Incoming("batsched/executor/heartbeat", hb.to_json(), retain, hb)


def charging(rig: Rig) -> None:
    rig.plan(charge=[T0])
    assert rig.executor.tick().outcome == "applied"
    assert rig.executor.journal.forced() is not None


def test_a_step_forward_does_not_make_a_fresh_heartbeat_look_hours_old(rig: Rig, probe: Probe) -> None:
    """Before: the silence was ``now - last heartbeat`` in wall time, 6 h after a 6 h step, and the lease looked
    6 h over: the watchdog restored the baseline under a healthy executor (which then forced the charge again).
    Now both are counted on the monotonic clock: the lease backstop still fires, 180 s after the lease was seen
    over, when the executor heartbeats but never renews it."""
    charging(rig)
    dog = watchdog(rig)
    dog.on_heartbeat(heartbeat(rig))
    rig.clock.step(timedelta(hours=6))  # the lease (to 01:32) now looks hours over
    assert dog.check() == "watching"
    rig.clock.advance(150)
    dog.on_heartbeat(heartbeat(rig))
    rig.clock.advance(29)
    assert dog.check() == "watching"
    rig.clock.advance(2)
    assert dog.check() == "restored"
    report = probe.wait_json("batsched/executor/watchdog", lambda d: d["state"] == "restored")
    assert "lease" in report["detail"]


def test_after_a_step_back_silence_is_still_noticed(rig: Rig) -> None:
    """Before: the last heartbeat lay 9 h in the future, so the executor could die and nobody would restore for
    9 h."""
    charging(rig)
    dog = watchdog(rig)
    dog.on_heartbeat(heartbeat(rig))
    rig.clock.set(T0 - timedelta(hours=9))
    assert dog.check() == "watching"
    rig.clock.advance(181)
    assert dog.check() == "restored"
    cfg = rig.sim.state()["config"]
    assert cfg["operational_mode"] == "self_consumption" and cfg["grid_charging"] is False


def test_a_retained_heartbeat_found_at_start_is_as_old_as_it_says(rig: Rig) -> None:
    """The one wall-time comparison left (two processes): a watchdog (re)started after the executor died."""
    charging(rig)
    dog = watchdog(rig)
    dog.on_heartbeat(heartbeat(rig, retain=True, age=timedelta(minutes=10)))
    assert dog.check() == "restored"
    fresh = watchdog(rig)
    charging_again = rig.tick(1)
    assert charging_again.action == Action.CHARGE
    fresh.on_heartbeat(heartbeat(rig, retain=True, age=timedelta(hours=-9)))  # from before a step back
    assert fresh.check() == "watching"


# ----------------------------------------------------------------------------------------------- simulator


def test_the_simulated_powerwall_carries_on_after_a_step_back() -> None:
    """The simulator shares the clock: after a step back it runs from the new time (before: it stood still, 9 h
    ahead, answering 429 once its rate window filled) and a pending change still lands after its delay."""
    clock = FixedClock(utc(2024, 1, 15, 10, 0))
    sim = NetZeroSim(clock, TOKEN, SITE, apply_delay_s=20, profiles=PROFILES, rate_limit=5)
    status, _, _ = sim.handle(
        "POST",
        f"/api/v1/{SITE}/config",
        {"authorization": f"Bearer {TOKEN}"},
        b'{"operational_mode": "backup"}',
    )
    assert status == 200
    clock.set(utc(2024, 1, 15, 1, 0))
    for _ in range(4):
        status, _, _ = sim.handle("GET", f"/api/v1/{SITE}/config", {"authorization": f"Bearer {TOKEN}"}, b"")
        assert status == 200
    assert sim.state_doc()["now"] == utc(2024, 1, 15, 1, 0).isoformat()
    assert sim.config["operational_mode"] == "self_consumption"
    clock.advance(21)
    sim.advance()
    assert sim.config["operational_mode"] == "backup"
    clock.advance(60)
    status, _, _ = sim.handle("GET", f"/api/v1/{SITE}/config", {"authorization": f"Bearer {TOKEN}"}, b"")
    assert status == 200
