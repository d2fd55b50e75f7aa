"""``batsched backtest`` end to end: agreement with the planner benchmark, outputs, and bad input on the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tools.cli import main

bench = pytest.importorskip("tools.bench_planner", reason="needs the planner's replay and benchmark (branch planner)")
from services.planner.battery import limits_for  # noqa: E402
from services.planner.replay import Batsched, SeedRule, replay, self_use_policy  # noqa: E402

MONTH = ("2022-01-01", "2022-02-01")  # local days, end exclusive, inside the bundled gross-load year
BENCH_FLAGS = ["--min-soc", "0", "--max-charge-price", "2", "--target-soc-cap", "100", "--pv-kwp", "4"]


def bench_figures(first: str, end: str, kwp: float) -> dict[str, float]:
    """The planner benchmark's own figures for a period, computed by its own functions."""
    w = bench.build_world(bench.Scenario("month", first, end, kwp, False))
    lim = limits_for(bench.MODEL, bench.SETTINGS)
    sl = slice(w.start, w.stop)
    return {
        "no_battery": bench.no_battery_cost(np.nan_to_num(w.price[sl]), w.export_price[sl], w.load[sl], w.pv[sl]),
        "self_use": replay(w, self_use_policy, bench.MODEL, lim, lim.min_kwh).cost_gbp,
        "seed_rule": replay(w, SeedRule(w, bench.MODEL, bench.SETTINGS), bench.MODEL, lim, lim.min_kwh).cost_gbp,
        # as bench_planner.run: perfect load/PV forecasts, the planner's default end value
        "batsched": replay(
            w, Batsched(w, bench.MODEL, bench.SETTINGS, "perfect"), bench.MODEL, lim, lim.min_kwh
        ).cost_gbp,
        "bound": bench.lp_bound(w)[0],
    }


def test_a_month_agrees_with_the_planner_benchmark_and_writes_html_and_csv(tmp_path: Path, capsys) -> None:
    last = (pd.Timestamp(MONTH[1]) - pd.Timedelta(days=1)).date().isoformat()
    code = main(
        [
            "backtest",
            "--from",
            MONTH[0],
            "--to",
            last,
            *BENCH_FLAGS,
            "--forecasts",
            "perfect",
            "--out",
            str(tmp_path),
            "--json",
        ]
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    expected = bench_figures(*MONTH, 4.0)
    got = {name: fig["cost_gbp"] for name, fig in doc["strategies"].items()}
    assert got == pytest.approx({k: round(v, 2) for k, v in expected.items()}, abs=0.006)
    assert got["bound"] <= got["batsched"] < got["no_battery"]
    assert doc["period"]["slots"] == 31 * 48
    assert doc["settings"]["executor_rules_blocked_slots"] == {}  # the planner already kept the executor's rules
    csv = pd.read_csv(doc["files"]["csv"])
    assert len(csv) == 31 * 48
    assert csv["batsched_cost_gbp"].sum() == pytest.approx(expected["batsched"], abs=0.01)
    assert set(csv["batsched_action"]) <= {"self_use", "hold", "charge"} and "charge" in set(csv["batsched_action"])
    html = Path(doc["files"]["html"]).read_text()
    assert "Monthly cost per strategy" in html and "2022-01" in html


def test_a_bad_consumption_file_stops_with_the_line_and_no_report(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "consumption.csv"
    bad.write_text(
        "Consumption (kWh), Start, End\n"
        "0.2, 2022-01-10T00:00:00+00:00, 2022-01-10T00:30:00+00:00\n"
        "0.2, 2022-01-10T01:00:00+00:00, 2022-01-10T01:30:00+00:00\n"
    )
    code = main(["backtest", "--consumption", str(bad), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert "consumption.csv, line 3: gap" in err and "2022-01-10T00:30Z" in err
    assert not (tmp_path / "out").exists()
