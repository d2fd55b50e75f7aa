"""Each Octopus tariff through the pricing service (real HTTP to the fake Octopus, a real Mosquitto) on both of
2024's clock-change days: the same half-hourly series on the bus, its fixed windows in UK local time."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pandas as pd
import pytest

from shared.clock import FixedClock
from shared.slots import LONDON, local_day_bounds, local_day_slots, local_midnight
from sim import octopus_tariffs as ot
from sim.datasets import agile_prices_through
from sim.octopus import EXPORT_PRODUCT, IMPORT_PRODUCT, FakeOctopus
from tests.support.probe import Probe
from tests.tariffs.conftest import PRICES_UNTIL

P = "batsched/pricing"
RATES, EXPORT = f"{P}/import/rates", f"{P}/export/rates"
SPRING, AUTUMN = date(2024, 3, 31), date(2024, 10, 27)
DAYS = [pytest.param(SPRING, 46, id="spring-forward"), pytest.param(AUTUMN, 50, id="fall-back")]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def day_prices(series: dict, day: date) -> dict[datetime, float]:
    """The day's published slots (UTC start → p/kWh)."""
    lo, hi = local_day_bounds(day)
    return {utc(r["start"]): round(r["value_inc_vat"] * 100, 4) for r in series["rates"] if lo <= utc(r["start"]) < hi}


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=LONDON).astimezone(UTC)


def local_hours(prices: dict[datetime, float], p: float) -> list[str]:
    return [t.astimezone(LONDON).strftime("%H:%M") for t, v in sorted(prices.items()) if v == p]


def run_day(pricing, probe: Probe, clock: FixedClock, day: date, product: str, export: str | None = None) -> tuple:
    clock.set(local_midnight(day) + timedelta(hours=18))  # after 16:00: day-ahead prices for tomorrow are out
    pricing(octopus_product=product, octopus_export_product=export)
    imp = probe.wait_json(RATES, lambda d: d["tariff_code"] == f"E-1R-{product}-J", timeout=15)
    exp = probe.wait_json(EXPORT, lambda d: d["tariff_code"] == f"E-1R-{export}-J", timeout=15) if export else None
    return imp, exp


# ------------------------------------------------------------------------------------- banded tariffs


@pytest.mark.parametrize(("day", "n"), DAYS)
def test_go_cheap_window_is_00_30_to_04_30_local_time(pricing, probe, clock, day: date, n: int) -> None:
    imp, _ = run_day(pricing, probe, clock, day, ot.GO)
    prices = day_prices(imp, day)
    assert sorted(prices) == local_day_slots(day) and len(prices) == n
    cheap = local_hours(prices, 8.5)
    # 00:30-04:30 on the clock: 3 hours when 01:00-02:00 is skipped, 5 when it happens twice
    expected = {
        SPRING: ["00:30", "02:00", "02:30", "03:00", "03:30", "04:00"],
        AUTUMN: ["00:30", "01:00", "01:30", "01:00", "01:30", "02:00", "02:30", "03:00", "03:30", "04:00"],
    }
    assert cheap == expected[day]  # fmt: skip
    assert set(prices.values()) == {8.5, 27.0}
    assert min(t for t, v in prices.items() if v == 8.5) == at(day, 0, 30)


@pytest.mark.parametrize(("day", "n"), DAYS)
def test_intelligent_go_off_peak_runs_over_midnight_23_30_to_05_30(pricing, probe, clock, day: date, n: int) -> None:
    imp, _ = run_day(pricing, probe, clock, day, ot.INTELLIGENT_GO)
    prices = day_prices(imp, day)
    assert len(prices) == n
    cheap = local_hours(prices, 7.0)
    assert cheap[0] == "00:00" and cheap[-2:] == ["05:00", "23:30"]
    assert len(cheap) == {SPRING: 11 - 2 + 1, AUTUMN: 11 + 2 + 1}[day]  # 00:00-05:30 (an hour less/more), 23:30


@pytest.mark.parametrize(("day", "n"), DAYS)
def test_flux_import_and_export_bands_move_with_the_clocks(pricing, probe, clock, day: date, n: int) -> None:
    imp, exp = run_day(pricing, probe, clock, day, ot.FLUX_IMPORT, ot.FLUX_EXPORT)
    prices, export = day_prices(imp, day), day_prices(exp, day)
    assert len(prices) == len(export) == n
    assert local_hours(prices, 38.1) == ["16:00", "16:30", "17:00", "17:30", "18:00", "18:30"]
    assert local_hours(export, 29.8) == local_hours(prices, 38.1)
    assert local_hours(prices, 16.3) == ["02:00", "02:30", "03:00", "03:30", "04:00", "04:30"]
    assert min(t for t, v in prices.items() if v == 38.1) == at(day, 16)  # 15:00Z in summer time, 16:00Z after
    assert set(export.values()) == {7.9, 19.4, 29.8}


