"""Times people type on the Control page, read on the system's clock and zone (never the browser's): a day picked
from the next week (labelled en-GB, "Tue 16 Jul") and a 24-hour ``HH:MM``. Pure."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.slots import local_date

HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
DAYS_OFFERED = 8


def day_choices(now: datetime, tz: ZoneInfo) -> list[dict[str, str]]:
    today = local_date(now, tz)
    out = []
    for i in range(DAYS_OFFERED):
        d = today + timedelta(days=i)
        prefix = "Today, " if i == 0 else "Tomorrow, " if i == 1 else ""
        out.append({"value": d.isoformat(), "label": prefix + d.strftime("%a %d %b")})
    return out


def control_clock(now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """What the Control page needs to offer times: the days, the system's time now and two hours on."""
    local = now.astimezone(tz)
    later = (now + timedelta(hours=2)).astimezone(tz)
    return {
        "days": day_choices(now, tz),
        "now_hhmm": local.strftime("%H:%M"),
        "later_day": later.date().isoformat(),
        "later_hhmm": later.strftime("%H:%M"),
        "zone": str(tz),
    }


def parse_local(day: str, hhmm: str, tz: ZoneInfo) -> datetime:
    """``2024-07-16`` + ``04:30`` in the system's zone, as an aware time. ``ValueError`` with a line a person reads."""
    m = HHMM.match(hhmm.strip())
    if not m:
        raise ValueError(f"time {hhmm.strip()[:10]!r} is not HH:MM on a 24-hour clock (for example 04:30 or 17:00)")
    try:
        d = date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"day {day[:12]!r} is not a date") from None
    naive = datetime(d.year, d.month, d.day, int(m.group(1)), int(m.group(2)))
    # fold=0: in the autumn's repeated hour, the first of the two (as the planner and executor read local times).
    return naive.replace(tzinfo=tz)
