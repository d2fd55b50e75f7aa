"""What other services tell the executor: the plan, the prices, Octopus sessions and the planner's own limits
(its price cap and peak window, enforced here too). Bus handlers record the latest of each; the decision loop
reads them as one snapshot."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import tzinfo
from typing import Any

from shared.models import CurrentRate, Plan, RateSeries, SessionList
from shared.peak import PeakWindow
from shared.slots import parse_hhmm


@dataclass(frozen=True)
class Latest:
    """The inputs as they were at one instant."""

    plan: Plan | None = None
    current_rate: CurrentRate | None = None
    rates: RateSeries | None = None
    sessions: SessionList | None = None
    planner_max_gbp: float | None = None
    planner_peak: PeakWindow | None = None


class Inputs:
    """The latest inputs. ``_lock`` guards ``_latest`` (replaced whole, never changed in place): taken only to
    swap or read it, never across I/O, so the bus thread never waits for a decision."""

    def __init__(self, tz: tzinfo, log: Any, changed: Callable[[bool], None]) -> None:
        """``changed(always)`` is called after each new input: ``always`` when it must wake the loop, else only
        when it would change what is decided."""
        self.tz = tz
        self.log = log
        self.changed = changed
        self._lock = threading.Lock()
        self._latest = Latest()
        self._peak_text: dict[str, str] = {}  # planner/peak_start_local, planner/peak_end_local (under ``_lock``)

    def latest(self) -> Latest:
        with self._lock:
            return self._latest

    def _set(self, **changes: Any) -> None:
        with self._lock:
            self._latest = replace(self._latest, **changes)

    def on_plan(self, plan: Plan | None) -> None:
        self._set(plan=plan)
        self.changed(True)

    def on_current_rate(self, rate: CurrentRate | None) -> None:
        self._set(current_rate=rate)
        self.changed(False)

    def on_rates(self, rates: RateSeries | None) -> None:
        self._set(rates=rates)
        self.changed(False)

    def on_sessions(self, sessions: SessionList | None) -> None:
        self._set(sessions=sessions)
        self.changed(True)

    def on_planner_max_price(self, text: str | None) -> None:
        if not text:
            value = None
        else:
            try:
                value = float(text)
            except ValueError:
                self.log.warning("planner max price ignored: not a number", payload=text[:40])
                return
            value = value if -1 <= value <= 2 else None
        self._set(planner_max_gbp=value)
        self.changed(False)

    def on_planner_peak(self, name: str) -> Callable[[str | None], None]:
        """``planner/peak_start_local`` / ``peak_end_local``: charging is kept out of the planner's peak window
        as well as the executor's own (and the plan's), so a change there stops a charge at once."""

        def handle(text: str | None) -> None:
            if text:
                try:
                    parse_hhmm(text)
                except ValueError:
                    self.log.warning("planner peak setting ignored: not HH:MM", setting=name, payload=text[:20])
                    return
            with self._lock:
                if text:
                    self._peak_text[name] = text
                else:
                    self._peak_text.pop(name, None)
                start, end = self._peak_text.get("peak_start_local"), self._peak_text.get("peak_end_local")
                peak = PeakWindow.parse(start, end, self.tz) if start and end else None
                self._latest = replace(self._latest, planner_peak=peak)
            self.changed(False)

        return handle
