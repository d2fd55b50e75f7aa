"""The Now page's top lines: one plain sentence for what the battery is doing and why, and the next charge.

"Charging until 05:30 to 90 % at 8.9p — among the cheapest hours before the energy is needed"; "Holding at 64 % for
the 16:00 peak"; "Next charge: Tue 02:00–05:00 to 90 %, about 9.1p". Pure: from the plan, the mode, the override in
force and the clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.models import OverrideState, Plan, PlanSlot
from shared.override_text import local_hhmm as _hhmm
from shared.override_text import override_line as _line
from shared.peak import PeakWindow

from .words import reason_word


def in_force(state: OverrideState | None, now: datetime) -> OverrideState | None:
    """The override in force now, if any (one past its end is over, even before the executor says so)."""
    return state if state is not None and state.action is not None and state.until and state.until > now else None


def override_line(state: OverrideState, now: datetime, tz: ZoneInfo) -> str:
    """The override as "charge until 05:30 (to 90 %)": the system's zone, 24-hour, the weekday when it ends on
    another day."""
    assert state.action is not None and state.until is not None
    return _line(state.action, state.until, state.target_soc_pct, tz, now)


def _run_end(plan: Plan, slot: PlanSlot) -> datetime:
    """Where the run of slots with ``slot``'s action (from ``slot`` on) ends."""
    end = slot.end
    for s in plan.slots:
        if s.start == end and s.action == slot.action:
            end = s.end
    return end


def _pence(gbp: float | None) -> str:
    return "" if gbp is None else f"{gbp * 100:.1f}p"


def next_charge(plan: Plan | None, now: datetime, tz: ZoneInfo) -> dict[str, Any] | None:
    """The first charge run that starts after now: when, to what SOC, at what average price."""
    if plan is None:
        return None
    current = plan.slot_at(now)
    after = _run_end(plan, current) if current is not None and current.action.value == "charge" else now
    slots = [s for s in plan.slots if s.start >= after and s.start > now]
    first = next((i for i, s in enumerate(slots) if s.action.value == "charge"), None)
    if first is None:
        return None
    run = [slots[first]]
    for s in slots[first + 1 :]:
        if s.action.value != "charge" or s.start != run[-1].end:
            break
        run.append(s)
    prices = [s.value_inc_vat for s in run if s.value_inc_vat is not None]
    targets = [s.target_soc_pct for s in run if s.target_soc_pct is not None]
    start, end = run[0].start, run[-1].end
    avg = sum(prices) / len(prices) if prices else None
    text = f"{_hhmm(start, tz, now)}–{end.astimezone(tz):%H:%M}"
    if targets:
        text += f" to {max(targets):.0f} %"
    if avg is not None:
        text += f", about {_pence(avg)} a kWh"
    return {"text": text, "start": start.isoformat(), "end": end.isoformat(), "avg_p_per_kwh": avg and avg * 100}


def sentence(
    plan: Plan | None,
    slot: PlanSlot | None,
    mode: str | None,
    soc_pct: float | None,
    price_gbp: float | None,
    peak: PeakWindow | None,
    now: datetime,
    tz: ZoneInfo,
    override: OverrideState | None = None,
) -> str:
    """What is happening now, in one sentence a household reads at a glance. An override in force comes before
    the mode and the plan, as in the executor's decision (mode off still stands aside)."""
    soc = f" at {soc_pct:.0f} %" if soc_pct is not None else ""
    if mode == "off":
        return "batsched is switched off: the Powerwall runs by itself."
    if override is not None and override.action is not None and override.until is not None:
        end = _hhmm(override.until, tz, now)
        because = "because you set an override"
        if override.action.value == "charge":
            target = f" to {override.target_soc_pct:.0f} %" if override.target_soc_pct is not None else ""
            return f"Charging until {end}{target}, {because}."
        if override.action.value == "hold":
            return f"Holding{soc} until {end}, {because}."
        return f"Running the house from the battery until {end}, {because}."
    if mode == "force_charge":
        return f"Charging now{soc}, because you chose to force a charge."
    if mode == "hold":
        return f"Holding the battery{soc}, because you chose hold."
    if slot is None:
        return "No plan for now yet: the battery runs the house as usual."
    until = _hhmm(_run_end(plan, slot), tz, now) if plan is not None else _hhmm(slot.end, tz, now)
    why = reason_word(slot.reason.value)
    if slot.action.value == "charge":
        target = f" to {slot.target_soc_pct:.0f} %" if slot.target_soc_pct is not None else ""
        price = f" at {_pence(price_gbp)}" if price_gbp is not None else ""
        return f"Charging until {until}{target}{price} — {why}."
    if slot.action.value == "hold":
        if peak is not None and slot.reason.value in ("hold_for_later", "peak_blocked"):
            upcoming = peak.first_overlap(now, now + timedelta(days=2))
            if upcoming is not None:
                return f"Holding{soc} for the {_hhmm(upcoming[0], tz, now)} peak."
        return f"Holding{soc} until {until} — {why}."
    if slot.reason.value == "solar_covers":
        return f"The sun covers the house until about {until}; the battery takes any spare."
    return f"Running the house from the battery until {until} — {why}."
