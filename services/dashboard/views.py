"""Pure view-building: from the latest messages and the clock's time to the JSON the Now page (and every page's
status strip) renders; the charts are in ``charts`` and the decision history in ``history``.

No I/O here. Times arrive in UTC and leave as local wall-clock text for people (the configured zone), or as naive
local ISO strings for the charts. A message that does not validate is reported as a warning, never guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from shared.models import SLOT, DailySummary, OverrideState, Plan, PlannerSettings
from shared.peak import PeakWindow
from shared.plain import parse_bool
from shared.prices import price_now
from shared.slots import slot_start
from shared.tariff_kinds import tariff_name
from shared.topics import (
    BATTERY_STATE,
    EXECUTOR_ALERT,
    EXECUTOR_APPLIED,
    EXECUTOR_DAILY_SUMMARY,
    EXECUTOR_DRY_RUN,
    EXECUTOR_HEARTBEAT,
    EXECUTOR_MODE,
    EXECUTOR_OVERRIDE_STATE,
    FORECAST_LOAD,
    FORECAST_PV,
    IMPORT_CURRENT,
    IMPORT_RATES,
    PLAN,
    PLAN_CURRENT,
    PLANNER_SETTING,
    PLANNER_SETTINGS,
    PRICING_ALERT,
    SERVICES,
    STATUS,
    WATCHDOG_REPORT,
    Channel,
)

from . import headline
from .history_spans import why as decided_by
from .live import Entry
from .words import action_word, outcome_word, plain, power_flows, reason_word

BASELINE_LABELS = {"no_battery": "No battery", "self_use": "Battery, self-use only", "seed_rule": "Seed rule"}
# Every service, the accounting job included (its status topic is ``accounting/status`` like the others').
SHOWN_SERVICES = tuple(dict.fromkeys((*SERVICES, "accounting")))


@dataclass(frozen=True)
class Freshness:
    name: str
    label: str
    state: str  # fresh | stale | missing | invalid
    age_s: float | None
    detail: str


INPUTS = (
    (IMPORT_RATES, "Prices"),
    (FORECAST_PV, "PV forecast"),
    (FORECAST_LOAD, "Load forecast"),
    (BATTERY_STATE, "Battery state"),
    (PLAN, "Plan"),
)
FRESHNESS_FOR_HEALTH = (BATTERY_STATE.path, PLAN.path, IMPORT_RATES.path)  # /healthz fails when one is not fresh


def parse(entries: Mapping[str, Entry], channel: Channel) -> Any:
    """The validated model on ``channel`` (entries are keyed by the topic below the prefix), or None when absent
    or invalid."""
    entry = entries.get(channel.path)
    if entry is None or channel.model is None:
        return None
    try:
        return channel.model.model_validate_json(entry.payload)
    except (ValidationError, ValueError):
        return None


def text(entries: Mapping[str, Entry], channel: Channel) -> str | None:
    """The plain-text value on ``channel``, or None when absent."""
    entry = entries.get(channel.path)
    return entry.text if entry is not None else None


def age_text(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    s = max(0, int(seconds))
    if s < 90:
        return f"{s} s"
    if s < 5400:
        return f"{s // 60} min"
    if s < 2 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def local_text(t: datetime | None, tz: ZoneInfo, fmt: str = "%a %d %b %H:%M") -> str:
    return t.astimezone(tz).strftime(fmt) if t else "—"


def local_naive(t: datetime, tz: ZoneInfo) -> str:
    return t.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S")


def freshness(entries: Mapping[str, Entry], now: datetime) -> list[Freshness]:
    """Age and state of each input. Stale = past its own ``valid_until``; missing = never seen."""
    out = []
    for channel, label in INPUTS:
        name = channel.path
        entry = entries.get(name)
        if entry is None:
            out.append(Freshness(name, label, "missing", None, "nothing received yet"))
            continue
        doc = parse(entries, channel)
        if doc is None:
            out.append(Freshness(name, label, "invalid", None, "last message did not validate"))
            continue
        made = getattr(doc, "observed_at", None) or doc.generated_at
        age = (now - made).total_seconds()
        if doc.is_valid(now):
            out.append(Freshness(name, label, "fresh", age, f"valid until {doc.valid_until.isoformat()}"))
        else:
            out.append(Freshness(name, label, "stale", age, f"expired at {doc.valid_until.isoformat()}"))
    return out


def service_status(entries: Mapping[str, Entry]) -> dict[str, str]:
    out = {}
    for svc in SHOWN_SERVICES:
        value = text(entries, STATUS.at(service=svc))
        out[svc] = value if value in ("online", "offline") else "unknown"
    return out


def _bool_text(value: str | None) -> bool | None:
    if value is None:
        return None
    try:
        return parse_bool(value)
    except ValueError:
        return None


def planner_settings(entries: Mapping[str, Entry]) -> dict[str, str | None]:
    return {name: text(entries, PLANNER_SETTING.at(setting=name)) for name in PLANNER_SETTINGS}


def peak_window(entries: Mapping[str, Entry], tz: ZoneInfo) -> PeakWindow | None:
    """The peak window the planner publishes (its defaults until it has), or None when unreadable."""
    settings, defaults = planner_settings(entries), PlannerSettings()
    try:
        return PeakWindow.parse(
            settings["peak_start_local"] or defaults.peak_start_local,
            settings["peak_end_local"] or defaults.peak_end_local,
            tz,
        )
    except ValueError:
        return None


def override_view(entries: Mapping[str, Entry], now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """The override in force, for the Control page's Override card: "In force: charge until 05:30 (to 90 %)" in
    the system's zone, "None in force", or unknown before the executor has said."""
    state: OverrideState | None = parse(entries, EXECUTOR_OVERRIDE_STATE)
    if state is None:
        return {"in_force": False, "action": None, "text": "Not known yet: no word from the executor"}
    current = headline.in_force(state, now)
    if current is None:
        return {"in_force": False, "action": None, "text": "None in force"}
    assert current.action is not None
    return {
        "in_force": True,
        "action": current.action.value,
        "text": "In force: " + headline.override_line(current, now, tz),
    }


