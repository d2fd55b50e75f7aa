"""The fake Octopus answers like the real API (paths, shape, order, paging, timetable) and its switches work."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from shared.clock import FixedClock
from sim.octopus import FakeOctopus
from tests.support.broker import free_port, wait_port
from tests.support.probe import Probe

RATES_PATH = "/v1/products/AGILE-24-10-01/electricity-tariffs/E-1R-AGILE-24-10-01-J/standard-unit-rates/"


def get(api: FakeOctopus, path: str, **params) -> requests.Response:
    return requests.get(api.url + path, params=params, timeout=5)


def test_unit_rates_have_the_real_shape_newest_first_in_pence(fake: FakeOctopus, clock: FixedClock) -> None:
    clock.set(datetime(2023, 7, 1, 17, tzinfo=UTC))  # 18:00 BST: tomorrow (Sunday 2 July) is out
    body = get(fake, RATES_PATH, period_from="2023-07-01T23:00:00Z", page_size=1500).json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 46 and body["next"] is None and body["previous"] is None
    first, last = body["results"][0], body["results"][-1]
    assert first["valid_from"] == "2023-07-02T21:30:00Z" and first["valid_to"] == "2023-07-02T22:00:00Z"
    assert last["valid_from"] == "2023-07-01T23:00:00Z"
    assert set(first) == {"value_exc_vat", "value_inc_vat", "valid_from", "valid_to", "payment_method"}
    assert first["payment_method"] is None
    lowest = min(r["value_inc_vat"] for r in body["results"])
    assert lowest == min(r["value_inc_vat"] for r in body["results"]) and round(lowest, 2) == -19.94  # pence
    assert abs(first["value_inc_vat"] - first["value_exc_vat"] * 1.05) < 1e-4


def test_next_day_appears_at_16_local(fake: FakeOctopus, clock: FixedClock) -> None:
    clock.set(datetime(2023, 6, 12, 14, 59, tzinfo=UTC))  # 15:59 BST
    before = get(fake, RATES_PATH, period_from="2023-06-11T23:00:00Z").json()
    assert before["count"] == 46 and before["results"][0]["valid_to"] == "2023-06-12T22:00:00Z"
    clock.set(datetime(2023, 6, 12, 15, 0, tzinfo=UTC))  # 16:00 BST
    after = get(fake, RATES_PATH, period_from="2023-06-11T23:00:00Z", page_size=1500).json()
    assert after["count"] == 94 and after["results"][0]["valid_to"] == "2023-06-13T22:00:00Z"


def test_paging_follows_next_with_at_most_1500_a_page(fake: FakeOctopus) -> None:
    body = get(fake, RATES_PATH, period_from="2023-04-01T00:00:00Z", page_size=5000).json()
    assert body["count"] > 3000 and len(body["results"]) == 1500
    seen = list(body["results"])
    while body["next"]:
        body = requests.get(body["next"], timeout=5).json()
        seen.extend(body["results"])
    assert len(seen) == len({r["valid_from"] for r in seen}) == body["count"]
    assert get(fake, RATES_PATH, page=9999).status_code == 404


def test_products_list_detail_and_unknown_tariff(fake: FakeOctopus) -> None:
    products = get(fake, "/v1/products/", is_variable="true", brand="OCTOPUS_ENERGY").json()["results"]
    agile = [p for p in products if p["display_name"] == "Agile Octopus" and p["available_to"] is None]
    assert [p["code"] for p in agile] == ["AGILE-24-10-01"]
    detail = get(fake, "/v1/products/AGILE-24-10-01/").json()
    assert detail["single_register_electricity_tariffs"]["_C"]["direct_debit_monthly"]["code"] == (
        "E-1R-AGILE-24-10-01-C"
    )
    assert get(fake, RATES_PATH.replace("-J/", "-I/")).status_code == 404  # there is no region I


def test_control_endpoint_switches_failures(fake: FakeOctopus) -> None:
    ok = requests.post(fake.url + "/_control", json={"fail_500": 1, "forbidden_html": 1}, timeout=5)
    assert ok.status_code == 200
    assert get(fake, RATES_PATH).status_code == 500
    blocked = get(fake, RATES_PATH)
    assert blocked.status_code == 403 and blocked.text.startswith("<!DOCTYPE html>")
    assert get(fake, RATES_PATH).status_code == 200
    assert requests.post(fake.url + "/_control", json={"nonsense": 1}, timeout=5).status_code == 400
    state = requests.get(fake.url + "/_control", timeout=5).json()
    assert state["faults"]["fail_500"] == 0 and fake.rate_requests() == 3


def test_export_prices_are_synthetic_outgoing_never_negative(fake: FakeOctopus, clock: FixedClock) -> None:
    clock.set(datetime(2023, 7, 2, 12, tzinfo=UTC))  # a day with negative import prices
    path = (
        "/v1/products/AGILE-OUTGOING-19-05-13/electricity-tariffs/E-1R-AGILE-OUTGOING-19-05-13-J/standard-unit-rates/"
    )
    rows = get(fake, path, period_from="2023-07-01T23:00:00Z").json()["results"]
    assert len(rows) == 46
    assert all(r["value_inc_vat"] >= 0 and r["value_inc_vat"] == r["value_exc_vat"] for r in rows)


def test_make_run_style_processes_show_real_prices_within_5_s(spawn, probe: Probe, tmp_path: Path) -> None:
    """The two real processes, wired as the launcher wires them (shared simulated clock, HTTP between them)."""
    port = free_port()
    common = {
        "BATSCHED_CLOCK": "sim",
        "BATSCHED_SIM_START": "2023-06-12T05:00:00Z",
        "BATSCHED_SIM_SPEED": "60",
        "BATSCHED_SIM_ORIGIN": repr(time.time()),
        "BATSCHED_OCTOPUS_BASE_URL": f"http://127.0.0.1:{port}",
    }
    spawn("sim.octopus", env=common, args=["--port", str(port)], name="fake-octopus")
    started = time.monotonic()
    spawn("services.pricing", env=common, name="pricing")
    series = probe.wait_json("batsched/pricing/import/rates", timeout=10)
    elapsed = time.monotonic() - started
    print(f"rates on the bus {elapsed:.2f}s after the pricing process started")
    assert elapsed < 5.0
    assert series["tariff_code"].startswith("E-1R-AGILE-24-10-01-") and len(series["rates"]) == 46
    assert series["rates"][0]["start"] == "2023-06-11T23:00:00Z"  # local midnight, BST
    wait_port(port, 5)
    assert json.loads(requests.get(f"http://127.0.0.1:{port}/_control", timeout=5).text)["requests"]
    assert os.path.exists(tmp_path / "data" / "pricing.db")


def test_partial_day_late_publication_and_outage_switches(fake: FakeOctopus, clock: FixedClock) -> None:
    clock.set(datetime(2023, 6, 12, 16, tzinfo=UTC))  # 17:00 BST
    fake.set_faults(partial_tomorrow=10)
    assert get(fake, RATES_PATH, period_from="2023-06-11T23:00:00Z").json()["count"] == 46 + 10
    fake.set_faults(partial_tomorrow=None, publish_at="18:40")
    assert get(fake, RATES_PATH, period_from="2023-06-11T23:00:00Z").json()["count"] == 46
    clock.set(datetime(2023, 6, 12, 17, 40, tzinfo=UTC))  # 18:40 BST
    assert get(fake, RATES_PATH, period_from="2023-06-11T23:00:00Z", page_size=1500).json()["count"] == 46 + 48
    fake.set_faults(down=1)
    assert get(fake, RATES_PATH).status_code == 503
    assert get(fake, RATES_PATH).status_code == 200
