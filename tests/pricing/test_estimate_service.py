"""The price estimate on the bus: the pricing service (in-process, fake Octopus, real Mosquitto, real store) publishes
it, retained, after each publication of the prices, learned from its own store or the bundled history at first, and
re-centred on a (fake) AgilePredict forecast only when that forecast is usable."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from services.pricing.store import RateStore
from shared.clock import FixedClock
from shared.models import Rate
from shared.slots import SLOT
from sim.agilepredict import FakeAgilePredict
from sim.datasets import agile_prices
from tests.support.probe import Probe

P = "batsched/pricing"
RATES, ESTIMATE = f"{P}/import/rates", f"{P}/import/estimate"
TARIFF = "E-1R-AGILE-24-10-01-J"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def agilepredict(clock: FixedClock) -> Iterator[FakeAgilePredict]:
    api = FakeAgilePredict(clock).start()
    yield api
    api.stop()


def wait_logged(svc, event: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = svc.logged(event)
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError(f"no log line {event!r} within {timeout} s")


def test_after_each_publication_an_estimate_follows_from_the_end_of_the_prices(
    pricing, probe: Probe, clock: FixedClock
) -> None:
    clock.set(utc("2023-06-12T16:00:00Z"))  # 17:00 BST: tomorrow is published
    svc = pricing()
    rates = probe.wait_json(RATES, lambda d: d["valid_until"] == "2023-06-13T22:00:00Z", timeout=10)
    est = probe.wait_json(ESTIMATE, lambda d: d["published_until"] == rates["valid_until"], timeout=15)
    assert est["is_estimate"] is True and est["method"] == "analog-v1" and est["source"] == "learned"
    assert est["tariff_code"] == rates["tariff_code"]
    assert est["slots"][0]["start"] == rates["valid_until"] and len(est["slots"]) == 96  # 48 h
    # 14 analogs, and the last days of its own: the two it has (today's and tomorrow's prices)
    assert len(est["scenarios_gbp"]) == 14 + 2 and all(len(p) == 96 for p in est["scenarios_gbp"])
    assert all(s["low_gbp"] <= s["median_gbp"] <= s["high_gbp"] for s in est["slots"])
    # A fresh store: the bundled history helps out, and the message says so.
    assert "cold start" in est["learned_from"]
    # The next day's publication gives the next estimate, from the new end of the prices.
    clock.set(utc("2023-06-13T16:05:00Z"))
    nxt = probe.wait_json(ESTIMATE, lambda d: d["published_until"] == "2023-06-14T22:00:00Z", timeout=15)
    assert nxt["slots"][0]["start"] == "2023-06-14T22:00:00Z"
    assert svc.logged("price estimate published")


def test_with_weeks_of_its_own_history_it_learns_from_the_store_alone(
    pricing, probe: Probe, clock: FixedClock, tmp_path: Path
) -> None:
    clock.set(utc("2023-06-12T16:00:00Z"))
    real = agile_prices()["2023-04-01":"2023-06-11"]
    store = RateStore(tmp_path / "data" / "pricing.db")
    rates = [Rate(start=t, end=t + SLOT, value_inc_vat=float(v)) for t, v in real.items()]
    store.save("import", TARIFF, utc("2023-06-11T16:00:00Z"), rates)
    store.save("import", "E-1R-SOME-OTHER-TARIFF-J", utc("2023-06-11T16:00:00Z"), [])  # not its history
    store.close()
    pricing()
    est = probe.wait_json(ESTIMATE, lambda d: d["published_until"] == "2023-06-13T22:00:00Z", timeout=15)
    assert "cold start" not in est["learned_from"]
    assert "complete days of this tariff's history" in est["learned_from"]


def test_a_usable_agilepredict_forecast_recentres_the_estimate(
    pricing, probe: Probe, clock: FixedClock, agilepredict: FakeAgilePredict
) -> None:
    clock.set(utc("2023-06-12T16:00:00Z"))
    pricing(agilepredict_url=agilepredict.url)
    est = probe.wait_json(ESTIMATE, lambda d: d["source"] == "agilepredict", timeout=15)
    assert est["method"] == "agilepredict+analog-v1" and "agilepredict" in est["learned_from"]
    first = est["slots"][0]
    real = float(agile_prices()[pd.Timestamp(first["start"])])
    assert first["median_gbp"] == pytest.approx(real, abs=1e-4)  # the fake forecasts the real price
    assert first["high_gbp"] - first["low_gbp"] == pytest.approx(0.06, abs=1e-4)
    assert agilepredict.requests == ["/api/J/"]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"status": 500}, "missing: HTTP 500"),
        ({"body": "<html>maintenance</html>"}, "missing: the answer is not JSON"),
        ({"hang_s": 3.0}, "missing: timed out"),
        ({"age_h": 30.0}, "late: made at"),
        ({"offset_p": 25.0}, "implausible: "),
        ({"swap_band": True}, "agile_low <= agile_pred <= agile_high"),
    ],
)
def test_a_missing_late_or_implausible_agilepredict_leaves_the_learned_estimate(
    pricing, probe: Probe, clock: FixedClock, agilepredict: FakeAgilePredict, fault: dict, reason: str
) -> None:
    for k, v in fault.items():
        setattr(agilepredict, k, v)
    clock.set(utc("2023-06-12T16:00:00Z"))
    svc = pricing(agilepredict_url=agilepredict.url, http_timeout_s=1.0)
    line = wait_logged(svc, "AgilePredict forecast not used; the learned estimate stands")
    assert reason in line["reason"]
    est = probe.wait_json(ESTIMATE, lambda d: d["published_until"] == "2023-06-13T22:00:00Z", timeout=15)
    assert est["source"] == "learned" and est["method"] == "analog-v1"
    assert svc.service.estimate.last is not None and svc.service.estimate.last.source == "learned"


def test_home_assistant_shows_it_as_an_estimate(pricing, probe: Probe, clock: FixedClock) -> None:
    clock.set(utc("2023-06-12T16:00:00Z"))
    pricing()
    topic = "homeassistant/sensor/batsched_pricing/agile_price_estimate/config"
    config = probe.wait_json(topic, timeout=10)
    assert config["state_topic"] == ESTIMATE
    assert "estimate" in config["name"].lower() and "not a published price" in config["name"]
    assert '"estimate": true' in config["json_attributes_template"]
    assert "state_class" not in config  # not a measurement: kept out of HA's long-term statistics


def test_no_estimate_when_switched_off(pricing, probe: Probe, clock: FixedClock) -> None:
    clock.set(utc("2023-06-12T16:00:00Z"))
    svc = pricing(price_estimate_hours=0)
    probe.wait_json(RATES, timeout=10)
    # The alert follows the fetch's publications from the same connection: an estimate would be here by now.
    probe.wait_json(f"{P}/alert", timeout=10)
    assert svc.service.estimate.last is None and probe.on(ESTIMATE) == []
    assert svc.service.estimate.discovery() == []


def test_a_failing_estimate_leaves_the_prices_and_the_last_estimate(
    pricing, probe: Probe, clock: FixedClock, monkeypatch
) -> None:
    clock.set(utc("2023-06-12T16:00:00Z"))
    svc = pricing()
    good = probe.wait_json(ESTIMATE, timeout=15)

    def broken(*_a, **_k):
        raise RuntimeError("estimator bug")

    monkeypatch.setattr(svc.service.estimate, "build", broken)
    clock.set(utc("2023-06-13T16:05:00Z"))
    probe.wait_json(RATES, lambda d: d["valid_until"] == "2023-06-14T22:00:00Z", timeout=15)
    wait_logged(svc, "price estimate failed; the last one stays")
    assert probe.latest(ESTIMATE).json() == good
