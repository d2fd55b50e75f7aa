"""``shared.clock.wait_until`` (added for the pricing loops): absolute deadlines survive clock jumps."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from shared.clock import FixedClock, SimClock, wait_until

T0 = datetime(2023, 6, 12, 10, tzinfo=UTC)


def test_a_jump_past_the_deadline_wakes_the_waiter() -> None:
    clock, stop, woke = FixedClock(T0), threading.Event(), threading.Event()

    def waiter() -> None:
        if not wait_until(clock, T0 + timedelta(minutes=5), stop):
            woke.set()

    t = threading.Thread(target=waiter)
    t.start()
    clock.set(T0 + timedelta(hours=3))
    assert woke.wait(5)
    t.join(5)


def test_a_deadline_already_passed_returns_at_once_and_stop_is_reported() -> None:
    stop = threading.Event()
    assert wait_until(FixedClock(T0), T0 - timedelta(seconds=1), stop) is False
    stop.set()
    assert wait_until(FixedClock(T0), T0 + timedelta(hours=1), stop) is True
    assert wait_until(SimClock(T0, speed=3600), T0 + timedelta(hours=1), stop) is True


def test_a_simulated_clock_waits_scaled_real_time() -> None:
    clock = SimClock(T0, speed=3600)  # one simulated minute = 1/60 s
    assert wait_until(clock, clock.now() + timedelta(minutes=1), threading.Event()) is False
    assert clock.now() >= T0 + timedelta(minutes=1)
