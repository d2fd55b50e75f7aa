"""The comparison's HTML report (a table and a chart) and CSV."""

from __future__ import annotations

import csv
import html
from datetime import datetime, timedelta
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

from shared.slots import LONDON
from tools.tariffs.compare import TariffResult

HTML_NAME, CSV_NAME = "compare-tariffs.html", "compare-tariffs.csv"


def gbp(x: float) -> str:
    """£1,234.56, and −£12.34 for money earned (more export earnings than import costs)."""
    return f"−£{-x:,.2f}" if x < 0 else f"£{x:,.2f}"


def chart(results: list[TariffResult]) -> go.Figure:
    names = [r.name for r in results]
    fig = go.Figure(
        [
            go.Bar(name="without the battery", x=names, y=[r.annual_no_battery_gbp for r in results]),
            go.Bar(name="with the battery (batsched)", x=names, y=[r.annual_battery_gbp for r in results]),
        ]
    )
    fig.update_layout(
        barmode="group",
        title="Annual electricity cost by tariff (unit rates, export netted; standing charges not included)",
        yaxis_title="GBP/year",
    )
    return fig


def _table(results: list[TariffResult]) -> str:
    best = min(results, key=lambda r: r.annual_total_battery_gbp).name if results else ""
    rows = []
    for r in sorted(results, key=lambda r: r.annual_total_battery_gbp):
        mark = ' class="best"' if r.name == best else ""
        rows.append(
            f"<tr{mark}><td>{html.escape(r.name)}</td><td>{html.escape(r.import_code)}<br>"
            f"<small>{html.escape(r.export_code)}</small></td>"
            f'<td class="n">{gbp(r.annual_no_battery_gbp)}</td><td class="n">{gbp(r.annual_battery_gbp)}</td>'
            f'<td class="n">{gbp(r.annual_saving_gbp)}</td><td class="n">{r.effective_p_per_kwh:.2f}p</td>'
            f'<td class="n">{gbp(r.annual_standing_gbp)}</td>'
            f'<td class="n">{gbp(r.annual_total_battery_gbp)}</td></tr>'
        )
    return (
        "<table><tr><th>Tariff</th><th>Import / export</th><th>Annual cost without battery</th>"
        "<th>Annual cost with battery</th><th>Saving</th><th>Effective p/kWh (with battery)</th>"
        "<th>Standing charges</th><th>Total with battery, standing charges included</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def render_html(results: list[TariffResult], start: datetime, end: datetime, inputs: dict[str, str]) -> str:
    first, last = (t.astimezone(LONDON) for t in (start, end - timedelta(minutes=1)))
    period = f"{first:%d %b %Y} – {last:%d %b %Y}"
    div = pio.to_html(chart(results), full_html=False, include_plotlyjs=True, div_id="chart-0", default_height=480)
    facts = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in inputs.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>batsched: which tariff suits this house? {period}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} td, th {{ padding: .3rem .8rem; border-bottom: 1px solid #ddd; }}
th {{ text-align: left; }} td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.best {{ background: #eef8ee; }} .note {{ color: #555; font-size: .9rem; max-width: 60rem; }}
</style></head><body>
<h1>Which tariff suits this house?</h1>
<p>{html.escape(period)}: the same consumption, battery and planner on each tariff's own historical rates. Annual
figures scale the period to 365 days. Cheapest first (with the battery, standing charges included).</p>
{_table(results)}
<p class="note">Effective p/kWh: the cost with the battery (imports less export earnings) per kWh the house used.
The costs are unit rates (imports less export earnings); standing charges, the same with or without the battery,
are in their own column and in the total. These figures are <strong>estimates, not a bill</strong>: Intelligent
Octopus Go is counted without smart-charge dispatches (they depend on a car), and the
battery model is simplified.</p>
<section class="chart">{div}</section>
<h2>Inputs</h2><table>{facts}</table>
</body></html>
"""


def write_outputs(
    results: list[TariffResult], out_dir: Path, start: datetime, end: datetime, inputs: dict[str, str]
) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, csv_path = out_dir / HTML_NAME, out_dir / CSV_NAME
    html_path.write_text(render_html(results, start, end, inputs), encoding="utf-8")
    with csv_path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(results[0].row()))
        writer.writeheader()
        writer.writerows(r.row() for r in results)
    return html_path, csv_path
