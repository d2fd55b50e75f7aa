"""Injectable clocks: real, fixed (tests move it by hand) and simulated (the demo runs a day in minutes).

Every service reads time only through a ``Clock``. Waiting also goes through the clock so a simulated clock
shortens waits by its speed and a fixed clock wakes waiters when a test advances it.
"""

from __future__ import annotations

import threading
import time as _time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware, in UTC."""

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Wait ``seconds`` of this clock's time, or until ``stop`` is set. True if stopped."""


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        return stop.wait(max(0.0, seconds))


class SimClock:
    """Runs ``speed`` times faster than real time from ``start``, anchored at real instant ``origin``.

    Several processes given the same start, origin and speed agree on the time without talking to each other.
    """

    def __init__(self, start: datetime, speed: float = 60.0, origin: float | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock start must be timezone-aware")
        if speed <= 0:
            raise ValueError("SimClock speed must be positive")
        self.start = start.astimezone(UTC)
        self.speed = speed
        self.origin = _time.time() if origin is None else origin

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(_time.time() - self.origin) * self.speed)

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        return stop.wait(max(0.0, seconds) / self.speed)


class FixedClock:
    """Stands still until a test calls ``set`` or ``advance``; waiters wake when their time is reached."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._cond = threading.Condition()

    def now(self) -> datetime:
        with self._cond:
            return self._now

    def set(self, t: datetime) -> None:
        if t.tzinfo is None:
            raise ValueError("FixedClock.set needs an aware datetime")
        with self._cond:
            self._now = t.astimezone(UTC)
            self._cond.notify_all()

    def advance(self, delta: timedelta | float) -> None:
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        with self._cond:
            self._now += step
            self._cond.notify_all()

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        return self.wait_until(self.now() + timedelta(seconds=max(0.0, seconds)), stop)

    def wait_until(self, deadline: datetime, stop: threading.Event) -> bool:
        """Wait until the clock reaches the absolute ``deadline`` (a jump past it wakes the waiter at once)."""
        with self._cond:
            while self._now < deadline:
                if stop.is_set():
                    return True
                # Poll the stop event too: it is not tied to our condition.
                self._cond.wait(timeout=0.05)
        return stop.is_set()


def wait_until(clock: Clock, deadline: datetime, stop: threading.Event) -> bool:
    """Wait until ``clock`` reaches the absolute ``deadline``, or ``stop`` is set (then True).

    Loops that schedule by absolute instants use this rather than ``wait(seconds)``: a relative wait computed from
    a ``now`` read a moment earlier overshoots when the clock jumps in between (a test moving a ``FixedClock``)."""
    exact = getattr(clock, "wait_until", None)
    if exact is not None:
        return bool(exact(deadline, stop))
    while not stop.is_set():
        remaining = (deadline - clock.now()).total_seconds()
        if remaining <= 0:
            return False
        if clock.wait(remaining, stop):
            return True
    return True
