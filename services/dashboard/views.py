"""Pure view-building: from the latest messages and the clock's time to the JSON each page renders.

No I/O here. Times arrive in UTC and leave as local wall-clock text for people (the configured zone), or as
naive local ISO strings for the chart (plotly.js has no time zones, so it is given the local wall time; on the
autumn change day the repeated hour's two slots share an x position, and their hover text still tells them
apart by price and action).
A message that does not validate is reported as a warning on the page, never guessed at.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from shared.models import SLOT, AppliedDecision, DailySummary, Plan, PlannerSettings
from shared.peak import PeakWindow
from shared.plain import parse_bool
from shared.prices import price_now
from shared.slots import local_day_bounds, slot_start
from shared.topics import (
    BATTERY_STATE,
    EXECUTOR_APPLIED,
    EXECUTOR_DAILY_SUMMARY,
    EXECUTOR_DRY_RUN,
    EXECUTOR_HEARTBEAT,
    EXECUTOR_MODE,
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

from .live import Entry

ACTION_COLOURS = {"charge": "#2e9d4f", "hold": "#e08a1e", "self_use": "#6f8fb3", None: "#b9bec7"}
BASELINE_LABELS = {"no_battery": "No battery", "self_use": "Battery, self-use only", "seed_rule": "Seed rule"}


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
CHART_INPUTS = (PLAN, IMPORT_RATES, FORECAST_PV, FORECAST_LOAD)  # the Plan chart is redrawn when one changes


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
    for svc in SERVICES:
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

    slot = plan_now.slot if plan_now and plan_now.is_valid(now) else (plan.slot_at(now) if plan else None)
    action: dict[str, Any] = {"action": None, "reason": None, "detail": None, "source": None}
    if slot is not None:
        action = {
            "action": slot.action.value,
            "reason": slot.reason.value,
            "detail": slot.reason_detail,
            "target_soc_pct": slot.target_soc_pct,
            "source": "plan",
        }
    last_decision = None
    if applied is not None:
        blocked = [f"{r.rule}: {r.detail or r.verdict}" for r in applied.rules if r.verdict != "pass"]
        last_decision = {
            "at": local_text(applied.generated_at, tz),
            "requested": applied.requested_action.value if applied.requested_action else None,
            "action": applied.action.value if applied.action else "stand aside",
            "outcome": applied.outcome,
            "rules": blocked,
            "error": applied.error,
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
        }
    if current is not None:
        price = {
            "known": current.known,
            "p_per_kwh": round(current.value_inc_vat * 100, 2) if current.value_inc_vat is not None else None,
            "slot": f"{local_text(current.slot_start, tz, '%H:%M')}–{local_text(current.slot_end, tz, '%H:%M')}",
            "stale": not current.is_valid(now),
        }
    executor = None
    if heartbeat is not None:
        executor = {
            "forced": heartbeat.forced,
            "lease_until": local_text(heartbeat.lease_until, tz, "%H:%M") if heartbeat.lease_until else None,
            "age": age_text((now - heartbeat.generated_at).total_seconds()),
        }
    watchdog = parse(entries, WATCHDOG_REPORT)
    return {
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
        "mode": text(entries, EXECUTOR_MODE),
        "dry_run": _bool_text(text(entries, EXECUTOR_DRY_RUN)),
        "settings": planner_settings(entries),
        "services": services,
        "inputs": [{"label": f.label, "state": f.state, "age": age_text(f.age_s), "detail": f.detail} for f in inputs],
        "warnings": warnings,
        "daily_summary": summary_view(entries),
        "plan_costs": plan_costs(plan),
    }


def summary_view(entries: Mapping[str, Entry]) -> dict[str, Any] | None:
    """``executor/daily_summary``: yesterday's figures, plus any extra totals the executor adds
    (e.g. ``month``/``since_install`` blocks) shown as they are."""
    entry = entries.get(EXECUTOR_DAILY_SUMMARY.path)
    if entry is None:
        return None
    summary: DailySummary | None = parse(entries, EXECUTOR_DAILY_SUMMARY)
    if summary is None:
        return {"error": "the last daily summary did not validate"}
    doc = entry.doc if isinstance(entry.doc, dict) else {}
    extra = {k: v for k, v in doc.items() if isinstance(v, dict)}
    return {"date": summary.date.isoformat(), **summary.model_dump(mode="json", exclude={"schema_version"}), **extra}


def plan_costs(plan: Plan | None) -> dict[str, Any] | None:
    if plan is None:
        return None
    baselines = [
        {
            "name": BASELINE_LABELS.get(k, k),
            "cost_gbp": round(v, 2),
            "saving_gbp": round(v - plan.expected_cost_gbp, 2),
        }
        for k, v in plan.baseline_costs_gbp.items()
    ]
    return {
        "plan_id": plan.plan_id,
        "status": plan.status,
        "reason": plan.reason,
        "expected_cost_gbp": round(plan.expected_cost_gbp, 2),
        "end_value_gbp": round(plan.end_value_gbp, 2),
        "baselines": baselines,
        "slots": len(plan.slots),
    }


def _peak_shapes(start: datetime, end: datetime, peak: tuple[str, str], tz: ZoneInfo) -> list[dict[str, Any]]:
    try:
        window = PeakWindow.parse(peak[0], peak[1], tz)
    except ValueError:
        return []
    shapes = []
    day = start.astimezone(tz).date() - timedelta(days=1)
    while local_day_bounds(day, tz)[0] < end:
        w0, w1 = window.on(day)
        if w1 > start and w0 < end:
            shapes.append(
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "paper",
                    "x0": local_naive(max(w0, start), tz),
                    "x1": local_naive(min(w1, end), tz),
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": "rgba(214, 69, 65, 0.10)",
                    "line": {"width": 0},
                    "layer": "below",
                }
            )
        day += timedelta(days=1)
    return shapes


def plan_figure(entries: Mapping[str, Entry], now: datetime, tz: ZoneInfo) -> dict[str, Any]:
    """The Plan page's chart as a plotly figure (data + layout), and the facts shown beside it."""
    plan = parse(entries, PLAN)
    rates = parse(entries, IMPORT_RATES)
    pv = parse(entries, FORECAST_PV)
    load = parse(entries, FORECAST_LOAD)
    settings = planner_settings(entries)
    defaults = PlannerSettings()
    peak = (
        settings["peak_start_local"] or defaults.peak_start_local,
        settings["peak_end_local"] or defaults.peak_end_local,
    )
    horizon_end = now + timedelta(hours=48)
    start = now - timedelta(minutes=30)

    slots: dict[datetime, dict[str, Any]] = {}
    if rates is not None:
        for r in rates.rates:
            if start <= r.start < horizon_end:
                slots[r.start] = {"price": r.value_inc_vat, "action": None, "reason": "no plan for this slot"}
    if plan is not None:
        for s in plan.slots:
            if start <= s.start < horizon_end:
                row = slots.setdefault(s.start, {"price": None})
                price = s.value_inc_vat if s.value_inc_vat is not None else row.get("price")
                reason = s.reason.value + (f": {s.reason_detail}" if s.reason_detail else "")
                row.update(
                    price=price,
                    action=s.action.value,
                    reason=reason,
                    soc=s.expected_soc_pct,
                    pv=s.pv_kwh,
                    load=s.load_kwh,
                    cost=s.cost_gbp,
                )
    for forecast, key in ((pv, "pv"), (load, "load")):
        if forecast is None:
            continue
        for fs in forecast.slots:
            if start <= fs.start < horizon_end and fs.energy_kwh is not None:
                slots.setdefault(fs.start, {"price": None, "action": None, "reason": "no plan"})[key] = fs.energy_kwh

    order = sorted(slots)
    x = [local_naive(t, tz) for t in order]
    rows = [slots[t] for t in order]
    hover = []
    for t, row in zip(order, rows, strict=True):
        price = "unknown" if row.get("price") is None else f"{row['price'] * 100:.2f} p/kWh"
        soc = f"<br>SOC after: {row['soc']:.0f} %" if row.get("soc") is not None else ""
        hover.append(
            f"{local_text(t, tz, '%a %H:%M')}–{local_text(t + timedelta(minutes=30), tz, '%H:%M')}<br>"
            f"price: {price}<br>action: {row.get('action') or '—'}<br>why: {row.get('reason')}{soc}"
        )
    data: list[dict[str, Any]] = [
        {
            "type": "bar",
            "name": "price (p/kWh)",
            "x": x,
            "y": [None if r.get("price") is None else round(r["price"] * 100, 2) for r in rows],
            "marker": {"color": [ACTION_COLOURS.get(r.get("action"), ACTION_COLOURS[None]) for r in rows]},
            "hovertext": hover,
            "hoverinfo": "text",
            "xaxis": "x",
            "yaxis": "y",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "expected SOC (%)",
            "x": x,
            "y": [r.get("soc") for r in rows],
            "line": {"color": "#5b3fa8", "width": 2.5},
            "yaxis": "y2",
            "hoverinfo": "skip",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "PV (kWh)",
            "x": x,
            "y": [r.get("pv") for r in rows],
            "line": {"color": "#e6b800", "shape": "hv"},
            "yaxis": "y3",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "load (kWh)",
            "x": x,
            "y": [r.get("load") for r in rows],
            "line": {"color": "#444", "shape": "hv"},
            "yaxis": "y3",
        },
    ]
    # A legend entry per action so the bar colours are explained.
    for action, colour in ACTION_COLOURS.items():
        data.append(
            {
                "type": "bar",
                "name": action or "no plan",
                "x": [None],
                "y": [None],
                "marker": {"color": colour},
                "showlegend": True,
                "hoverinfo": "skip",
            }
        )
    # Shade only where there is data: the chart ends where the known prices (or plan) end.
    shapes = _peak_shapes(start, min(horizon_end, order[-1] + SLOT), peak, tz) if order else []
    shapes.append(
        {
            "type": "line",
            "xref": "x",
            "yref": "paper",
            "x0": local_naive(now, tz),
            "x1": local_naive(now, tz),
            "y0": 0,
            "y1": 1,
            "line": {"color": "#d64541", "width": 1, "dash": "dot"},
        }
    )
    layout = {
        "margin": {"l": 55, "r": 55, "t": 28, "b": 40},
        "barmode": "overlay",
        "bargap": 0.1,
        "hovermode": "closest",
        "legend": {"orientation": "h", "y": -0.12},
        "xaxis": {"type": "date", "anchor": "y3"},
        "yaxis": {"title": {"text": "p/kWh"}, "domain": [0.35, 1]},
        "yaxis2": {
            "title": {"text": "SOC %"},
            "overlaying": "y",
            "side": "right",
            "range": [0, 100],
            "tickvals": [0, 20, 40, 60, 80, 100],
            "showgrid": False,
        },
        "yaxis3": {"title": {"text": "kWh"}, "domain": [0, 0.28]},
        "shapes": shapes,
        "annotations": [
            {
                "text": f"peak {peak[0]}–{peak[1]} shaded",
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": 1.05,
                "showarrow": False,
                "font": {"size": 11, "color": "#d64541"},
                "xanchor": "left",
            }
        ],
    }
    return {
        "figure": {"data": data, "layout": layout},
        "slots": len(order),
        "planned": sum(1 for r in rows if r.get("action")),
        "charge_slots": sum(1 for r in rows if r.get("action") == "charge"),
        "costs": plan_costs(plan),
        "generated": local_text(plan.generated_at, tz) if plan else None,
        "valid_until": local_text(plan.valid_until, tz) if plan else None,
        "expired": bool(plan and not plan.is_valid(now)),
    }


