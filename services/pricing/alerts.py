"""The ``pricing/alert`` state: what a person should know about the publication (retained; ``ok`` when resolved).

``prices_late`` when tomorrow's prices are overdue (after ``late_after_local``) or today's are incomplete; else the
last fetch's problem (``fetch_failing``, ``validation_failed``, ``store_failing``); else ``ok``. It changes only
when its code or message does, and ``since`` keeps the time the code began. No alert before the first fetch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.models import PricingAlert

from .fetching import Problem
from .schedule import Timetable, today_incomplete, tomorrow_overdue


class Alerts:
    def __init__(self, timetable: Timetable, publish: Callable[[PricingAlert], None], log: Any) -> None:
        self.timetable = timetable
        self.publish = publish
        self.log = log
        self.lock = threading.Lock()
        self.current: PricingAlert | None = None

    def update(self, now: datetime, coverage: datetime | None, problem: Problem | None, attempted: bool) -> None:
        with self.lock:
            if attempted:
                self._evaluate(now, coverage, problem)

    def _evaluate(self, now: datetime, coverage: datetime | None, problem: Problem | None) -> None:
        tz = self.timetable.tz
        until = f"known until {_local(coverage, tz)}" if coverage else "no prices known"
        if tomorrow_overdue(now, coverage, self.timetable):
            code, message = "prices_late", f"tomorrow's prices are not published yet ({until})"
        elif problem:
            code, message = problem.code, problem.message
        elif today_incomplete(now, coverage, self.timetable):
            code, message = "prices_late", f"today's prices are incomplete ({until})"
        else:
            code, message = "ok", f"prices {until}"
        if problem and code == "prices_late":
            message += f"; last fetch: {problem.message}"
        prev = self.current
        if prev and prev.code == code and prev.message == message:
            return
        since = prev.since if prev and prev.code == code else now
        self.current = PricingAlert(generated_at=now, code=code, message=message, since=since)  # type: ignore[arg-type]
        if code != "ok":
            self.log.warning("pricing alert", code=code, message=message)
        elif prev and prev.code != "ok":
            self.log.info("pricing alert resolved", message=message)
        self.publish(self.current)


def _local(t: datetime, tz: ZoneInfo) -> str:
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
