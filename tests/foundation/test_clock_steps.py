"""Wall-clock steps (an NTP correction, a user setting the time) under running waits and tasks.

``wait_until`` must notice a step within about ``POLL_S``: a step forward past the deadline ends the wait, a step
back further than the wait had left ends it too (else a 60 s wait reckoned before a 9 h step back lasts 9 h), a
small step back only delays it. The runner's tasks ride on it, and run again when a step happened while they ran.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from shared.bus import Bus
from shared.clock import POLL_S, FixedClock, RealClock, SimClock, WallClockSteps, stepped_back, wait_until
from shared.logging import get_logger
from shared.runner import ServiceContext
from shared.settings import ServiceSettings

T0 = datetime(2023, 6, 12, 10, 5, tzinfo=UTC)
PROMPT_S = POLL_S + 2.0  # how soon a waiter must notice a step (a loaded 2-core machine included)


class SteppedRealClock(RealClock):
    """The real clock, waits and all, whose wall time a test can step (as an NTP step would)."""

    def __init__(self, start: datetime) -> None:
        self._offset = start - datetime.now(UTC)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def step(self, delta: timedelta) -> None:
        self._offset += delta


class Waiter:
    """``wait_until`` on a thread; ``done`` is set when it returns (with its result)."""

    def __init__(self, clock, deadline: datetime, wake: threading.Event | None = None) -> None:
        self.stop, self.done, self.result = threading.Event(), threading.Event(), None
        self._thread = threading.Thread(target=self._run, args=(clock, deadline, wake), daemon=True)
        self._thread.start()

    def _run(self, clock, deadline: datetime, wake: threading.Event | None) -> None:
        self.result = wait_until(clock, deadline, self.stop, wake)
        self.done.set()

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(5)


def started(waiter: Waiter) -> Waiter:
    """The waiter has read the clock (and is now waiting): only then does a step happen "under" it."""
    assert not waiter.done.wait(0.2), "returned before its deadline"
    return waiter


def test_a_step_back_further_than_the_wait_had_left_ends_it_at_once() -> None:
    clock = FixedClock(T0)
    waiter = started(Waiter(clock, T0 + timedelta(seconds=60)))
    clock.set(T0 - timedelta(hours=9))  # the 60 s would otherwise last 9 h
    assert waiter.done.wait(PROMPT_S) and waiter.result is False
    waiter.finish()


def test_a_small_step_back_only_delays_an_absolute_deadline() -> None:
    clock = FixedClock(T0)
    boundary = datetime(2023, 6, 12, 10, 30, tzinfo=UTC)
    waiter = started(Waiter(clock, boundary))
    clock.set(T0 - timedelta(seconds=5))  # NTP's small correction: the slot boundary is still ahead
    assert not waiter.done.wait(0.5)
    clock.set(boundary - timedelta(seconds=1))
    assert not waiter.done.wait(0.3)
    clock.set(boundary)
    assert waiter.done.wait(PROMPT_S) and waiter.result is False
    waiter.finish()


@pytest.mark.parametrize("step", [timedelta(hours=2), timedelta(hours=-9)], ids=["forward", "back"])
def test_the_real_clock_notices_a_step_within_the_poll_period(step: timedelta) -> None:
    """Before: ``RealClock.wait(remaining)`` slept the whole hour, whatever the wall clock did meanwhile."""
    clock = SteppedRealClock(T0)
    waiter = started(Waiter(clock, T0 + timedelta(hours=1)))
    stepped = time.monotonic()
    clock.step(step)
    assert waiter.done.wait(PROMPT_S), f"still waiting {PROMPT_S} s after a {step} step"
    assert waiter.result is False and time.monotonic() - stepped <= PROMPT_S
    waiter.finish()


def test_a_step_between_reckoning_a_deadline_and_waiting_for_it_counts() -> None:
    clock, stop = FixedClock(T0), threading.Event()
    now = clock.now()
    clock.set(T0 - timedelta(hours=9))
    assert wait_until(clock, now + timedelta(seconds=60), stop, since=now) is False


def test_stop_and_wake_end_a_wait() -> None:
    clock, wake = SteppedRealClock(T0), threading.Event()
    waiter = started(Waiter(clock, T0 + timedelta(hours=1), wake))
    wake.set()
    assert waiter.done.wait(PROMPT_S) and waiter.result is False
    waiter = started(Waiter(clock, T0 + timedelta(hours=1)))
    waiter.stop.set()
    assert waiter.done.wait(PROMPT_S) and waiter.result is True


def test_stepped_back_compares_the_step_with_what_was_left() -> None:
    deadline = T0 + timedelta(seconds=60)
    assert stepped_back(deadline, T0, T0 - timedelta(hours=9))
    assert stepped_back(deadline, T0, T0 - timedelta(seconds=62))
    assert not stepped_back(deadline, T0, T0 - timedelta(seconds=5))
    assert not stepped_back(deadline, T0, T0 + timedelta(seconds=1))


def test_the_fixed_clock_moves_its_monotonic_time_only_when_time_passes() -> None:
    clock = FixedClock(T0)
    clock.advance(10)
    clock.set(T0 + timedelta(seconds=30))
    assert clock.monotonic() == 30
    clock.step(timedelta(hours=6))  # an NTP step: no time passed
    clock.set(T0)  # back: no time passed either
    assert clock.monotonic() == 30 and clock.now() == T0


def test_wall_clock_steps_are_told_apart_from_time_passing() -> None:
    clock = FixedClock(T0)
    steps = WallClockSteps(clock)
    clock.advance(timedelta(hours=3))
    assert steps.check() == timedelta(0)
    clock.step(timedelta(hours=6))
    assert steps.check() == timedelta(hours=6)
    assert steps.check() == timedelta(0)
    clock.set(clock.now() - timedelta(hours=9))
    assert steps.check() == timedelta(hours=-9)
    sim = SimClock(T0, speed=600)
    sim_steps = WallClockSteps(sim)
    sim.wait(60, threading.Event())
    assert sim_steps.check() == timedelta(0)


def context(clock: FixedClock) -> ServiceContext:
    settings = ServiceSettings()
    return ServiceContext("test", settings, clock, Bus(settings, "test"), get_logger("test.runner"))


def test_slot_boundary_tasks_run_in_the_new_time_after_a_step_back() -> None:
    """The planner's replan and the forecast's load task: after a 9 h step back they run at once, then on the
    new time's boundaries (before: not until the clock came back to the old time's next boundary, 9 h on)."""
    clock = FixedClock(T0)
    ctx, runs, ran = context(clock), [], threading.Event()

    def task() -> None:
        runs.append(clock.now())
        ran.set()

    ctx.at_slot_boundaries(task, name="replan")
    ctx.start_tasks()
    try:
        assert ran.wait(PROMPT_S)
        ran.clear()
        clock.set(T0 - timedelta(hours=9))  # 01:05
        assert ran.wait(PROMPT_S), "no run after the step back"
        assert runs[-1] == T0 - timedelta(hours=9)
        ran.clear()
        clock.set(datetime(2023, 6, 12, 1, 30, tzinfo=UTC))  # the new time's next boundary
        assert ran.wait(PROMPT_S), "the new time's boundary did not fire"
    finally:
        ctx.stop.set()


def test_a_task_runs_again_when_the_wall_clock_stepped_while_it_ran() -> None:
    """It read a time that is no longer current: its result (a forecast stamped 6 h ago) would stand until its
    next run, half an hour on."""
    clock = FixedClock(T0)
    ctx, seen, again = context(clock), [], threading.Event()

    def task() -> None:
        seen.append(clock.now())
        if len(seen) == 1:
            clock.step(timedelta(hours=6))  # mid-run
        else:
            again.set()

    ctx.at_slot_boundaries(task, name="load")
    ctx.start_tasks()
    try:
        assert again.wait(PROMPT_S)
        assert seen[:2] == [T0, T0 + timedelta(hours=6)]
    finally:
        ctx.stop.set()


def test_an_interval_task_runs_at_once_after_a_step_back() -> None:
    clock = FixedClock(T0)
    ctx, runs = context(clock), threading.Semaphore(0)
    ctx.every(300, runs.release, name="pv")
    ctx.start_tasks()
    try:
        assert runs.acquire(timeout=PROMPT_S)
        clock.set(T0 - timedelta(hours=9))
        assert runs.acquire(timeout=PROMPT_S), "the 300 s wait lasted past the step back"
    finally:
        ctx.stop.set()