# --------------------------------------------------------------------------------------------- history


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


def history_figure(battery: list[Any], prices: list[tuple[str, float]], tz: ZoneInfo) -> dict[str, Any]:
    soc_x = [local_naive(datetime.fromisoformat(b.observed_at), tz) for b in battery]
    starts = [datetime.fromisoformat(p[0]) for p in prices]
    values = [round(p[1] * 100, 2) for p in prices]
    if starts:  # a step line ends where the last slot ends, not where it starts
        starts.append(starts[-1] + SLOT)
        values.append(values[-1])
    price_x = [local_naive(t, tz) for t in starts]
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "SOC (%)",
            "x": soc_x,
            "y": [b.soc_pct for b in battery],
            "line": {"color": "#5b3fa8"},
            "yaxis": "y2",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "price (p/kWh)",
            "x": price_x,
            "y": values,
            "line": {"color": "#2e7bb8", "shape": "hv"},
            "yaxis": "y",
        },
    ]
    layout = {
        "margin": {"l": 55, "r": 55, "t": 10, "b": 40},
        "legend": {"orientation": "h", "y": -0.15},
        "xaxis": {"type": "date"},
        "yaxis": {"title": {"text": "p/kWh"}},
        "yaxis2": {
            "title": {"text": "SOC %"},
            "overlaying": "y",
            "side": "right",
            "range": [0, 100],
            "tickvals": [0, 20, 40, 60, 80, 100],
            "showgrid": False,
        },
    }
    return {"data": data, "layout": layout}