def now_view(
    entries: Mapping[str, Entry], now: datetime, tz: ZoneInfo, heartbeat_stale_s: float, bus_connected: bool
) -> dict[str, Any]:
    """Everything the Now page (and every page's status strip) shows."""
    battery = parse(entries, BATTERY_STATE)
    current = parse(entries, IMPORT_CURRENT)
    plan = parse(entries, PLAN)
    plan_now = parse(entries, PLAN_CURRENT)
    applied = parse(entries, EXECUTOR_APPLIED)
    heartbeat = parse(entries, EXECUTOR_HEARTBEAT)
    alert = parse(entries, PRICING_ALERT)
    executor_alert = parse(entries, EXECUTOR_ALERT)
    inputs = freshness(entries, now)
    services = service_status(entries)
    warnings: list[str] = []
    if not bus_connected:
        warnings.append("The dashboard has lost its connection to the MQTT broker: values below may be old.")
    for f in inputs:
        if f.state != "fresh":
            warnings.append(f"{f.label}: {f.state} ({f.detail}).")
    for svc, status in services.items():
        if status == "offline":
            warnings.append(f"Service {svc} is offline.")
    if heartbeat is not None and (now - heartbeat.generated_at).total_seconds() > heartbeat_stale_s:
        warnings.append(f"Executor heartbeat is {age_text((now - heartbeat.generated_at).total_seconds())} old.")
    if alert is not None and alert.code != "ok":
        warnings.append(f"Pricing: {alert.message}")
    if executor_alert is not None and executor_alert.code != "ok":
        warnings.append(f"Battery control: {executor_alert.message}")

    slot = plan_now.slot if plan_now and plan_now.is_valid(now) else (plan.slot_at(now) if plan else None)
    action: dict[str, Any] = {"action": None, "reason": None, "detail": None, "source": None}
    if slot is not None:
        action = {
            "action": slot.action.value,
            "action_text": action_word(slot.action.value),
            "reason": slot.reason.value,
            "reason_text": reason_word(slot.reason.value).capitalize(),
            "detail": slot.reason_detail,
            "target_soc_pct": slot.target_soc_pct,
            "source": "plan",
        }
    last_decision = None
    if applied is not None:
        last_decision = {
            "at": local_text(applied.generated_at, tz, "%H:%M:%S"),
            "requested": applied.requested_action.value if applied.requested_action else None,
            "action": action_word(applied.action.value if applied.action else None),
            "outcome": outcome_word(applied.outcome),
            "why": decided_by(applied, tz),
            "error": plain(applied.error, tz),
        }
    price = None
    rates = parse(entries, IMPORT_RATES)
    if current is None and rates is not None:
        # No current-price message yet: read the slot in progress from the series (never guess a missing one).
        start = slot_start(now)
        value = price_now(now, None, rates)
        price = {
            "known": value is not None,
            "p_per_kwh": round(value * 100, 2) if value is not None else None,
            "slot": f"{local_text(start, tz, '%H:%M')}–{local_text(start + SLOT, tz, '%H:%M')} (from the price list)",
            "stale": not rates.is_valid(now),
            "tariff": tariff_name(rates.tariff_code),
        }
    if current is not None:
        price = {
            "known": current.known,
            "p_per_kwh": round(current.value_inc_vat * 100, 2) if current.value_inc_vat is not None else None,
            "slot": f"{local_text(current.slot_start, tz, '%H:%M')}–{local_text(current.slot_end, tz, '%H:%M')}",
            "stale": not current.is_valid(now),
            "tariff": tariff_name(current.tariff_code),
        }
    executor = None
    if heartbeat is not None:
        executor = {
            "forced": heartbeat.forced,
            "lease_until": local_text(heartbeat.lease_until, tz, "%H:%M") if heartbeat.lease_until else None,
            "age": age_text((now - heartbeat.generated_at).total_seconds()),
        }
    watchdog = parse(entries, WATCHDOG_REPORT)
    mode = text(entries, EXECUTOR_MODE)
    override = headline.in_force(parse(entries, EXECUTOR_OVERRIDE_STATE), now)
    price_gbp = None if not price or price["p_per_kwh"] is None else price["p_per_kwh"] / 100
    soc_pct = battery.soc_pct if battery else None
    return {
        "headline": headline.sentence(
            plan, slot, mode, soc_pct, price_gbp, peak_window(entries, tz), now, tz, override
        ),
        "next_charge": headline.next_charge(plan, now, tz),
        "flows": power_flows(battery.battery_power_w, battery.grid_power_w, battery.solar_power_w, battery.load_power_w)
        if battery
        else [],
        "executor": executor,
        "watchdog": None if watchdog is None else {"state": watchdog.state, "detail": watchdog.detail},
        "now": now.isoformat(),
        "now_local": local_text(now, tz, "%a %d %b %Y %H:%M"),
        "bus_connected": bus_connected,
        "battery": None
        if battery is None
        else {
            "soc_pct": round(battery.soc_pct, 1),
            "battery_power_w": battery.battery_power_w,
            "grid_power_w": battery.grid_power_w,
            "solar_power_w": battery.solar_power_w,
            "load_power_w": battery.load_power_w,
            "grid_status": battery.grid_status.value,
            "observed": local_text(battery.observed_at, tz, "%H:%M:%S"),
            "stale": not battery.is_valid(now),
        },
        "price": price,
        "action": action,
        "last_decision": last_decision,
        "mode": mode,
        "override": override_view(entries, now, tz),
        "dry_run": _bool_text(text(entries, EXECUTOR_DRY_RUN)),
        "settings": planner_settings(entries),
        "services": services,
        "inputs": [{"label": f.label, "state": f.state, "age": age_text(f.age_s), "detail": f.detail} for f in inputs],
        "warnings": warnings,
        "daily_summary": summary_view(entries),
        "plan_costs": plan_costs(plan),
    }


