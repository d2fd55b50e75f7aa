"""``batsched compare-tariffs`` against the fake Octopus (real HTTP): the report, the CSV, the progress bar, the
cache, and what a household would notice (a battery earns on Go's cheap night, a fixed price gives it nothing to
shift)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.clock import FixedClock
from sim.octopus import FakeOctopus
from tools.cli import main


@pytest.fixture
def octopus() -> Iterator[FakeOctopus]:
    api = FakeOctopus(FixedClock(datetime(2024, 5, 20, tzinfo=UTC))).start()  # every bundled Agile day published
    yield api
    api.stop()


def run(octopus: FakeOctopus, tmp_path: Path, *extra: str) -> int:
    return main(
        ["compare-tariffs", "--octopus-url", octopus.url, "--cache", str(tmp_path / "cache"), "--out",
         str(tmp_path / "report"), "--from", "2022-02-07", "--to", "2022-02-10", "--tariffs", "Agile,Go,12M Fixed",
         "--min-soc", "0", *extra]
    )  # fmt: skip


def test_report_csv_progress_and_cache(octopus: FakeOctopus, tmp_path: Path, capsys) -> None:
    assert run(octopus, tmp_path, "--progress") == 0
    out, err = capsys.readouterr()
    assert "tariffs: 100%" in err  # the progress bar, on stderr
    assert "Go" in out and "report:" in out
    rows = list(csv.DictReader((tmp_path / "report" / "compare-tariffs.csv").open()))
    by = {r["tariff"]: r for r in rows}
    assert set(by) == {"Agile", "Go", "12M Fixed"}
    assert by["Go"]["import_tariff"] == "E-1R-GO-VAR-22-10-14-J"
    assert float(by["Go"]["days"]) == 4.0
    for r in rows:
        saving = float(r["annual_cost_no_battery_gbp"]) - float(r["annual_cost_with_battery_gbp"])
        assert abs(saving - float(r["annual_saving_gbp"])) < 0.02
        assert abs(float(r["cost_with_battery_gbp"]) / float(r["consumption_kwh"]) * 100
                   - float(r["effective_p_per_kwh_with_battery"])) < 0.02  # fmt: skip
    # No PV: on Go the battery fills at 8.5p and saves against 27p; on a fixed price there is nothing to shift.
    assert float(by["Go"]["annual_saving_gbp"]) > 100
    assert float(by["Go"]["effective_p_per_kwh_with_battery"]) < float(by["Go"]["effective_p_per_kwh_no_battery"])
    assert abs(float(by["12M Fixed"]["cost_with_battery_gbp"]) - float(by["12M Fixed"]["cost_no_battery_gbp"])) < 0.5
    # Standing charges: per local day from the tariff's standing-charges rows (Go 47.9p/day; export none).
    assert float(by["Go"]["annual_standing_charge_gbp"]) == pytest.approx(47.9 * 365 / 100, abs=0.01)
    assert float(by["Go"]["annual_total_with_battery_gbp"]) == pytest.approx(
        float(by["Go"]["annual_cost_with_battery_gbp"]) + float(by["Go"]["annual_standing_charge_gbp"]), abs=0.02
    )
    page = (tmp_path / "report" / "compare-tariffs.html").read_text()
    assert page.count('<tr class="best">') == 1 and "Effective p/kWh" in page and 'id="chart-0"' in page

    asked = octopus.rate_requests()
    assert run(octopus, tmp_path, "--no-progress") == 0
    assert octopus.rate_requests() == asked  # every rate from the cache the second time
    assert capsys.readouterr().err == ""


def test_an_unknown_tariff_or_an_octopus_failure_is_one_clear_line(octopus: FakeOctopus, tmp_path: Path, capsys):
    assert main(["compare-tariffs", "--octopus-url", octopus.url, "--tariffs", "Economy 9"]) == 2
    assert "unknown tariff 'Economy 9'" in capsys.readouterr().err
    octopus.set_faults(down=-1)
    assert run(octopus, tmp_path, "--no-progress") == 2
    err = capsys.readouterr().err
    assert err.startswith("batsched compare-tariffs: ") and "503" in err and err.count("\n") == 1
    assert not (tmp_path / "report").exists()
