"""Scheduling: the service's two loops on the injected clock, and the fetch back-off's state.

- the fetch loop republishes what is stored (once, at start, before any network call), then fetches whenever
  ``schedule.next_delay`` says: hourly, polling from ``poll_from_local`` for tomorrow's prices, backing off after
  failures and after polls that brought nothing new;
- the slot loop calls the slot-boundary work at every half-hour boundary, once even when the clock jumps several.
Each loop waits on absolute instants (``wait_until``), so a wall-clock step wakes it at the right time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.clock import wait_until
from shared.runner import ServiceContext
from shared.slots import SLOT, next_slot_boundary, slot_start

from .schedule import Timetable, has_tomorrow, next_delay, wants_tomorrow


class Scheduler:
    def __init__(
        self,
        ctx: ServiceContext[Any],
        timetable: Timetable,
        coverage_end: Callable[[], datetime | None],
        at_start: Callable[[], None],
        fetch: Callable[[str], Any],
        at_slot_boundary: Callable[[], None],
    ) -> None:
        self.ctx = ctx
        self.log = ctx.log
        self.timetable = timetable
        self.coverage_end = coverage_end
        self.at_start = at_start
        self.fetch = fetch
        self.at_slot_boundary = at_slot_boundary
        self.failures = 0
        self.polls_without_news = 0
        self.next_fetch_at: datetime | None = None
        self._started = False
        self._rng = random.Random()

    def next_delay(self, now: datetime) -> float:
        return next_delay(now, self.coverage_end(), self.timetable, self.failures, self.polls_without_news, self._rng)

    def record(self, now: datetime, ok: bool, coverage_before: datetime | None) -> None:
        """After a fetch: the failure ladder, and the polls for tomorrow's prices that brought nothing new."""
        self.failures = 0 if ok else self.failures + 1
        if ok:
            got_news = self.coverage_end() != coverage_before
            waiting = wants_tomorrow(now, self.timetable) and not has_tomorrow(now, self.coverage_end(), self.timetable)
            self.polls_without_news = self.polls_without_news + 1 if waiting and not got_news else 0

    def fetch_loop(self) -> None:
        """Fetch at start (after republishing what is stored), then whenever ``next_delay`` says."""
        stop, clock = self.ctx.stop, self.ctx.clock
        if not self._started:
            self._started = True
            self.ctx.bus.wait_connected(10)
            self._guarded(self.at_start, "republish")
        while not stop.is_set():
            started = clock.now()
            self._guarded(lambda: self.fetch("schedule"), "fetch")
            due = started + timedelta(seconds=self.next_delay(started))
            self.next_fetch_at = due
            self.log.debug("next fetch", at=due.isoformat())
            if wait_until(clock, due, stop, since=started):  # a step during the fetch counts too
                return

    def slot_loop(self) -> None:
        """Run the slot-boundary work at every slot boundary (once, even when the clock jumps several slots)."""
        stop, clock = self.ctx.stop, self.ctx.clock
        now = clock.now()
        due = next_slot_boundary(now)
        while not wait_until(clock, due, stop, since=now):
            self._guarded(self.at_slot_boundary, "slot boundary")
            now = clock.now()
            # Woken before ``due``: the wall clock stepped back past it; the next boundary is the new time's.
            due = next_slot_boundary(now) if now < due else max(due + SLOT, slot_start(now))

    def _guarded(self, fn: Callable[[], Any], what: str) -> None:
        try:
            fn()
        except Exception:
            self.log.exception("task failed; carrying on", task=what)
