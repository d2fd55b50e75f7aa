"""The History page's day of decisions as spans: runs of decisions with the same action and outcome
("02:00:04–05:29:58 charge, applied"), each with the rule that decided in plain words, expandable to its
decisions. Times to the second in the system's time zone; no Python reprs. Pure (the CSV is ``history``)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from shared.models import AppliedDecision

from .words import MODE_WORDS, action_word, outcome_word, plain, powerwall_text, rule_word

TIME = "%H:%M:%S"


def why(dec: AppliedDecision, tz: ZoneInfo) -> str:
    """The rule that decided, in words: a safety rule that changed or blocked the request, else who asked."""
    for r in dec.rules:
        if r.verdict != "pass":
            detail = plain(r.detail, tz)
            return f"{rule_word(r.rule)}: {detail}" if detail else rule_word(r.rule)
    asked = action_word(dec.requested_action.value if dec.requested_action else None)
    if dec.mode.value == "auto":
        return f"the plan asked for {asked}" if dec.requested_action else "no plan slot: nothing to do"
    return MODE_WORDS.get(dec.mode.value, dec.mode.value)


def _decision(dec: AppliedDecision, tz: ZoneInfo) -> dict[str, Any]:
    sent = dec.sent or dec.desired
    sent_doc = sent.model_dump() if sent else None
    seen_doc = dec.observed.model_dump() if dec.observed else None
    differs = bool(sent_doc and seen_doc and any(seen_doc.get(k) != v for k, v in sent_doc.items() if v is not None))
    return {
        "time": dec.generated_at.astimezone(tz).strftime(TIME),
        "requested": action_word(dec.requested_action.value if dec.requested_action else None),
        "action": action_word(dec.action.value if dec.action else None),
        "outcome": outcome_word(dec.outcome),
        "why": why(dec, tz),
        "sent": powerwall_text(sent_doc),
        "read_back": powerwall_text(seen_doc),
        "read_back_differs": differs,
        "soc_pct": None if dec.soc_pct is None else round(dec.soc_pct),
        "error": plain(dec.error, tz),
        "dry_run": dec.dry_run,
        "decision_id": dec.decision_id,
    }


def spans(decisions: list[dict[str, Any]], tz: ZoneInfo) -> list[dict[str, Any]]:
    """Consecutive decisions (oldest first in, newest span first out) grouped by action and outcome."""
    out: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for raw in decisions:
        try:
            dec = AppliedDecision.model_validate(raw)
        except ValidationError:
            continue
        action = dec.action.value if dec.action else None
        key = (action, dec.outcome)
        row = _decision(dec, tz)
        if current is None or current["key"] != key:
            current = {
                "key": key,
                "action_code": action or "stand_aside",
                "outcome_code": dec.outcome,
                "action": row["action"],
                "outcome": row["outcome"],
                "start": row["time"],
                "decisions": [],
            }
            out.append(current)
        current["end"] = row["time"]
        current["decisions"].append(row)
    for span in out:
        span.pop("key")
        rows = span["decisions"]
        span["count"] = len(rows)
        when = span["start"] if span["start"] == span["end"] else f"{span['start']}–{span['end']}"
        span["label"] = f"{when} {span['action']}, {span['outcome']}"
        reasons = Counter(r["why"] for r in rows)
        span["why"] = reasons.most_common(1)[0][0]
        span["other_reasons"] = len(reasons) - 1
        span["problem"] = span["outcome_code"] in ("failed", "mismatch", "grid_down_after_write")
        rows.reverse()  # newest first inside a span too
    out.reverse()
    return out


def page(day: date, today: date, decisions: list[dict[str, Any]], tz: ZoneInfo) -> dict[str, Any]:
    """One day's spans and the days either side to page to (none after today)."""
    grouped = spans(decisions, tz)
    return {
        "day": day.isoformat(),
        "day_text": day.strftime("%A %d %B %Y"),
        "prev_day": (day - timedelta(days=1)).isoformat(),
        "next_day": (day + timedelta(days=1)).isoformat() if day < today else None,
        "spans": grouped,
        "decisions": sum(s["count"] for s in grouped),
        "tz": str(tz),
    }
