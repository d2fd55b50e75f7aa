"""The bundled real year (slow: ``make soak``): the annual figures are the planner benchmark's, and the real
report renders in headless Chromium."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.backtest.test_cli import BENCH_FLAGS, bench_figures
from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS
from tools.cli import main

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
def test_the_bundled_year_prints_the_benchmarks_annual_figures(tmp_path: Path, artifacts: Path, capsys) -> None:
    # The bundled consumption starts half an hour after local midnight; the benchmark fills that slot with the
    # mean load, the backtest does so only when asked (--fill-gaps) and says so.
    period = ["--from", "2021-10-01", "--to", "2022-09-19", "--fill-gaps", "1"]
    assert main(["backtest", *period, *BENCH_FLAGS, "--forecasts", "perfect", "--out", str(tmp_path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    print(f"year backtest took {doc['seconds']} s")
    expected = bench_figures("2021-10-01", "2022-09-20", 4.0)  # the benchmark's J-2021/22-4kWp scenario
    got = {name: fig["cost_gbp"] for name, fig in doc["strategies"].items()}
    assert doc["period"]["slots"] == 354 * 48 and "filled consumption" in doc["inputs"]
    assert got == pytest.approx({k: round(v, 2) for k, v in expected.items()}, abs=0.006)
    if CHROMIUM:
        shot = artifacts / "backtest_year.png"
        url = Path(doc["files"]["html"]).resolve().as_uri()
        subprocess.run(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={tmp_path / 'p'}",
                f"--screenshot={shot}",
                "--window-size=1400,2000",
                url,
            ],
            capture_output=True,
            timeout=120,
            check=True,
        )
        assert shot.stat().st_size > 20_000
