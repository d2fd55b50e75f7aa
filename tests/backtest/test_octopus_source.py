"""Prices from the Octopus API (the fake Octopus in ``sim/octopus.py``, never the real one) and consumption from
the CSV Octopus lets customers download: the same figures as from the bundled files; API failures are clear."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from shared.clock import FixedClock
from sim.datasets import gross_load_year
from sim.octopus import FakeOctopus
from tools.cli import main

WEEK = ("2022-01-10", "2022-01-16")
FAST = ["--strategies", "no_battery,self_use,seed_rule,batsched", "--forecasts", "perfect", "--json"]


def octopus_download(path: Path) -> Path:
    """The household's data for January 2022 in the layout of Octopus's consumption download."""
    s = gross_load_year()
    s = s[(s.index >= "2021-12-20") & (s.index < "2022-02-01")]
    lines = ["Consumption (kWh), Start, End"]
    for t, v in s.items():
        local = t.tz_convert("Europe/London")
        lines.append(f"{v:.3f}, {local.isoformat()}, {(local + pd.Timedelta(minutes=30)).isoformat()}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def octopus():
    api = FakeOctopus(FixedClock(datetime(2022, 3, 1, tzinfo=UTC))).start()
    yield api
    api.stop()


def run_json(args: list[str], capsys) -> dict:
    assert main(["backtest", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_api_prices_give_the_same_figures_as_the_bundled_prices(octopus, tmp_path: Path, capsys) -> None:
    csv = octopus_download(tmp_path / "consumption.csv")
    period = ["--from", WEEK[0], "--to", WEEK[1], "--consumption", str(csv)]
    api = run_json(
        [
            *period,
            *("--octopus-product", "AGILE-24-10-01", "--octopus-region", "j", "--octopus-url", octopus.url),
            *("--out", str(tmp_path / "api"), *FAST),
        ],
        capsys,
    )
    bundled = run_json([*period, "--out", str(tmp_path / "bundled"), *FAST], capsys)
    assert octopus.rate_requests() >= 1
    assert api["inputs"]["prices"] == "Octopus API AGILE-24-10-01 region J"
    assert api["strategies"] == bundled["strategies"]
    assert api["period"]["slots"] == 7 * 48
    assert api["strategies"]["batsched"]["cost_gbp"] <= api["strategies"]["no_battery"]["cost_gbp"]


def test_an_api_answering_html_stops_with_a_clear_message(octopus, tmp_path: Path, capsys) -> None:
    octopus.set_faults(forbidden_html=-1)
    code = main(
        [
            *("backtest", "--from", WEEK[0], "--to", WEEK[1], "--octopus-product", "AGILE-24-10-01"),
            *("--octopus-region", "J", "--octopus-url", octopus.url, "--out", str(tmp_path), "--json"),
        ]
    )
    assert code == 2
    assert "HTTP 403 Forbidden: an HTML block page" in capsys.readouterr().err
