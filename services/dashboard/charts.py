"""The Plan and History charts as plotly figures (data + layout), built from the latest messages. Pure.

plotly.js has no time zones, so it is given the local wall time; on the autumn change day the repeated hour's two
slots share an x position, and their hover text still tells them apart by price and action.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.models import SLOT, PlannerSettings
from shared.peak import PeakWindow
from shared.slots import local_day_bounds
from shared.topics import FORECAST_LOAD, FORECAST_PV, IMPORT_RATES, PLAN

from .live import Entry
from .views import local_naive, local_text, parse, plan_costs, planner_settings

ACTION_COLOURS = {"charge": "#2e9d4f", "hold": "#e08a1e", "self_use": "#6f8fb3", None: "#b9bec7"}
CHART_INPUTS = (PLAN, IMPORT_RATES, FORECAST_PV, FORECAST_LOAD)  # the Plan chart is redrawn when one changes
SOC_AXIS = {  # the right-hand axis of both charts
    "title": {"text": "SOC %"},
    "overlaying": "y",
    "side": "right",
    "range": [0, 100],
    "tickvals": [0, 20, 40, 60, 80, 100],
    "showgrid": False,
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
        *(
            {
                "type": "scatter",
                "mode": "lines",
                "name": name,
                "x": x,
                "y": [r.get(key) for r in rows],
                "line": {"color": colour, "shape": "hv"},
                "yaxis": "y3",
            }
            for key, name, colour in (("pv", "PV (kWh)", "#e6b800"), ("load", "load (kWh)", "#444"))
        ),
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
        "yaxis2": SOC_AXIS,
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
        "yaxis2": SOC_AXIS,
    }
    return {"data": data, "layout": layout}
