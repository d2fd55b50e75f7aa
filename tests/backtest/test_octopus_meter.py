"""Consumption from the Octopus consumption API (a local fake meter, never the real API), with the customer's key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.octopus_meter import API_KEY, MPAN, SERIAL, FakeMeter
from tools.cli import main

PERIOD = ["--from", "2022-01-10", "--to", "2022-01-12", "--strategies", "no_battery,self_use,seed_rule", "--json"]


@pytest.fixture
def meter():
    m = FakeMeter().start()
    yield m
    m.stop()


def test_consumption_from_the_api_equals_the_bundled_household(meter, tmp_path: Path, capsys) -> None:
    api = ["--octopus-api-key", API_KEY, "--mpan", MPAN, "--serial", SERIAL, "--octopus-url", meter.url]
    assert main(["backtest", *PERIOD, *api, "--out", str(tmp_path / "a")]) == 0
    from_api = json.loads(capsys.readouterr().out)
    assert main(["backtest", *PERIOD, "--out", str(tmp_path / "b")]) == 0
    bundled = json.loads(capsys.readouterr().out)
    assert from_api["inputs"]["consumption"] == f"Octopus API meter {MPAN}/{SERIAL}"
    # The API rounds readings to the watt-hour, as the real one does.
    for name, fig in bundled["strategies"].items():
        assert from_api["strategies"][name]["cost_gbp"] == pytest.approx(fig["cost_gbp"], abs=0.02)
    assert from_api["period"]["slots"] == bundled["period"]["slots"] == 3 * 48


def test_a_wrong_key_says_what_to_check(meter, tmp_path: Path, capsys) -> None:
    args = ["--octopus-api-key", "sk_wrong", "--mpan", MPAN, "--serial", SERIAL, "--octopus-url", meter.url]
    assert main(["backtest", *PERIOD, *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "check the API key, MPAN and serial" in err
