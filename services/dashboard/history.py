"""The History page's decision table and its CSV download, from the executor's decisions. Pure.

One row per decision, in local time: what was asked, what the rules made of it, what was sent and read back."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from shared.models import AppliedDecision
from shared.slots import local_day_bounds

from .views import local_text


def day_range(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    return local_day_bounds(day, tz)


def _cfg(doc: dict[str, Any] | None) -> str:
    if not doc:
        return "—"
    parts = []
    if doc.get("operational_mode"):
        parts.append(str(doc["operational_mode"]))
    if doc.get("backup_reserve_pct") is not None:
        parts.append(f"reserve {doc['backup_reserve_pct']}%")
    if doc.get("grid_charging") is not None:
        parts.append("grid charge on" if doc["grid_charging"] else "grid charge off")
    return ", ".join(parts) or "—"


def decision_rows(decisions: list[dict[str, Any]], tz: ZoneInfo) -> list[dict[str, Any]]:
    rows = []
    for d in decisions:
        try:
            dec = AppliedDecision.model_validate(d)
        except ValidationError:
            continue
        commanded = dec.sent or dec.desired
        rows.append(
            {
                "time": local_text(dec.generated_at, tz, "%Y-%m-%d %H:%M:%S"),
                "slot": local_text(dec.slot_start, tz, "%H:%M") if dec.slot_start else "",
                "mode": dec.mode.value,
                "dry_run": dec.dry_run,
                "requested": dec.requested_action.value if dec.requested_action else "",
                "action": dec.action.value if dec.action else "stand aside",
                "outcome": dec.outcome,
                "commanded": _cfg(commanded.model_dump() if commanded else None),
                "observed": _cfg(dec.observed.model_dump() if dec.observed else None),
                "match": None
                if not (commanded and dec.observed)
                else _matches(commanded.model_dump(), dec.observed.model_dump()),
                "rules": "; ".join(
                    f"{r.rule}: {r.verdict}{' ' + r.detail if r.detail else ''}"
                    for r in dec.rules
                    if r.verdict != "pass"
                ),
                "soc_pct": dec.soc_pct,
                "error": dec.error or "",
                "decision_id": dec.decision_id,
            }
        )
    return rows


def _matches(commanded: dict[str, Any], observed: dict[str, Any]) -> bool:
    return all(observed.get(k) == v for k, v in commanded.items() if v is not None)


CSV_FIELDS = (
    "time",
    "slot",
    "mode",
    "dry_run",
    "requested",
    "action",
    "outcome",
    "commanded",
    "observed",
    "match",
    "rules",
    "soc_pct",
    "error",
    "decision_id",
)


def decisions_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()
