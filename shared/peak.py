"""The peak window: the daily local hours with no grid charging (Agile's 16:00–19:00 by default), defined once.

The planner never plans a charge in a slot that overlaps it; the executor refuses one there on its own (and for
its lead before the window starts: the gateway applies a stop late, ``with_lead``), and refuses a manual charge
window that overlaps it; the dashboard shades it; the simulator prices it. Its settings are ``peak_start_local`` /
``peak_end_local`` (``shared.settings.SafetySettings``): one source for the planner's initial value and the
executor's own limit. A window whose end is not after its start wraps
midnight. Times are instants; local wall times only place the window on each day, so clock-change days are right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import numpy as np

from shared.slots import LONDON, in_local_window, local_date, local_window, parse_hhmm, slots_overlapping_local_window

T = TypeVar("T")


def with_lead(t: datetime, lead: timedelta, find: Callable[[datetime], T | None]) -> T | None:
    """What ``find`` finds at ``t``, else ``lead`` later: a window that keeps grid charging out is kept from ``lead``
    before it starts, because the gateway applies a stop late. The one definition of that lead, for the peak window
    and for an Octopus Saving Session (the executor's ``saving_session`` rule)."""
    found = find(t)
    if found is None and lead > timedelta(0):
        found = find(t + lead)
    return found


@dataclass(frozen=True)
class PeakWindow:
    start: time = time(16)
    end: time = time(19)
    tz: ZoneInfo = LONDON

    @classmethod
    def parse(cls, start: str, end: str, tz: ZoneInfo = LONDON) -> PeakWindow:
        """From ``"HH:MM"`` settings; raises ``ValueError`` for anything else."""
        return cls(parse_hhmm(start), parse_hhmm(end), tz)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M} local"

    def contains(self, t: datetime, lead: timedelta = timedelta(0)) -> bool:
        """``t`` is in the window, or within ``lead`` before it starts."""
        return with_lead(t, lead, lambda x: True if in_local_window(x, self.start, self.end, self.tz) else None) is True

    def overlaps_slot(self, slot_start_utc: datetime) -> bool:
        """Any part of the half-hour slot starting at ``slot_start_utc`` is in the window."""
        return bool(self.mask([slot_start_utc])[0])

    def mask(self, slot_starts: Sequence[datetime]) -> np.ndarray:
        """``overlaps_slot`` for many slots at once (a plan's horizon, a replayed year)."""
        return np.array(slots_overlapping_local_window(slot_starts, self.start, self.end, self.tz), dtype=bool)

    def on(self, day: date) -> tuple[datetime, datetime]:
        """The window on a local day, as UTC instants."""
        return local_window(day, self.start, self.end, self.tz)

    def first_overlap(self, start: datetime, end: datetime) -> tuple[datetime, datetime] | None:
        """The first window (on any local day the period touches) that ``[start, end)`` overlaps, as UTC instants;
        None when the period keeps out of the window."""
        day = local_date(start, self.tz) - timedelta(days=1)
        last = local_date(end, self.tz)
        while day <= last:
            window_start, window_end = self.on(day)
            if start < window_end and window_start < end:
                return window_start, window_end
            day += timedelta(days=1)
        return None

    def next_start(self, now: datetime) -> datetime:
        """The first start of the window after ``now``."""
        day = local_date(now, self.tz)
        for offset in range(3):
            start, _ = self.on(day + timedelta(days=offset))
            if start > now:
                return start
        return now + timedelta(days=1)  # unreachable for any real window


AGILE_PEAK = PeakWindow()  # the tariff's own dear hours (the default setting; the simulator prices them)
