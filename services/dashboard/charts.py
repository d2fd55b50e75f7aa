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
from shared.topics import EXECUTOR_WINDOWS, FORECAST_LOAD, FORECAST_PV, IMPORT_ESTIMATE, IMPORT_RATES, PLAN

from .live import Entry
from .views import local_naive, local_text, parse, plan_costs, planner_settings
from .words import action_word, reason_word

ACTION_COLOURS = {"charge": "#1d7a3a", "hold": "#a85d00", "self_use": "#4a6a8f", None: "#8a909b"}
ESTIMATE_COLOUR = "#c9ced6"  # hatched: an estimate is not a price
WINDOW_FILL = "rgba(46, 91, 184, 0.14)"
# The Plan chart is redrawn when one of these changes.
CHART_INPUTS = (PLAN, IMPORT_RATES, IMPORT_ESTIMATE, FORECAST_PV, FORECAST_LOAD, EXECUTOR_WINDOWS)
# 24-hour local times over the day, never rotated (a phone has room for about five labels).
TIME_AXIS = {"type": "date", "tickformat": "%H:%M<br>%a %d", "tickangle": 0, "nticks": 6, "automargin": True}
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
                reason = reason_word(s.reason.value) + (f" ({s.reason_detail})" if s.reason_detail else "")
                row.update(
                    price=price,
                    action=s.action.value,
                    reason=reason,
                    soc=s.expected_soc_pct,
                    pv=s.pv_kwh,
                    load=s.load_kwh,
                    cost=s.cost_gbp,
                )
    estimate = parse(entries, IMPORT_ESTIMATE)
    if estimate is not None and estimate.is_valid(now):
        for es in estimate.slots:
            if start <= es.start < horizon_end:
                row = slots.setdefault(es.start, {"price": None, "action": None, "reason": "no plan for this slot"})
                if row.get("price") is None or es.start >= estimate.published_until:
                    row.update(price=None, estimate=es.median_gbp, band=(es.low_gbp, es.high_gbp))
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
        if row.get("estimate") is not None:
            low, high = row["band"]
            price = (
                f"not published yet; estimate {row['estimate'] * 100:.1f} p/kWh "
                f"(likely {low * 100:.0f}–{high * 100:.0f})"
            )
        soc = f"<br>SOC after: {row['soc']:.0f} %" if row.get("soc") is not None else ""
        hover.append(
            f"{local_text(t, tz, '%a %H:%M')}–{local_text(t + timedelta(minutes=30), tz, '%H:%M')}<br>"
            f"price: {price}<br>action: {action_word(row['action']) if row.get('action') else '—'}<br>"
            f"why: {row.get('reason')}{soc}"
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
            "type": "bar",
            "name": "estimated price, not published (p/kWh)",
            "x": x,
            "y": [None if r.get("estimate") is None else round(r["estimate"] * 100, 2) for r in rows],
            "marker": {"color": ESTIMATE_COLOUR, "pattern": {"shape": "/", "fgcolor": "#5f6673", "size": 6}},
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
    windows = parse(entries, EXECUTOR_WINDOWS)
    window_count = 0
    annotations: list[dict[str, Any]] = []
    for w in windows.windows if windows is not None else []:
        if w.end <= start or w.start >= horizon_end:
            continue
        window_count += 1
        x0, x1 = local_naive(max(w.start, start), tz), local_naive(min(w.end, horizon_end), tz)
        line = {"width": 1, "color": "#2e5bb8"}
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": x0, "x1": x1, "y0": 0, "y1": 1,
                       "fillcolor": WINDOW_FILL, "line": line, "layer": "below"})  # fmt: skip
        target = f" to {w.target_soc_pct:.0f} %" if w.target_soc_pct is not None else ""
        annotations.append({"text": f"your {w.action} window{target}", "xref": "x", "yref": "paper", "x": x0,
                            "y": 1.0, "xanchor": "left", "yanchor": "top", "showarrow": False,
                            "font": {"size": 11, "color": "#2e5bb8"}})  # fmt: skip
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
        "xaxis": {**TIME_AXIS, "anchor": "y3"},
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
            },
            *annotations,
        ],
    }
    return {
        "figure": {"data": data, "layout": layout},
        "slots": len(order),
        "planned": sum(1 for r in rows if r.get("action")),
        "charge_slots": sum(1 for r in rows if r.get("action") == "charge"),
        "estimated_slots": sum(1 for r in rows if r.get("estimate") is not None),
        "estimate_method": estimate.method if estimate is not None else None,
        "window_count": window_count,
        "end": plan_end(plan, tz),
        "costs": plan_costs(plan),
        "generated": local_text(plan.generated_at, tz) if plan else None,
        "valid_until": local_text(plan.valid_until, tz) if plan else None,
        "expired": bool(plan and not plan.is_valid(now)),
    }


END_VALUE_WORDS = {  # Plan.end_value_method: how the energy left at the end was valued
    "zero": "not counted at all",
    "linear": "at a flat price per kWh",
    "forecast": "at the prices forecast beyond the plan",
    "scenarios": "over several likely price paths after the plan",
    "estimate": "at the estimated prices after the published ones",
}


def plan_end(plan: Any, tz: ZoneInfo) -> dict[str, Any] | None:
    """Where the plan leaves the battery: the SOC at the horizon's end and what that energy is counted as worth."""
    if plan is None or not plan.slots:
        return None
    last = plan.slots[-1]
    own = plan.comparison.get("plan")  # the comparison's figures, valued as every strategy's are
    soc = plan.end_soc_pct if plan.end_soc_pct is not None else last.expected_soc_pct
    return {
        "at": local_text(last.end, tz),
        "soc_pct": round(soc, 1),
        "value_gbp": round(own.end_value_gbp if own is not None else plan.end_value_gbp, 2),
        "method": END_VALUE_WORDS.get(plan.end_value_method or "", plan.end_value_method),
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
        "xaxis": TIME_AXIS,
        "yaxis": {"title": {"text": "p/kWh"}},
        "yaxis2": SOC_AXIS,
    }
    return {"data": data, "layout": layout}
