"""Half-hour slot arithmetic in UTC, with local days and local windows that survive the UK clock changes.

Slots are half-open ``[start, end)``, 30 minutes, keyed by their UTC start. A local day has 46, 48 or 50 slots.
All arithmetic is done on UTC instants: local wall-clock times only mark boundaries.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SLOT = timedelta(minutes=30)
LONDON = ZoneInfo("Europe/London")


def _require_aware(t: datetime) -> None:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t!r}: all times must be timezone-aware")


def slot_start(t: datetime) -> datetime:
    """The UTC start of the slot containing ``t``."""
    _require_aware(t)
    u = t.astimezone(UTC)
    return u.replace(minute=0 if u.minute < 30 else 30, second=0, microsecond=0)


def slot_end(t: datetime) -> datetime:
    return slot_start(t) + SLOT


def next_slot_boundary(t: datetime) -> datetime:
    """The first slot boundary strictly after ``t``."""
    return slot_start(t) + SLOT


def iter_slots(start: datetime, end: datetime) -> Iterator[datetime]:
    """UTC slot starts covering ``[start, end)``; ``start`` is floored to its slot."""
    _require_aware(end)
    t = slot_start(start)
    end_u = end.astimezone(UTC)
    while t < end_u:
        yield t
        t += SLOT


def local_midnight(day: date, tz: ZoneInfo = LONDON) -> datetime:
    """The UTC instant of local midnight at the start of ``day`` (UK midnight always exists)."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def local_day_bounds(day: date, tz: ZoneInfo = LONDON) -> tuple[datetime, datetime]:
    return local_midnight(day, tz), local_midnight(day + timedelta(days=1), tz)


def local_day_slots(day: date, tz: ZoneInfo = LONDON) -> list[datetime]:
    """UTC starts of the slots of a local day: 48, or 46 / 50 on clock-change days."""
    return list(iter_slots(*local_day_bounds(day, tz)))


def local_date(t: datetime, tz: ZoneInfo = LONDON) -> date:
    _require_aware(t)
    return t.astimezone(tz).date()


def local_wall_time(day: date, wall: time, tz: ZoneInfo = LONDON) -> datetime:
    """The UTC instant of a local wall-clock time on ``day``.

    Non-existent times (spring forward) resolve to the instant after the gap; ambiguous ones (fall back) to the
    first occurrence, so a window never silently collapses.
    """
    naive = datetime.combine(day, wall)
    t = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if t.astimezone(tz).replace(tzinfo=None) == naive:
        return t
    # In the spring gap: walk back to the first instant whose wall time is at or after ``wall`` (the gap's end).
    step = timedelta(minutes=1)
    while (t - step).astimezone(tz).replace(tzinfo=None) >= naive:
        t -= step
    return t


def parse_hhmm(value: str) -> time:
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


def local_window(day: date, start: time, end: time, tz: ZoneInfo = LONDON) -> tuple[datetime, datetime]:
    """A daily local window (e.g. the 16:00–19:00 peak) on ``day`` as a UTC interval; wraps midnight if end<=start."""
    s = local_wall_time(day, start, tz)
    e_day = day if end > start else day + timedelta(days=1)
    return s, local_wall_time(e_day, end, tz)


def window_slots(day: date, start: time, end: time, tz: ZoneInfo = LONDON) -> list[datetime]:
    """UTC starts of the slots that overlap the local window on ``day``."""
    s, e = local_window(day, start, end, tz)
    return list(iter_slots(s, e))


def in_local_window(t: datetime, start: time, end: time, tz: ZoneInfo = LONDON) -> bool:
    """Whether instant ``t`` falls in the daily local window ``[start, end)`` (checks today's and yesterday's)."""
    _require_aware(t)
    d = local_date(t, tz)
    for day in (d - timedelta(days=1), d):
        s, e = local_window(day, start, end, tz)
        if s <= t < e:
            return True
    return False


def slots_overlapping_local_window(
    starts: Sequence[datetime], start: time, end: time, tz: ZoneInfo = LONDON
) -> list[bool]:
    """For each slot starting at ``starts[i]``, whether any part of it lies in the daily local window.

    The window is placed on every local day the slots touch (exact instants, so clock-change days are right),
    then each slot is checked against the first window that ends after the slot starts: one pass for a year."""
    if not starts:
        return []
    firsts = [slot_start(t) for t in starts]
    day, last = local_date(min(firsts), tz) - timedelta(days=1), local_date(max(firsts), tz) + timedelta(days=1)
    windows = []
    while day <= last:
        windows.append(local_window(day, start, end, tz))
        day += timedelta(days=1)
    ends = [we for _, we in windows]
    out = []
    for s in firsts:
        i = bisect_right(ends, s)  # the first window ending after the slot starts
        out.append(i < len(windows) and windows[i][0] < s + SLOT)
    return out


def slot_overlaps_local_window(start_utc: datetime, start: time, end: time, tz: ZoneInfo = LONDON) -> bool:
    """Whether any part of the slot starting at ``start_utc`` lies in the daily local window."""
    return slots_overlapping_local_window([start_utc], start, end, tz)[0]


def agile_day_bounds(day: date, tz: ZoneInfo = LONDON) -> tuple[datetime, datetime]:
    """The Octopus day-ahead publication for ``day``: 23:00 local the evening before to 23:00 local on ``day``."""
    return local_wall_time(day - timedelta(days=1), time(23), tz), local_wall_time(day, time(23), tz)