def summary_view(entries: Mapping[str, Entry]) -> dict[str, Any] | None:
    """``executor/daily_summary`` (the last finished day) as plain lines: what it cost, and what it would have cost
    without a battery. A saving is said as a saving and a loss as a loss, never as a negative saving."""
    if entries.get(EXECUTOR_DAILY_SUMMARY.path) is None:
        return None
    summary: DailySummary | None = parse(entries, EXECUTOR_DAILY_SUMMARY)
    if summary is None:
        return {"error": "the last daily summary did not validate"}
    day = summary.date.strftime("%a %d %b")
    lines = [f"{day}: electricity cost £{summary.actual_cost_gbp:.2f} (estimated from the meter readings)."]
    if summary.no_battery_cost_gbp is not None:
        stored = summary.stored_change_value_gbp  # the energy the day left in the battery, valued (None: not valued)
        diff = summary.no_battery_cost_gbp - summary.actual_cost_gbp + (stored or 0.0)
        verdict = f"saved £{diff:.2f}" if diff >= 0 else f"cost £{-diff:.2f} more"
        allowing = ", allowing for the energy left in it" if stored else ""
        lines.append(
            f"Without a battery it would have been £{summary.no_battery_cost_gbp:.2f}: the battery {verdict}{allowing}."
        )
    for name, totals in (("This month", summary.month), ("Since install", summary.since_install)):
        if totals is not None and totals.saved_vs_no_battery_gbp is not None:
            saved = totals.saved_vs_no_battery_gbp
            verdict = f"saved £{saved:.2f}" if saved >= 0 else f"cost £{-saved:.2f} more"
            spent = f"£{totals.actual_cost_gbp:.2f} over {totals.days} days"
            lines.append(f"{name}: {spent}; against no battery the battery {verdict}.")
    return {"date": summary.date.isoformat(), "lines": lines}


def plan_costs(plan: Plan | None) -> dict[str, Any] | None:
    """The plan's cost and, per other strategy, what the plan saves against it in words. With the plan's
    ``comparison`` (each strategy's end energy valued alike) when it has one; else the bare baseline costs."""
    if plan is None:
        return None
    from .money_view import saving  # here: money_view reads views' parse

    rows = []
    if plan.comparison:
        for key, o in plan.comparison.items():
            if key != "plan":
                rows.append({"name": BASELINE_LABELS.get(key, key), "cost_gbp": round(o.cost_gbp, 2),
                             "vs": saving(o.saving_gbp, present=True)})  # fmt: skip
    else:
        for key, v in plan.baseline_costs_gbp.items():
            rows.append({"name": BASELINE_LABELS.get(key, key), "cost_gbp": round(v, 2),
                         "vs": saving(v - plan.expected_cost_gbp, present=True)})  # fmt: skip
    return {
        "plan_id": plan.plan_id,
        "status": plan.status,
        "reason": plan.reason,
        "expected_cost_gbp": round(plan.expected_cost_gbp, 2),
        "end_value_gbp": round(plan.end_value_gbp, 2),
        "baselines": rows,
        "fair": bool(plan.comparison),
        "slots": len(plan.slots),
    }
