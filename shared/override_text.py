"""An override in a household's words, defined once: the executor's ``executor/override`` summary and the dashboard
say it alike ("charge until 05:30 (to 90 %)"; the weekday too when it ends on another day)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from shared.models import Action

ACTION_WORDS = {Action.CHARGE: "charge", Action.HOLD: "hold", Action.SELF_USE: "self-use"}  # as Control offers them


def local_hhmm(t: datetime, tz: ZoneInfo, now: datetime) -> str:
    """``t`` on the system's clock, 24-hour; with the weekday when it is not today's."""
    local = t.astimezone(tz)
    return local.strftime("%H:%M" if local.date() == now.astimezone(tz).date() else "%a %H:%M")


def override_line(action: Action, until: datetime, target_soc_pct: float | None, tz: ZoneInfo, now: datetime) -> str:
    target = f" (to {target_soc_pct:.0f} %)" if target_soc_pct is not None else ""
    return f"{ACTION_WORDS[action]} until {local_hhmm(until, tz, now)}{target}"
