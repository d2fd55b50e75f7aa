"""The Money page and the Plan page's comparison, from ``accounting/money`` and ``Plan.comparison``. Pure.

Every figure is said in words that carry its sign: "saved £1.25" or "cost £0.40 more" (a real loss, flagged),
"£0.30 stored" or "£0.20 drawn from the battery", "paid £1.50" or "earned £0.10". Savings compare costs with the
energy each side leaves in the battery valued alike (the accounting service and the planner say how), so a
counterfactual that drained the battery is not credited for it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from shared.models import MoneyPeriod, MoneySummary, Plan
from shared.topics import ACCOUNTING_MONEY

from .live import Entry
from .views import parse

MAX_DAYS_SHOWN = 31
STRATEGY_LABELS = {
    "plan": "This plan",
    "no_battery": "No battery",
    "self_use": "Battery on self-use only",
    "seed_rule": "The original app's rule",
}
# One line per figure: what it means (shown under the table).
MEANINGS = {
    "paid": "What the meter readings say you paid for electricity: imports minus exports (an estimate, not a bill).",
    "stored": "The value of the change in energy held in the battery over the period: stored counts in your favour, "
    "drawn against you.",
    "no_battery": "What the same home would have paid with no battery at all.",
    "self_use": "What it would have paid with the battery left on self-use, its own stored change valued the same way.",
    "vs_no_battery": "Paid (allowing for what is stored) compared with no battery.",
    "vs_self_use": "Paid (allowing for what is stored) compared with self-use: what batsched's scheduling adds.",
}


def money(v: float | None) -> str:
    return "—" if v is None else f"£{abs(v):.2f}"


def saving(v: float | None, present: bool = False) -> dict[str, Any]:
    """``saved £x`` (or no difference), or ``cost £x more`` marked as a loss: never a negative saving."""
    if v is None:
        return {"text": "—", "loss": False}
    if v >= 0.005:
        return {"text": f"{'saves' if present else 'saved'} £{v:.2f}", "loss": False}
    if v > -0.005:
        return {"text": "no difference", "loss": False}
    return {"text": f"{'costs' if present else 'cost'} £{-v:.2f} more", "loss": True}


def paid(v: float) -> str:
    return f"paid £{v:.2f}" if v >= 0 else f"earned £{-v:.2f}"


def stored(v: float | None) -> str:
    if v is None:
        return "—"
    if abs(v) < 0.005:
        return "no change"
    return f"£{v:.2f} stored" if v > 0 else f"£{-v:.2f} drawn from the battery"


def _label(p: MoneyPeriod) -> str:
    if p.period == "since_install":
        return "Since install" + (f" ({p.first_date:%d %b %Y})" if p.first_date else "")
    if p.period == "month" and p.first_date:
        return p.first_date.strftime("%B %Y")
    if p.period == "day" and p.first_date:
        return ("Today so far, " if p.partial else "") + p.first_date.strftime("%a %d %b")
    try:
        return date.fromisoformat(p.label).strftime("%a %d %b")
    except ValueError:
        return p.label


def row(p: MoneyPeriod) -> dict[str, Any]:
    return {
        "label": _label(p),
        "period": p.period,
        "partial": p.partial,
        "days": p.days,
        "days_compared": p.days_compared,
        "paid": paid(p.actual_cost_gbp),
        "stored": stored(p.stored_change_value_gbp),
        "no_battery": money(p.no_battery_cost_gbp),
        "self_use": money(p.self_use_comparable_cost_gbp),
        "vs_no_battery": saving(p.saved_vs_no_battery_gbp),
        "vs_self_use": saving(p.saved_vs_self_use_gbp),
        "import_kwh": round(p.grid_import_kwh, 1),
        "export_kwh": round(p.grid_export_kwh, 1),
        # for the chart (GBP, signed as the accounting service counts them)
        "comparable_gbp": p.actual_comparable_cost_gbp,
        "no_battery_gbp": p.no_battery_cost_gbp,
        "self_use_gbp": p.self_use_comparable_cost_gbp,
    }


def today_text(entries: Mapping[str, Entry]) -> str | None:
    """The Now page's "today so far" line."""
    summary: MoneySummary | None = parse(entries, ACCOUNTING_MONEY)
    if summary is None or summary.today is None:
        return None
    t = summary.today
    text = paid(t.actual_cost_gbp).capitalize()
    s = saving(t.saved_vs_no_battery_gbp)
    if t.saved_vs_no_battery_gbp is not None:
        text += f"; against no battery {s['text']}"
    return text


def money_page(entries: Mapping[str, Entry]) -> dict[str, Any]:
    summary: MoneySummary | None = parse(entries, ACCOUNTING_MONEY)
    if summary is None:
        return {"published": False, "meanings": MEANINGS}
    days = [row(p) for p in summary.days[-MAX_DAYS_SHOWN:]]
    chart = {
        "x": [d["label"] for d in days],
        "comparable": [d["comparable_gbp"] for d in days],
        "no_battery": [d["no_battery_gbp"] for d in days],
        "self_use": [d["self_use_gbp"] for d in days],
    }
    return {
        "published": True,
        "today": row(summary.today) if summary.today else None,
        "days": list(reversed(days)),  # newest first in the table
        "months": [row(p) for p in reversed(summary.months)],
        "since_install": row(summary.since_install) if summary.since_install else None,
        "note": summary.stored_value_note,
        "meanings": MEANINGS,
        "chart": chart,
    }


def plan_comparison(plan: Plan | None) -> dict[str, Any] | None:
    """The Plan page's table: each strategy over the same slots with its end energy valued alike."""
    if plan is None or not plan.comparison:
        return None
    rows = []
    for key in ("plan", "no_battery", "self_use", "seed_rule"):
        o = plan.comparison.get(key)
        if o is None:
            continue
        rows.append(
            {
                "key": key,
                "name": STRATEGY_LABELS[key],
                "paid": paid(o.cost_gbp),
                "end_soc_pct": round(o.end_soc_pct),
                "end_value": money(o.end_value_gbp),
                "stored": stored(o.stored_change_value_gbp),
                "comparable": paid(o.comparable_cost_gbp),
                "vs_plan": None if key == "plan" else saving(o.saving_gbp, present=True),
            }
        )
    return {"rows": rows, "note": plan.comparison_note or ""}
