"""What the Now and Control pages show of the manual windows (``executor/windows``) and the Octopus sessions
(``pricing/sessions``): local times for people, plus a warning when the sessions cannot be read. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.topics import EXECUTOR_WINDOWS, PRICING_SESSIONS

from .live import Entry
from .views import parse


def _local(t: datetime, tz: ZoneInfo, fmt: str = "%a %d %b %H:%M") -> str:
    return t.astimezone(tz).strftime(fmt)


def windows_view(entries: Mapping[str, Entry], now: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    found = parse(entries, EXECUTOR_WINDOWS)
    if found is None:
        return []
    return [
        {
            "id": w.window_id,
            "start": w.start.isoformat(),
            "end": w.end.isoformat(),
            "start_local": _local(w.start, tz),
            "end_local": _local(w.end, tz, "%H:%M" if w.start.astimezone(tz).date() == w.end.astimezone(tz).date()
                                else "%a %d %b %H:%M"),
            "action": w.action,
            "target_soc_pct": w.target_soc_pct,
            "source": w.source,
            "origin": w.origin,
            "active": w.covers(now),
        }
        for w in found.windows
        if w.end > now
    ]  # fmt: skip


def sessions_view(entries: Mapping[str, Entry], now: datetime, tz: ZoneInfo) -> dict[str, Any] | None:
    found = parse(entries, PRICING_SESSIONS)
    if found is None:
        return None
    return {
        "status": found.status,
        "error": found.error,
        "since": _local(found.since, tz) if found.since else None,
        "sessions": [
            {
                "kind": s.kind,
                "code": s.code,
                "start_local": _local(s.start, tz),
                "end_local": _local(s.end, tz, "%H:%M"),
                "reward_p_per_kwh": round(s.reward_gbp_per_kwh * 100, 1) if s.reward_gbp_per_kwh is not None else None,
                "active": s.covers(now),
            }
            for s in found.sessions
            if s.end > now
        ],
    }


def warnings(entries: Mapping[str, Entry], now: datetime, tz: ZoneInfo) -> list[str]:
    sessions = sessions_view(entries, now, tz)
    out = []
    if sessions and sessions["status"] == "failing":
        out.append(
            f"Octopus sessions cannot be read since {sessions['since']}: {sessions['error']}. "
            "Plans and safety rules are unaffected; the sessions last known are used."
        )
    return out
