"""The HTML report is self-contained and its charts render in headless Chromium; the CSV has every slot."""

from __future__ import annotations

import re
import subprocess
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sim.datasets import agile_prices, gross_load_year
from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.support.prereqs import needs
from tools.backtest.report import write_outputs
from tools.backtest.result import BacktestResult, StrategyRun


def synthetic_result() -> BacktestResult:
    """Six weeks of real prices and load with made-up strategy outcomes: the report is what is under test here."""
    slots = pd.date_range("2022-01-03", "2022-02-14", freq="30min", inclusive="left", tz="Europe/London").tz_convert(
        "UTC"
    )
    price = agile_prices().reindex(slots).to_numpy()
    load = gross_load_year().reindex(slots).to_numpy()
    runs = {}
    for k, name in enumerate(("no_battery", "self_use", "seed_rule", "batsched", "bound")):
        imp = load * (1 - 0.1 * k)
        soc = None if name == "no_battery" else 50 + 40 * np.sin(np.arange(len(slots)) / 48 * 2 * np.pi + k)
        runs[name] = StrategyRun(name, imp, np.zeros(len(slots)), imp * price, soc)
    return BacktestResult(slots, price, load, np.zeros(len(slots)), runs, {"capacity_kwh": 13.5}, {"prices": "test"})


def test_csv_has_a_row_per_slot_and_the_strategies_columns(tmp_path: Path) -> None:
    result = synthetic_result()
    html_path, csv_path = write_outputs(result, tmp_path)
    df = pd.read_csv(csv_path)
    assert len(df) == len(result.slots) == 6 * 7 * 48
    assert {"slot_start_utc", "price_gbp_kwh", "batsched_soc_pct", "bound_cost_gbp", "no_battery_import_kwh"} <= set(df)
    assert df["batsched_cost_gbp"].sum() == pytest.approx(result.runs["batsched"].total, abs=0.01)
    text = html_path.read_text()
    assert not re.search(r"<script[^>]+src=", text)  # plotly.js is inlined: nothing loaded from elsewhere
    assert "slightly optimistic" in text and "estimates, not a bill" in text


@needs("chromium")
def test_report_charts_render_in_headless_chromium(tmp_path: Path, artifacts: Path) -> None:
    html_path, _ = write_outputs(synthetic_result(), tmp_path, week=date(2022, 1, 17))
    url = html_path.resolve().as_uri()
    dom = subprocess.run(
        [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    # Plotly draws each chart as <svg class="main-svg">: three charts, each with its drawn traces.
    charts = re.findall(r'<div id="chart-\d"', dom)
    assert len(charts) == 3
    assert dom.count('class="main-svg"') >= 3
    assert dom.count('class="trace bars"') >= 5  # the monthly bars, one trace per strategy
    assert dom.count('class="scatterlayer') >= 2  # the typical-day and week lines
    assert "SOC and price, week of 17 Jan 2022" in dom
    shot = artifacts / "backtest_report.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [
            CHROMIUM,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile2'}",
            f"--screenshot={shot}",
            "--window-size=1400,2000",
            url,
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert shot.exists() and shot.stat().st_size > 20_000
