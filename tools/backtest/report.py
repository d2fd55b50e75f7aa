"""The backtest's outputs: a self-contained HTML report (plotly, with plotly.js inlined: no CDN, works offline)
and a CSV of per-slot results. Charts: monthly cost per strategy, a typical day, SOC and price over a week."""

from __future__ import annotations

import html
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from tools.backtest.result import LABELS, BacktestResult

COLOURS = {
    "no_battery": "#8c8c8c",
    "self_use": "#4c78a8",
    "seed_rule": "#f58518",
    "batsched": "#2ca02c",
    "bound": "#b279a2",
}
PRICE_COLOUR = "#d62728"


def default_week(result: BacktestResult) -> date:
    """The full local Monday-to-Sunday week whose prices vary most (the planner has most to do there)."""
    local = result.local
    days = pd.Series(result.price, index=local.date)
    first, last = local[0].date(), local[-1].date()
    monday = first + timedelta(days=(7 - first.weekday()) % 7)
    best, best_spread = first, -1.0
    while monday + timedelta(days=6) <= last:
        week = days[(days.index >= monday) & (days.index < monday + timedelta(days=7))]
        spread = float(week.std()) if len(week) else -1.0
        if spread > best_spread:
            best, best_spread = monday, spread
        monday += timedelta(days=7)
    return best


def monthly_chart(result: BacktestResult) -> go.Figure:
    monthly = result.monthly()
    fig = go.Figure()
    for name in monthly.columns:
        fig.add_bar(
            name=LABELS.get(name, name),
            x=list(monthly.index),
            y=monthly[name].round(2),
            marker_color=COLOURS.get(name),
            hovertemplate="%{x}: £%{y:.2f}<extra>" + LABELS.get(name, name) + "</extra>",
        )
    fig.update_layout(
        title="Monthly cost per strategy", barmode="group", yaxis_title="£ per month", legend_orientation="h"
    )
    fig.update_xaxes(type="category")
    return fig


def typical_day_chart(result: BacktestResult) -> go.Figure:
    """Mean grid import per local half-hour of the day, per strategy, with the mean price."""
    tod = result.local.strftime("%H:%M")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for name, run in result.runs.items():
        mean = pd.Series(run.import_kwh, index=tod).groupby(level=0).mean()
        fig.add_scatter(
            x=list(mean.index), y=mean.round(3), name=run.label, line_color=COLOURS.get(name), secondary_y=False
        )
    price = pd.Series(result.price * 100, index=tod).groupby(level=0).mean()
    fig.add_scatter(
        x=list(price.index),
        y=price.round(2),
        name="Mean price (p/kWh)",
        line={"color": PRICE_COLOUR, "dash": "dot"},
        secondary_y=True,
    )
    fig.update_layout(title="A typical day: mean grid import per half-hour (local time)", legend_orientation="h")
    fig.update_xaxes(type="category", dtick=4, tickangle=0)
    fig.update_yaxes(title_text="kWh per half-hour", secondary_y=False)
    fig.update_yaxes(title_text="p/kWh", secondary_y=True)
    return fig


def week_chart(result: BacktestResult, week: date) -> go.Figure:
    local = result.local
    mask = (local.date >= week) & (local.date < week + timedelta(days=7))
    x = local[mask].strftime("%Y-%m-%d %H:%M")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for name, run in result.runs.items():
        if run.soc_pct is None:
            continue
        fig.add_scatter(
            x=list(x), y=np.round(run.soc_pct[mask], 1), name=f"SOC: {run.label}", line_color=COLOURS.get(name)
        )
    fig.add_scatter(
        x=list(x),
        y=np.round(result.price[mask] * 100, 2),
        name="Price (p/kWh)",
        line={"color": PRICE_COLOUR, "shape": "hv"},
        secondary_y=True,
    )
    fig.update_layout(title=f"SOC and price, week of {week:%d %b %Y}", legend_orientation="h")
    fig.update_yaxes(title_text="SOC %", range=[0, 100], secondary_y=False)
    fig.update_yaxes(title_text="p/kWh", secondary_y=True)
    return fig


def _table(result: BacktestResult) -> str:
    annual = result.annual()
    rows = []
    for name, fig in annual.items():
        run = result.runs[name]
        saving = fig.get("saving_vs_no_battery_gbp")
        rows.append(
            "<tr>"
            f"<td>{html.escape(run.label)}{'<sup>*</sup>' if name == 'bound' else ''}</td>"
            f"<td class=n>£{fig['cost_gbp']:,.2f}</td>"
            f"<td class=n>{'' if saving is None else f'£{saving:,.2f}'}</td>"
            f"<td class=n>{fig['import_kwh']:,.0f}</td><td class=n>{fig['export_kwh']:,.0f}</td>"
            "</tr>"
        )
    return (
        "<table><thead><tr><th>Strategy</th><th>Cost</th><th>Saving vs no battery</th><th>Import kWh</th>"
        "<th>Export kWh</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _forecast_note(result: BacktestResult) -> str:
    if result.settings.get("forecasts") == "own":
        return "the planner forecasts load and PV from the past days, where the live system also uses weather forecasts"
    return "the planner here sees the real coming load and PV, where the live system sees forecasts"


def render_html(result: BacktestResult, week: date | None = None) -> str:
    week = week or default_week(result)
    figures = [monthly_chart(result), typical_day_chart(result), week_chart(result, week)]
    divs = [
        pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), div_id=f"chart-{i}", default_height=480)
        for i, fig in enumerate(figures)
    ]
    local = result.local
    period = f"{local[0]:%d %b %Y} – {(local[-1] + timedelta(minutes=30)):%d %b %Y %H:%M}"
    settings = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in result.settings.items()
    )
    sources = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in result.sources.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>batsched backtest: {html.escape(period)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} td, th {{ padding: .3rem .8rem; border-bottom: 1px solid #ddd; }}
th {{ text-align: left; }} td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
.note {{ color: #555; font-size: .9rem; max-width: 60rem; }}
</style></head><body>
<h1>What would batsched have saved?</h1>
<p>{html.escape(period)} ({len(result.slots):,} half-hours, local time Europe/London)</p>
{_table(result)}
<p class="note"><sup>*</sup> The perfect-foresight bound is a linear programme that knows every price, load and PV
figure in advance and may split a half-hour between charging and discharging, which no real battery mode does: it
is slightly optimistic, a ceiling rather than a target. The other strategies are replayed through the planner's
own battery model and rules with the same inputs. These figures are <strong>estimates, not a bill</strong>: standing
charges are left out, the battery model is simplified, and {html.escape(_forecast_note(result))}.</p>
{"".join(f'<section class="chart">{d}</section>' for d in divs)}
<h2>Inputs</h2><table>{sources}</table>
<h2>Settings</h2><table>{settings}</table>
</body></html>
"""


def write_outputs(result: BacktestResult, out_dir: Path, week: date | None = None) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / "backtest.html"
    csv_path = out_dir / "backtest_slots.csv"
    html_path.write_text(render_html(result, week), encoding="utf-8")
    result.per_slot().to_csv(csv_path, index=False)
    return html_path, csv_path
