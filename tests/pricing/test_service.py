"""The pricing service against the fake Octopus (real HTTP) and a real Mosquitto: what appears on the bus.

The service runs in-process on a ``FixedClock`` shared with the fake server, so a test sets the time of day (and
with it what Octopus has published) and moves it forward to trigger the schedule.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from shared.clock import FixedClock
from shared.slots import SLOT, local_day_bounds, local_day_slots, local_midnight
from sim.datasets import agile_prices
from sim.octopus import ACCOUNT_NUMBER, API_KEY, FakeOctopus
from tests.support.fulldisk import fill
from tests.support.probe import Probe

P = "batsched/pricing"
RATES, CURRENT, EXPORT, ALERT, REFRESH = (
    f"{P}/import/rates",
    f"{P}/import/current",
    f"{P}/export/rates",
    f"{P}/alert",
    f"{P}/cmd/refresh",
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def starts(series: dict) -> list[datetime]:
    return [utc(r["start"]) for r in series["rates"]]


def real_price(t: datetime) -> float:
    return float(agile_prices()[pd.Timestamp(t)])


def refresh(probe: Probe, request_id: str) -> dict:
    probe.publish(REFRESH, {"request_id": request_id})
    return probe.wait_json(f"{REFRESH}/result", lambda d: d["request_id"] == request_id, timeout=15)


def rates_after(probe: Probe, mark: float) -> list:
    return [m for m in probe.on(RATES) if m.at >= mark]


# --------------------------------------------------------------------------------------------- whole days


@pytest.mark.parametrize(
    ("day", "n"),
    [
        (date(2023, 6, 12), 48),
        (date(2024, 3, 31), 46),  # spring forward
        (date(2023, 10, 29), 50),  # fall back
        (date(2022, 3, 27), 46),
        (date(2022, 10, 30), 50),
    ],
)
def test_a_local_day_has_all_its_slots_with_the_real_prices(
    pricing, probe: Probe, clock: FixedClock, day: date, n: int
) -> None:
    # 17:00 local: tomorrow is published, so today is complete from local midnight.
    clock.set(local_midnight(day) + timedelta(hours=17 if n != 50 else 18))
    pricing()
    series = probe.wait_json(RATES, timeout=10)
    lo, hi = local_day_bounds(day)
    today = [s for s in starts(series) if lo <= s < hi]
    assert len(today) == n
    assert today == local_day_slots(day)
    assert starts(series)[0] == lo  # from the start of the local day
    assert utc(series["valid_until"]) == starts(series)[-1] + SLOT
    assert utc(series["valid_until"]) == local_midnight(day + timedelta(days=2)) - timedelta(hours=1)  # 23:00 local
    for rate in series["rates"]:
        assert rate["value_inc_vat"] == pytest.approx(real_price(utc(rate["start"])), abs=1e-9)
    assert series["source"] == "octopus" and series["tariff_code"] == "E-1R-AGILE-24-10-01-J"
    assert series["unit"] == "GBP/kWh" and series["direction"] == "import"


def test_a_negative_price_day_is_published_negative(pricing, probe: Probe, clock: FixedClock) -> None:
    clock.set(utc("2023-07-02T12:10:00Z"))
    pricing()
    series = probe.wait_json(RATES, timeout=10)
    negative = [r for r in series["rates"] if r["value_inc_vat"] < 0]
    assert len(negative) >= 10
    assert min(r["value_inc_vat"] for r in series["rates"]) == pytest.approx(-0.199395, abs=1e-6)
    current = probe.wait_json(CURRENT, lambda d: d["known"], timeout=10)
    assert current["slot_start"] == "2023-07-02T12:00:00Z"
    assert current["value_inc_vat"] == pytest.approx(real_price(utc("2023-07-02T12:00:00Z")))
    assert current["value_inc_vat"] < 0


def test_prices_at_the_100p_cap_are_published_as_one_pound(
    pricing, probe: Probe, clock: FixedClock, fake: FakeOctopus
) -> None:
    peak = ["2023-06-12T16:00:00Z", "2023-06-12T16:30:00Z"]
    fake.set_faults(overrides={t: 100.0 for t in peak})
    pricing()
    series = probe.wait_json(RATES, timeout=10)
    by_start = {r["start"]: r["value_inc_vat"] for r in series["rates"]}
    assert [by_start[t] for t in peak] == [1.0, 1.0]


# --------------------------------------------------------------------------------------------- bad data


def test_a_price_beyond_the_cap_rejects_the_batch_and_keeps_the_last_good(
    pricing, probe: Probe, fake: FakeOctopus
) -> None:
    svc = pricing()
    good = probe.wait_json(RATES, timeout=10)
    probe.wait_json(ALERT, lambda d: d["code"] == "ok", timeout=10)
    fake.set_faults(overrides={"2023-06-12T18:00:00Z": 150.0})
    mark = probe.mark()
    result = refresh(probe, "over-cap")
    assert result["status"] == "error" and "plausible range" in result["error"]
    alert = probe.wait_json(ALERT, lambda d: d["code"] == "validation_failed", timeout=10)
    assert "150" in alert["message"]
    assert rates_after(probe, mark) == []  # nothing new published
    assert svc.logged("batch rejected; keeping the last good prices")[0]["reason"].startswith("slot 2023-06-12T18:00Z")
    fresh = Probe(probe.port, subscribe=RATES).start()  # the retained copy is still the good one
    try:
        assert fresh.wait_json(RATES, timeout=5) == good
    finally:
        fresh.stop()


def test_a_duplicated_slot_with_the_same_price_is_published_once(pricing, probe: Probe, fake: FakeOctopus) -> None:
    fake.set_faults(duplicate=["2023-06-12T10:00:00Z"])
    svc = pricing()
    series = probe.wait_json(RATES, timeout=10)
    assert len(series["rates"]) == len(set(starts(series))) == 46  # 00:00–23:00 local, today only (before 16:00)
    assert svc.logged("duplicate slots dropped (same price)")[0]["n"] == 1


def test_a_duplicated_slot_with_two_prices_rejects_the_batch(pricing, probe: Probe, fake: FakeOctopus) -> None:
    pricing()
    good = probe.wait_json(RATES, timeout=10)
    fake.set_faults(conflict=["2023-06-12T10:00:00Z"])
    mark = probe.mark()
    result = refresh(probe, "conflict")
    assert result["status"] == "error" and "appears twice with different prices" in result["error"]
    probe.wait_json(ALERT, lambda d: d["code"] == "validation_failed", timeout=10)
    assert rates_after(probe, mark) == []
    assert probe.latest(RATES).json() == good


def test_a_missing_slot_is_a_gap_and_the_current_price_says_unknown(
    pricing, probe: Probe, clock: FixedClock, fake: FakeOctopus
) -> None:
    hole = utc("2023-06-12T12:00:00Z")
    fake.set_faults(missing=["2023-06-12T12:00:00Z"])
    clock.set(utc("2023-06-12T11:50:00Z"))
    pricing()
    series = probe.wait_json(RATES, timeout=10)
    assert hole not in starts(series)
    assert hole - SLOT in starts(series) and hole + SLOT in starts(series)
    assert len(series["rates"]) == 45
    assert all(r["value_inc_vat"] != 0 for r in series["rates"])
    probe.wait_json(CURRENT, lambda d: d["slot_start"] == "2023-06-12T11:30:00Z" and d["known"], timeout=10)

    clock.set(hole + timedelta(seconds=1))  # past the slot boundary: the current slot has no price
    gap = probe.wait_json(CURRENT, lambda d: d["slot_start"] == "2023-06-12T12:00:00Z", timeout=10)
    assert gap["known"] is False and gap["value_inc_vat"] is None
    assert gap["valid_until"] == "2023-06-12T12:30:00Z"

    clock.set(hole + SLOT + timedelta(seconds=1))
    after = probe.wait_json(CURRENT, lambda d: d["slot_start"] == "2023-06-12T12:30:00Z", timeout=10)
    assert after["known"] is True and after["value_inc_vat"] == pytest.approx(real_price(hole + SLOT))


# --------------------------------------------------------------------------------------------- API failures


@pytest.mark.parametrize(
    ("fault", "expect"), [("forbidden_html", "HTTP 403 Forbidden: an HTML block page"), ("html_200", "HTML body")]
)
def test_an_html_answer_is_an_error_not_data(pricing, probe: Probe, fake: FakeOctopus, fault: str, expect: str) -> None:
    pricing()
    good = probe.wait_json(RATES, timeout=10)
    fake.set_faults(**{fault: -1})
    before = fake.rate_requests()
    mark = probe.mark()
    result = refresh(probe, fault)
    assert result["status"] == "error" and expect in result["error"]
    alert = probe.wait_json(ALERT, lambda d: d["code"] == "fetch_failing", timeout=10)
    assert expect in alert["message"]
    assert fake.rate_requests() == before + 1  # a block page is not hammered
    assert rates_after(probe, mark) == []
    assert probe.latest(RATES).json() == good


def test_500s_then_success_publishes_after_retries(pricing, probe: Probe, fake: FakeOctopus) -> None:
    fake.set_faults(fail_500=2)
    svc = pricing()
    series = probe.wait_json(RATES, timeout=10)
    assert len(series["rates"]) == 46
    assert fake.rate_requests() == 3
    assert [e["error"] for e in svc.logs() if e.get("event") == "fetch failed; keeping the last good prices"] == []
    probe.wait_json(ALERT, lambda d: d["code"] == "ok", timeout=10)


def test_a_hanging_server_times_out_and_the_retry_succeeds(pricing, probe: Probe, fake: FakeOctopus) -> None:
    fake.set_faults(hang=1, hang_s=10)
    pricing(http_timeout_s=1.0)
    series = probe.wait_json(RATES, timeout=10)
    assert len(series["rates"]) == 46
    assert fake.rate_requests() == 2


def test_a_server_that_always_hangs_reports_fetch_failing(pricing, probe: Probe, fake: FakeOctopus) -> None:
    fake.set_faults(hang=-1, hang_s=10)
    pricing(http_timeout_s=0.3, http_attempts=2)
    alert = probe.wait_json(ALERT, lambda d: d["code"] == "fetch_failing", timeout=10)
    assert "timed out after 0.3s" in alert["message"]
    assert probe.on(RATES) == []  # nothing invented


# --------------------------------------------------------------------------------------------- schedule


def test_late_publication_raises_prices_late_after_20_and_clears_when_they_appear(
    pricing, probe: Probe, clock: FixedClock, fake: FakeOctopus
) -> None:
    fake.set_faults(publish_at="21:00")
    clock.set(utc("2023-06-12T18:30:00Z"))  # 19:30 BST
    pricing(poll_interval_s=300)
    first = probe.wait_json(RATES, timeout=10)
    assert first["valid_until"] == "2023-06-12T22:00:00Z"  # tomorrow not out yet
    probe.wait_json(ALERT, lambda d: d["code"] == "ok", timeout=10)

    clock.set(utc("2023-06-12T19:05:00Z"))  # 20:05 BST: the poll finds nothing new → late
    late = probe.wait_json(ALERT, lambda d: d["code"] == "prices_late", timeout=10)
    assert "tomorrow's prices are not published yet" in late["message"]

    clock.set(utc("2023-06-12T20:10:00Z"))  # 21:10 BST: published at 21:00, the next poll picks it up
    series = probe.wait_json(RATES, lambda d: d["valid_until"] == "2023-06-13T22:00:00Z", timeout=10)
    assert len(series["rates"]) == 46 + 48
    probe.wait_json(ALERT, lambda d: d["code"] == "ok", timeout=10)


def test_tomorrow_is_polled_for_from_16_local(pricing, probe: Probe, clock: FixedClock, fake: FakeOctopus) -> None:
    clock.set(utc("2023-06-12T14:50:00Z"))  # 15:50 BST: not yet published
    pricing()
    probe.wait_json(RATES, timeout=10)
    mark = probe.mark()
    clock.set(utc("2023-06-12T15:10:00Z"))  # 16:10 BST: the service woke at 16:00 + jitter (≤ 1 min)
    series = probe.wait_json(RATES, timeout=10, after=mark)
    assert series["valid_until"] == "2023-06-13T22:00:00Z"


def test_current_price_follows_the_slot_boundaries(pricing, probe: Probe, clock: FixedClock) -> None:
    pricing()
    first = probe.wait_json(CURRENT, lambda d: d["known"], timeout=10)
    assert first["slot_start"] == "2023-06-12T10:00:00Z"
    assert first["value_inc_vat"] == pytest.approx(real_price(utc("2023-06-12T10:00:00Z")))
    cheapest = first["next_cheapest_start"]
    assert cheapest is not None and utc(cheapest) >= utc("2023-06-12T10:00:00Z")
    clock.advance(timedelta(minutes=30, seconds=1))
    nxt = probe.wait_json(CURRENT, lambda d: d["slot_start"] == "2023-06-12T10:30:00Z", timeout=10)
    assert nxt["known"] and nxt["value_inc_vat"] == pytest.approx(real_price(utc("2023-06-12T10:30:00Z")))
    assert nxt["valid_until"] == "2023-06-12T11:00:00Z"


def test_after_a_wall_clock_step_back_the_current_price_follows_the_new_time(
    pricing, probe: Probe, clock: FixedClock
) -> None:
    """A 9 h step back (NTP, a user): the current price moves to the new time's slot at once, then on at the new
    time's boundaries (before: nothing until the clock came back to the old time's next boundary, 9 h on)."""
    pricing()
    probe.wait_json(CURRENT, lambda d: d["known"] and d["slot_start"] == "2023-06-12T10:00:00Z", timeout=10)
    clock.set(utc("2023-06-12T01:10:00Z"))
    now = probe.wait_json(CURRENT, lambda d: d["slot_start"] == "2023-06-12T01:00:00Z", timeout=5)
    assert now["known"] and now["value_inc_vat"] == pytest.approx(real_price(utc("2023-06-12T01:00:00Z")))
    clock.set(utc("2023-06-12T01:30:01Z"))
    probe.wait_json(CURRENT, lambda d: d["slot_start"] == "2023-06-12T01:30:00Z", timeout=5)


def test_refresh_command_answers_with_what_it_fetched(pricing, probe: Probe) -> None:
    pricing()
    probe.wait_json(RATES, timeout=10)
    result = refresh(probe, "r-1")
    assert result["status"] == "ok"
    assert result["data"] == {"slots": 46, "valid_until": "2023-06-12T22:00:00+00:00", "has_tomorrow": False}


def test_refresh_commands_sooner_than_a_minute_apart_are_refused_without_a_request(
    pricing, probe: Probe, clock: FixedClock, fake: FakeOctopus
) -> None:
    """An automation in a loop (or a button pressed again and again) reaches Octopus once a minute."""
    pricing()
    probe.wait_json(RATES, timeout=10)
    assert refresh(probe, "first")["status"] == "ok"
    before = fake.rate_requests()
    again = refresh(probe, "again")
    assert again["status"] == "error" and "try again in 60 s" in again["error"]
    assert fake.rate_requests() == before
    clock.step(timedelta(hours=2))  # a wall-clock step is not time passing: still too soon
    assert refresh(probe, "after-step")["status"] == "error"
    clock.advance(timedelta(seconds=60))
    assert refresh(probe, "a-minute-on")["status"] == "ok"
    assert fake.rate_requests() > before


# --------------------------------------------------------------------------------------------- restart, scale


def test_a_restart_without_network_republishes_the_stored_rates(
    pricing, probe: Probe, clock: FixedClock, fake: FakeOctopus
) -> None:
    clock.set(utc("2023-06-12T16:30:00Z"))
    first = pricing()
    original = probe.wait_json(RATES, timeout=10)
    first.ctx.shutdown()
    fake.stop()  # Octopus unreachable from now on
    clock.advance(timedelta(hours=1))
    mark = probe.mark()
    second = pricing()
    again = probe.wait_json(RATES, timeout=10, after=mark)
    assert again["source"] == "store"
    assert again["valid_until"] == original["valid_until"] == "2023-06-13T22:00:00Z"
    assert again["generated_at"] == original["generated_at"]  # not passed off as fresh
    assert again["rates"] == original["rates"]
    alert = probe.wait_json(ALERT, lambda d: d["code"] == "fetch_failing", timeout=10, after=mark)
    assert "cannot connect" in alert["message"]
    current = probe.wait_json(CURRENT, lambda d: d["slot_start"] == "2023-06-12T17:30:00Z", timeout=10, after=mark)
    assert current["known"] and current["value_inc_vat"] == pytest.approx(real_price(utc("2023-06-12T17:30:00Z")))
    assert second.logged("stored prices republished")


def test_more_than_1500_slots_are_fetched_over_pages(pricing, probe: Probe, fake: FakeOctopus) -> None:
    pricing(history_days=35)
    series = probe.wait_json(RATES, timeout=15)
    got = starts(series)
    assert len(got) == 35 * 48 + 46 > 1500
    assert got[0] == local_midnight(date(2023, 5, 8))
    assert all(b - a == SLOT for a, b in itertools.pairwise(got))
    rate_paths = [p for p in fake.requests if "standard-unit-rates" in p]
    assert len(rate_paths) == 2 and "page=2" in rate_paths[1]
    assert "page_size=1500" in rate_paths[0] and "period_from=2023-05-07T23%3A00%3A00Z" in rate_paths[0]


# --------------------------------------------------------------------------------------------- export, discovery


def test_export_rates_are_published_when_configured(pricing, probe: Probe) -> None:
    pricing(octopus_export_product="AGILE-OUTGOING-19-05-13")
    export = probe.wait_json(EXPORT, timeout=10)
    assert export["direction"] == "export" and export["tariff_code"] == "E-1R-AGILE-OUTGOING-19-05-13-J"
    assert len(export["rates"]) == 46 and all(r["value_inc_vat"] >= 0 for r in export["rates"])
    assert probe.wait_json(RATES, timeout=10)["direction"] == "import"


@pytest.mark.parametrize("with_account", [False, True])
def test_the_agile_tariff_is_discovered(pricing, probe: Probe, fake: FakeOctopus, with_account: bool) -> None:
    # With an account the tariffs come from its agreements (HTTP basic auth with the key), else from the products.
    extra = {"octopus_account": ACCOUNT_NUMBER, "octopus_api_key": API_KEY} if with_account else {}
    pricing(octopus_product="auto", octopus_export_product="auto", octopus_region="C", **extra)
    region = "J" if with_account else "C"  # the account's meter is in region J
    assert probe.wait_json(RATES, timeout=10)["tariff_code"] == f"E-1R-AGILE-24-10-01-{region}"
    assert probe.wait_json(EXPORT, timeout=10)["tariff_code"] == f"E-1R-AGILE-OUTGOING-19-05-13-{region}"
    assert any(p.startswith("/v1/accounts/") for p in fake.requests) is with_account
    assert any(p.startswith("/v1/products/?") for p in fake.requests) is not with_account


def test_home_assistant_discovery(pricing, probe: Probe) -> None:
    pricing()
    now = probe.wait_json("homeassistant/sensor/batsched_pricing/agile_price_now/config", timeout=10)
    assert now["unit_of_measurement"] == "GBP/kWh" and now["state_class"] == "measurement"
    assert "device_class" not in now
    assert now["state_topic"] == CURRENT and "value_inc_vat" in now["value_template"]
    cheap = probe.wait_json("homeassistant/sensor/batsched_pricing/agile_next_cheapest_slot/config", timeout=10)
    assert cheap["device_class"] == "timestamp" and "next_cheapest_start" in cheap["value_template"]


def test_at_local_midnight_the_published_day_moves_on(pricing, probe: Probe, clock: FixedClock) -> None:
    clock.set(utc("2023-06-12T22:50:00Z"))  # 23:50 BST, tomorrow published
    pricing()
    before = probe.wait_json(RATES, timeout=10)
    assert before["rates"][0]["start"] == "2023-06-11T23:00:00Z" and len(before["rates"]) == 94
    mark = probe.mark()
    clock.set(utc("2023-06-12T23:00:01Z"))  # 00:00 BST on the 13th
    after = probe.wait_json(RATES, timeout=10, after=mark)
    assert after["rates"][0]["start"] == "2023-06-12T23:00:00Z" and len(after["rates"]) == 46
    assert after["valid_until"] == before["valid_until"]
    assert after["generated_at"] == before["generated_at"]  # same data, trimmed: not a new fetch


def test_failing_fetches_back_off_and_recover_on_schedule(
    pricing, probe: Probe, clock: FixedClock, fake: FakeOctopus
) -> None:
    fake.set_faults(fail_500=-1)
    svc = pricing(http_attempts=1)
    probe.wait_json(ALERT, lambda d: d["code"] == "fetch_failing" and "HTTP 500" in d["message"], timeout=10)
    assert fake.rate_requests() == 1
    fake.set_faults(fail_500=0)
    clock.set(utc("2023-06-12T10:01:07Z"))  # the first retry is due after 60 s (+ ≤ 10 % jitter)
    series = probe.wait_json(RATES, timeout=10)
    assert len(series["rates"]) == 46 and fake.rate_requests() == 2
    probe.wait_json(ALERT, lambda d: d["code"] == "ok", timeout=10)
    assert svc.logged("fetch failed; keeping the last good prices")[0]["error"] == "HTTP 500 from Octopus"


def test_a_store_that_cannot_be_written_keeps_the_last_good_prices_and_recovers(
    pricing, probe: Probe, clock: FixedClock, fake: FakeOctopus
) -> None:
    svc = pricing()
    good = probe.wait_json(RATES, timeout=10)
    probe.wait_json(ALERT, lambda d: d["code"] == "ok", timeout=10)
    disk = fill(svc.service.store)
    disk.full = True
    fake.set_faults(overrides={"2023-06-12T18:00:00Z": 42.0})  # a changed price that cannot be saved
    mark = probe.mark()
    clock.set(next_fetch(svc, after=clock.now()))  # the hourly refresh
    alert = probe.wait_json(ALERT, lambda d: d["code"] == "store_failing", timeout=10, after=mark)
    assert "pricing.db" in alert["message"] and "database or disk is full" in alert["message"]
    assert rates_after(probe, mark) == []  # the last good prices stay published
    [line] = svc.logged("cannot save prices; keeping the last good prices")
    assert line["level"] == "error" and "disk is full" in line["error"]
    assert not svc.logged("fetch crashed; keeping the last good prices")  # a clear line, not a traceback
    failed_at = clock.now()
    disk.full = False
    retry = next_fetch(svc, after=failed_at)
    assert (retry - failed_at).total_seconds() <= 66  # the failure back-off: 60 s (+ ≤ 10 % jitter)
    clock.set(retry)
    fresh = probe.wait_json(RATES, timeout=10, after=mark)
    assert {r["start"]: r["value_inc_vat"] for r in fresh["rates"]}["2023-06-12T18:00:00Z"] == 0.42
    assert fresh["rates"] != good["rates"]
    probe.wait_json(ALERT, lambda d: d["code"] == "ok", timeout=10, after=mark)


def next_fetch(svc, after: datetime, timeout: float = 10.0) -> datetime:
    """The fetch loop's next instant once it is later than ``after`` (the loop sets it after each fetch)."""
    deadline = time.monotonic() + timeout
    while (due := svc.service.next_fetch_at) is None or due <= after:
        assert time.monotonic() < deadline, f"the fetch loop did not schedule a fetch after {after}"
        time.sleep(0.02)  # polling the service's own state; no bus event carries it
    return due


def test_state_is_republished_after_the_broker_loses_it(pricing, broker, probe: Probe) -> None:
    pricing()
    original = probe.wait_json(RATES, timeout=10)
    broker.kill()  # SIGKILL: retained messages are gone
    broker.start()
    fresh = Probe(broker.port, subscribe=f"{P}/#").start()
    try:
        assert fresh.wait_json(RATES, timeout=15) == original
        assert fresh.wait_json(CURRENT, timeout=5)["known"] is True
    finally:
        fresh.stop()
