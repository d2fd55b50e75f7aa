"""Injectable clocks: real, fixed (tests move it by hand) and simulated (the demo runs a day in minutes).

Every service reads time only through a ``Clock``. Waiting also goes through the clock so a simulated clock
shortens waits by its speed and a fixed clock wakes waiters when a test advances it.

The wall clock may step (an NTP correction, a user setting the time, a Pi without a real-time clock): durations are
measured on ``Clock.monotonic``, waits for wall instants go through ``wait_until`` (which notices a step within
``POLL_S``), and ``WallClockSteps`` tells a step from time passing.
"""

from __future__ import annotations

import os
import threading
import time as _time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

# While a wait runs the clock is read again at least this often (real seconds): a wall-clock step is noticed
# within it, whatever the wait's length.
POLL_S = 1.0
# A clock that moves by less than this (real seconds) beyond what its monotonic clock says is not taken as stepped.
STEP_TOLERANCE_S = 1.0


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, aware, in UTC. It may step (an NTP correction, a test): never measure a duration
        as the difference of two ``now`` readings; use ``monotonic``."""

    def monotonic(self) -> float:
        """Seconds on a clock that never steps, in this clock's units (a ``SimClock``'s run at its speed): for
        durations such as rate-limit windows, timeouts and back-offs."""

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        """Wait ``seconds`` of this clock's time, or until ``stop`` is set (then True). May return early when
        the wall clock steps: callers read the clock again."""


class RealClock:
    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return _time.monotonic()

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        return stop.wait(max(0.0, seconds))


class SimClock:
    """Runs ``speed`` times faster than real time from ``start``, anchored at real instant ``origin``.

    Several processes given the same start, origin and speed agree on the time without talking to each other.
    Derived from the wall clock, it steps when the wall clock steps (times ``speed``).
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

    def monotonic(self) -> float:
        return _time.monotonic() * self.speed

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        return stop.wait(max(0.0, seconds) / self.speed)


def shared_sim_origin(path: Path) -> float:
    """The simulated clock's origin that every process sharing ``path`` agrees on: the first to start writes its
    start time, the others (and restarts) read it. The file appears complete or not at all (written aside, then
    hard-linked into place, which fails if another process got there first)."""
    try:
        return float(path.read_text())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_name(f".{path.name}.{os.getpid()}")
    aside.write_text(repr(_time.time()))
    try:
        os.link(aside, path)
    except FileExistsError:
        pass
    finally:
        aside.unlink()
    return float(path.read_text())


class FixedClock:
    """Stands still until a test moves it; waiters wake when their time is reached.

    ``set`` and ``advance`` move it as time passing does (forwards, its monotonic clock moves with it); ``step``
    moves only the wall time, as an NTP step does (and so does ``set`` to an earlier time)."""

    speed = 1.0

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock start must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._mono = 0.0
        self._steps = 0  # counts wall-clock steps: a waiter wakes on each
        self._cond = threading.Condition()

    def now(self) -> datetime:
        with self._cond:
            return self._now

    def monotonic(self) -> float:
        with self._cond:
            return self._mono

    def set(self, t: datetime) -> None:
        if t.tzinfo is None:
            raise ValueError("FixedClock.set needs an aware datetime")
        with self._cond:
            self._move(t.astimezone(UTC) - self._now)

    def advance(self, delta: timedelta | float) -> None:
        with self._cond:
            self._move(delta if isinstance(delta, timedelta) else timedelta(seconds=delta))

    def step(self, delta: timedelta | float) -> None:
        """Step the wall time by ``delta`` (either way) while no time passes: an NTP step."""
        with self._cond:
            self._now += delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
            self._steps += 1
            self._cond.notify_all()

    def _move(self, delta: timedelta) -> None:
        self._now += delta
        if delta > timedelta(0):
            self._mono += delta.total_seconds()
        else:
            self._steps += 1
        self._cond.notify_all()

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        with self._cond:
            until, steps = self._mono + max(0.0, seconds), self._steps
            while self._mono < until and self._steps == steps:
                if stop.is_set():
                    return True
                # Poll the stop event too: it is not tied to our condition.
                self._cond.wait(timeout=0.05)
        return stop.is_set()


def stepped_back(deadline: datetime, before: datetime, after: datetime, tolerance_s: float = STEP_TOLERANCE_S) -> bool:
    """Between two readings ``before`` and ``after`` the clock went back by more than was left until
    ``deadline`` (plus a tolerance). The deadline was reckoned in a time that has been undone: waiting for it
    could take hours (after a 9 h step back, a 60 s wait would last 9 h), so it counts as reached and the caller
    reckons its next one from the new time. A smaller step back only delays the deadline, by at most the time
    that was left, so an absolute instant (a slot boundary) still fires on time."""
    back = (before - after).total_seconds()
    return back > max(0.0, (deadline - before).total_seconds()) + tolerance_s


def wait_until(
    clock: Clock,
    deadline: datetime,
    stop: threading.Event,
    wake: threading.Event | None = None,
    since: datetime | None = None,
) -> bool:
    """Wait until ``clock`` reaches the absolute ``deadline``, or ``stop`` is set (then True), or ``wake`` is.

    Loops that schedule by absolute instants use this rather than ``wait(seconds)``: a relative wait computed from
    a ``now`` read a moment earlier overshoots when the clock jumps in between. The clock is read again at least
    every ``POLL_S`` real seconds, so a step forward past the deadline ends the wait within that, and a step back
    further than the wait had left ends it too (``stepped_back``). ``since``: the reading ``deadline`` was
    reckoned from, so that a step between that reading and this call counts too."""
    speed = getattr(clock, "speed", 1.0)
    chunk, tolerance = POLL_S * speed, STEP_TOLERANCE_S * speed
    before = since or clock.now()
    while not stop.is_set():
        after = clock.now()
        if stepped_back(deadline, before, after, tolerance):
            return False
        before = after
        if wake is not None and wake.is_set():
            return False
        left = (deadline - before).total_seconds()
        if left <= 0:
            return False
        clock.wait(min(left, chunk), wake or stop)
    return True


class WallClockSteps:
    """Notices steps of ``clock.now()``: how far it moved beyond what its monotonic clock says has passed."""

    def __init__(self, clock: Clock, tolerance_s: float = STEP_TOLERANCE_S) -> None:
        self.clock = clock
        self.tolerance_s = tolerance_s * getattr(clock, "speed", 1.0)  # real seconds: a fast clock drifts faster
        self._offset = self._read()

    def _read(self) -> float:
        return self.clock.now().timestamp() - self.clock.monotonic()

    def _step(self, offset: float) -> timedelta:
        step = offset - self._offset
        return timedelta(seconds=step) if abs(step) > self.tolerance_s else timedelta(0)

    def peek(self) -> timedelta:
        """The step since the last check (zero when none), leaving it to be reported by ``check``."""
        return self._step(self._read())

    def check(self) -> timedelta:
        """The step since the last check (zero when none): slow drift (NTP slewing) is never reported."""
        offset = self._read()
        step, self._offset = self._step(offset), offset
        return step