@pytest.mark.parametrize(("day", "n"), DAYS)
def test_cosy_has_three_cheap_windows_and_a_peak(pricing, probe, clock, day: date, n: int) -> None:
    imp, _ = run_day(pricing, probe, clock, day, ot.COSY)
    prices = day_prices(imp, day)
    assert len(prices) == n
    cheap = local_hours(prices, 13.4)
    assert cheap == [f"{h:02d}:{m:02d}" for h in (4, 5, 6, 13, 14, 15, 22, 23) for m in (0, 30)]
    assert local_hours(prices, 41.4) == [f"{h:02d}:{m:02d}" for h in (16, 17, 18) for m in (0, 30)]


# ------------------------------------------------------------------------------------- daily and fixed


@pytest.mark.parametrize(("day", "n"), DAYS)
def test_tracker_has_one_price_for_the_whole_local_day(pricing, probe, clock, day: date, n: int) -> None:
    imp, _ = run_day(pricing, probe, clock, day, ot.TRACKER)
    prices = day_prices(imp, day)
    assert sorted(prices) == local_day_slots(day) and len(prices) == n
    agile = agile_prices_through(PRICES_UNTIL)
    lo, hi = local_day_bounds(day)
    day_mean = float(agile[(agile.index >= pd.Timestamp(lo)) & (agile.index < pd.Timestamp(hi))].mean())
    assert set(prices.values()) == {ot.tracker_price_p(day_mean)}
    # tomorrow's day is published at 16:00 too, with its own price, from local midnight
    tomorrow = day_prices(imp, day + timedelta(days=1))
    assert len(set(tomorrow.values())) == 1 and min(tomorrow) == hi


@pytest.mark.parametrize(("day", "n"), DAYS)
def test_a_fixed_tariff_is_one_open_ended_price(pricing, probe, clock, day: date, n: int) -> None:
    imp, exp = run_day(pricing, probe, clock, day, ot.FIXED, ot.OUTGOING_FIXED)
    prices, export = day_prices(imp, day), day_prices(exp, day)
    assert len(prices) == len(export) == n
    assert set(prices.values()) == {19.8 if day == SPRING else 24.6}  # the price changed on 2024-09-18
    assert set(export.values()) == {15.0}
    assert utc(imp["valid_until"]) == local_midnight(day + timedelta(days=2))  # known ahead: the whole window


@pytest.mark.parametrize(("day", "n"), DAYS)
def test_agile_and_outgoing_are_half_hourly(pricing, probe, clock, day: date, n: int) -> None:
    imp, exp = run_day(pricing, probe, clock, day, IMPORT_PRODUCT, EXPORT_PRODUCT)
    prices, export = day_prices(imp, day), day_prices(exp, day)
    assert sorted(prices) == local_day_slots(day) and len(export) == n
    agile = agile_prices_through(PRICES_UNTIL)
    assert all(abs(v - round(float(agile[pd.Timestamp(t)]) * 100, 4)) < 1e-3 for t, v in prices.items())
    assert len(set(prices.values())) > 10


# ------------------------------------------------------------------------------------- from the account


def test_the_tariffs_are_discovered_from_the_accounts_agreements(pricing, probe, clock, fake: FakeOctopus) -> None:
    from sim.octopus import ACCOUNT_NUMBER, API_KEY

    fake.account_products = (ot.COSY, ot.OUTGOING_FIXED)
    clock.set(at(AUTUMN, 12))
    pricing(octopus_product="auto", octopus_export_product="auto", octopus_account=ACCOUNT_NUMBER,
            octopus_api_key=API_KEY)  # fmt: skip
    imp = probe.wait_json(RATES, timeout=15)
    exp = probe.wait_json(EXPORT, timeout=15)
    assert imp["tariff_code"] == f"E-1R-{ot.COSY}-J" and exp["tariff_code"] == f"E-1R-{ot.OUTGOING_FIXED}-J"
    assert local_hours(day_prices(imp, AUTUMN), 41.4)[0] == "16:00"


@pytest.mark.parametrize("product", [ot.GO, ot.FIXED, ot.TRACKER])
def test_no_prices_late_alert_for_a_tariff_that_is_not_agile(pricing, probe, clock, product: str) -> None:
    # 21:00 local: past the "late" hour. Go and the fixed price are known days ahead; Tracker's day came at 16:00.
    clock.set(at(AUTUMN, 21))
    pricing(octopus_product=product)
    probe.wait_json(RATES, lambda d: d["tariff_code"] == f"E-1R-{product}-J", timeout=15)
    alert = probe.wait_json(f"{P}/alert", timeout=15)
    assert alert["code"] == "ok", alert


def test_tracker_before_16_00_has_today_only_and_is_not_late(pricing, probe, clock) -> None:
    clock.set(at(SPRING, 12))
    pricing(octopus_product=ot.TRACKER)
    imp = probe.wait_json(RATES, timeout=15)
    assert utc(imp["valid_until"]) == local_midnight(SPRING + timedelta(days=1))
    assert len(day_prices(imp, SPRING)) == 46
    assert probe.wait_json(f"{P}/alert", timeout=15)["code"] == "ok"
