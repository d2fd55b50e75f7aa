"""``accounting/money``: daily summaries added up per day, month and since install, comparable figures included.

A pure function of the summaries (``DailySummary``, one per closed local day, plus today's so far). Per day:

    actual_comparable = actual - stored_change_value        (batsched's battery, its stored change valued)
    self_use_comparable = self_use - self_use_stored_change  (the self-use counterfactual, valued the same way)
    saved_vs_no_battery = no_battery - actual_comparable     (no battery stores nothing)
    saved_vs_self_use = self_use_comparable - actual_comparable

A period sums each figure over the days where it is known; both savings over the days where batsched's
comparable cost and the no-battery cost are known (``days_compared``), the self-use saving over those of them
with a self-use estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal

from shared.models import DailySummary, MoneyPeriod, MoneySummary

MAX_DAYS = 92  # the days listed one by one (months and since install cover all of them)
SOURCE_WORDS = {
    "plan": "the planner's own value of stored energy in its last plan of the day (as the plan comparison)",
    "day_prices": "the day's mean import price after the discharge loss (no plan that day)",
}


def _comparable(s: DailySummary) -> float | None:
    return None if s.stored_change_value_gbp is None else s.actual_cost_gbp - s.stored_change_value_gbp


def _self_use_comparable(s: DailySummary) -> float | None:
    if s.self_use_cost_gbp is None or s.self_use_stored_change_value_gbp is None:
        return None
    return s.self_use_cost_gbp - s.self_use_stored_change_value_gbp


def _sum(days: Sequence[DailySummary], fn: Callable[[DailySummary], float | None]) -> float | None:
    values = [v for v in map(fn, days) if v is not None]
    return round(sum(values), 4) if values else None


def period(
    kind: Literal["day", "month", "since_install"], label: str, days: Sequence[DailySummary], partial: bool = False
) -> MoneyPeriod:
    """One period's figures from its days (oldest first)."""
    compared = [s for s in days if _comparable(s) is not None and s.no_battery_cost_gbp is not None]
    with_self_use = [s for s in compared if _self_use_comparable(s) is not None]
    return MoneyPeriod(
        period=kind,
        label=label,
        first_date=days[0].date if days else None,
        last_date=days[-1].date if days else None,
        days=len(days),
        days_compared=len(compared),
        partial=partial,
        actual_cost_gbp=round(sum(s.actual_cost_gbp for s in days), 4),
        stored_change_value_gbp=_sum(days, lambda s: s.stored_change_value_gbp),
        actual_comparable_cost_gbp=_sum(days, _comparable),
        no_battery_cost_gbp=_sum(days, lambda s: s.no_battery_cost_gbp),
        self_use_cost_gbp=_sum(days, lambda s: s.self_use_cost_gbp),
        self_use_comparable_cost_gbp=_sum(days, _self_use_comparable),
        saved_vs_no_battery_gbp=_sum(compared, lambda s: (s.no_battery_cost_gbp or 0.0) - (_comparable(s) or 0.0)),
        saved_vs_self_use_gbp=_sum(with_self_use, lambda s: (_self_use_comparable(s) or 0.0) - (_comparable(s) or 0.0)),
        grid_import_kwh=round(sum(s.grid_import_kwh for s in days), 4),
        grid_export_kwh=round(sum(s.grid_export_kwh for s in days), 4),
    )


def note(days: Sequence[DailySummary]) -> str:
    """One line: how stored energy was valued (from the latest day that was valued)."""
    valued = [s for s in days if s.stored_value_gbp_per_kwh is not None]
    if not valued:
        return "No battery level was observed, so stored energy is not valued and no comparison is made."
    last = valued[-1]
    how = SOURCE_WORDS.get(last.stored_value_source or "", "a price per kWh")
    return (
        f"The energy each battery gains or loses over a day is valued at {how}: "
        f"{last.stored_value_gbp_per_kwh * 100:.1f}p/kWh on {last.date.isoformat()}."
    )


def money_summary(history: Sequence[DailySummary], today: DailySummary | None, now: datetime) -> MoneySummary:
    """``history``: every closed day (oldest first); ``today``: the day so far (or None)."""
    history = sorted(history, key=lambda s: s.date)
    months: dict[tuple[int, int], list[DailySummary]] = {}
    for s in history:
        months.setdefault((s.date.year, s.date.month), []).append(s)
    everything = [*history, *([today] if today is not None else [])]
    return MoneySummary(
        generated_at=now,
        today=period("day", today.date.isoformat(), [today], partial=True) if today is not None else None,
        days=[period("day", s.date.isoformat(), [s]) for s in history[-MAX_DAYS:]],
        months=[period("month", f"{y:04d}-{m:02d}", days) for (y, m), days in sorted(months.items())],
        since_install=period("since_install", "since install", history) if history else None,
        stored_value_note=note(everything),
    )
