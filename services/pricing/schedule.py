"""When to fetch next and whether prices are late: pure functions of the time and what is known.

Octopus publishes tomorrow's prices (23:00 local today → 23:00 local tomorrow) at about 16:00 UK time, often
later. Before that the known prices end at 23:00 local today. So: refresh about hourly; from ``poll_from``
poll every few minutes (backing off) until the prices reach 23:00 local tomorrow; after ``late_after`` say they
are late. Failed fetches back off on their own ladder. All in UTC instants; local time only marks the boundaries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.slots import local_date, local_wall_time


@dataclass(frozen=True)
class Timetable:
    tz: ZoneInfo
    poll_from: time = time(16, 0)
    late_after: time = time(20, 0)
    refresh_s: float = 3600.0
    poll_s: float = 300.0
    max_s: float = 1800.0
    failure_s: float = 60.0


def end_of_agile_day(now: datetime, tz: ZoneInfo, days_ahead: int) -> datetime:
    """23:00 local on the local day ``days_ahead`` after ``now``'s (the end of that day's publication)."""
    return local_wall_time(local_date(now, tz) + timedelta(days=days_ahead), time(23), tz)


def wants_tomorrow(now: datetime, tt: Timetable) -> bool:
    return now >= local_wall_time(local_date(now, tt.tz), tt.poll_from, tt.tz)


def has_tomorrow(now: datetime, coverage_end: datetime | None, tt: Timetable) -> bool:
    return coverage_end is not None and coverage_end >= end_of_agile_day(now, tt.tz, 1)


def today_incomplete(now: datetime, coverage_end: datetime | None, tt: Timetable) -> bool:
    """The known prices stop before 23:00 local today (today's publication is missing or partial)."""
    return coverage_end is None or coverage_end < end_of_agile_day(now, tt.tz, 0)


def tomorrow_overdue(now: datetime, coverage_end: datetime | None, tt: Timetable) -> bool:
    """It is past ``late_after`` local and tomorrow's prices are not (fully) published."""
    after = now >= local_wall_time(local_date(now, tt.tz), tt.late_after, tt.tz)
    return after and not has_tomorrow(now, coverage_end, tt)


def prices_late(now: datetime, coverage_end: datetime | None, tt: Timetable) -> bool:
    return today_incomplete(now, coverage_end, tt) or tomorrow_overdue(now, coverage_end, tt)


def next_delay(
    now: datetime,
    coverage_end: datetime | None,
    tt: Timetable,
    failures: int = 0,
    polls_without_news: int = 0,
    rng: random.Random | None = None,
) -> float:
    """Seconds until the next fetch. Jittered so a fleet does not hit the API on the same second."""
    rng = rng or random.Random()
    jitter = 1.0 + rng.uniform(0.0, 0.1)
    if failures > 0:
        return min(tt.failure_s * 2 ** (failures - 1), tt.max_s) * jitter
    if not has_tomorrow(now, coverage_end, tt) and (wants_tomorrow(now, tt) or today_incomplete(now, coverage_end, tt)):
        return min(tt.poll_s * 1.5**polls_without_news, tt.max_s) * jitter
    # Nothing due: refresh hourly, but wake at poll_from when that comes first.
    poll_start = local_wall_time(local_date(now, tt.tz), tt.poll_from, tt.tz)
    if now < poll_start:
        return min(tt.refresh_s * jitter, (poll_start - now).total_seconds() + rng.uniform(5, 60))
    return tt.refresh_s * jitter
