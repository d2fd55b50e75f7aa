"""The pure planner: hard rules, reasons, SOC bounds, DST days, stability, degraded plans."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.planner.optimiser import plan
from shared.models import Action, PlannerSettings, Reason
from shared.slots import local_day_slots, parse_hhmm, slot_overlaps_local_window
from tests.planner.helpers import HALF, battery, forecast, rates, utc

SETTINGS = PlannerSettings()


def _charges(p) -> list:
    return [s for s in p.slots if s.action == Action.CHARGE]


prices_st = st.lists(
    st.one_of(st.none(), st.floats(min_value=-0.3, max_value=1.0, allow_nan=False)), min_size=2, max_size=96
)


@given(
    prices=prices_st,
    soc=st.floats(min_value=0, max_value=100),
    min_soc=st.floats(min_value=0, max_value=50),
    limit=st.floats(min_value=-0.1, max_value=0.6),
    cap=st.floats(min_value=20, max_value=100),
    start_slot=st.integers(min_value=0, max_value=47),
    loads=st.lists(st.floats(min_value=0, max_value=3), min_size=96, max_size=96),
    pvs=st.lists(st.floats(min_value=0, max_value=2.5), min_size=96, max_size=96),
)
def test_hard_rules_and_soc_bounds_hold_for_any_input(prices, soc, min_soc, limit, cap, start_slot, loads, pvs) -> None:
    now = utc(2024, 6, 3, 0, 0) + start_slot * HALF
    settings = PlannerSettings(min_soc_pct=min_soc, max_charge_price_gbp=limit, target_soc_cap_pct=cap)
    if all(p is None for p in prices):
        prices = [*prices[:-1], 0.1]
    p = plan(
        rates(now, prices),
        forecast("pv", now, pvs[: len(prices)]),
        forecast("load", now, loads[: len(prices)]),
        battery(now, soc),
        settings,
        now,
    )
    assert p.status == "ok"
    peak = (parse_hhmm(settings.peak_start_local), parse_hhmm(settings.peak_end_local))
    lowest = min(min_soc, soc) - 0.01
    for s in p.slots:
        price = prices[int((s.start - now) / HALF)]
        if s.action == Action.CHARGE:
            assert price is not None, "charged in a slot without a price"
            assert price <= limit, "charged above the price limit"
            assert not slot_overlaps_local_window(s.start, *peak), "charged in the peak window"
            assert s.target_soc_pct is not None and s.target_soc_pct <= max(cap, soc) + 0.01
        assert lowest <= s.expected_soc_pct <= 100.0
        if price is None:
            assert s.value_inc_vat is None and s.action != Action.CHARGE


def test_an_all_equal_price_day_gives_no_charging() -> None:
    now = utc(2024, 3, 5, 0, 0)
    p = plan(rates(now, [0.15] * 48), None, forecast("load", now, [0.5] * 48), battery(now, 20), SETTINGS, now)
    assert _charges(p) == []
    assert p.expected_cost_gbp <= p.baseline_costs_gbp["no_battery"]


def test_negative_prices_are_used_to_charge() -> None:
    now = utc(2024, 3, 5, 0, 0)
    prices = [0.25] * 8 + [-0.05] * 4 + [0.25] * 36
    p = plan(rates(now, prices), None, forecast("load", now, [0.4] * 48), battery(now, 30), SETTINGS, now)
    neg = p.slots[8:12]
    assert all(s.action == Action.CHARGE and s.reason == Reason.NEGATIVE_PRICE for s in neg)
    assert p.expected_cost_gbp < p.baseline_costs_gbp["self_use"]


def test_cheap_night_charge_for_an_expensive_evening_with_reasons() -> None:
    now = utc(2024, 1, 10, 0, 0)  # local = UTC in January
    prices = [0.08] * 12 + [0.22] * 20 + [0.40] * 6 + [0.25] * 10  # peak 16:00-19:00 is slots 32..37
    p = plan(rates(now, prices), None, forecast("load", now, [0.5] * 48), battery(now, 10), SETTINGS, now)
    assert any(s.action == Action.CHARGE for s in p.slots[:12])
    assert all(s.action != Action.CHARGE for s in p.slots[12:])
    assert all(s.reason == Reason.PEAK_BLOCKED for s in p.slots[32:38] if s.action == Action.SELF_USE)
    assert p.expected_cost_gbp < p.baseline_costs_gbp["self_use"] <= p.baseline_costs_gbp["no_battery"]
    assert p.expected_cost_gbp <= p.baseline_costs_gbp["seed_rule"] + 1e-6
    assert p.valid_until <= now + timedelta(hours=2)


def test_dst_days_have_46_and_50_slots_and_the_peak_stays_local() -> None:
    for day, n in (("2024-03-31", 46), ("2024-10-27", 50)):
        y, m, d = (int(x) for x in day.split("-"))
        starts = local_day_slots(__import__("datetime").date(y, m, d))
        assert len(starts) == n
        now = starts[0]
        prices = [0.30 if 30 <= k < 40 else 0.10 for k in range(n)]
        p = plan(rates(now, prices), None, forecast("load", now, [0.5] * n), battery(now, 50), SETTINGS, now)
        assert len(p.slots) == n
        peak = [s for s in p.slots if s.reason == Reason.PEAK_BLOCKED]
        local = [s.start.astimezone(__import__("zoneinfo").ZoneInfo("Europe/London")) for s in peak]
        assert [t.strftime("%H:%M") for t in local][:1] == ["16:00"] and len(peak) <= 6
        assert all(s.action != Action.CHARGE for s in p.slots if "16:00" <= s.start.strftime("%H:%M") < "19:00")


def test_replanning_with_the_same_inputs_gives_the_same_actions() -> None:
    now = utc(2024, 1, 10, 0, 0)
    rng = np.random.default_rng(3)
    prices = list(np.round(rng.uniform(0.05, 0.35, 48), 4))
    prices[20:24] = [prices[19]] * 4  # ties
    load = forecast("load", now, [0.5] * 48)
    first = plan(rates(now, prices), None, load, battery(now, 40), SETTINGS, now)
    t7 = now + timedelta(minutes=7)
    again = plan(rates(now, prices), None, load, battery(t7, 40), SETTINGS, t7)
    assert [s.action for s in first.slots] == [s.action for s in again.slots]
    # Half an hour later, from the SOC the plan expected, the rest of the plan does not change.
    later = now + HALF
    soc = first.slots[0].expected_soc_pct
    nxt = plan(rates(now, prices), None, load, battery(later, soc), SETTINGS, later)
    same = sum(a.action == b.action for a, b in zip(first.slots[1:], nxt.slots, strict=True))
    assert same >= len(nxt.slots) - 1


def test_missing_or_stale_inputs_give_a_degraded_self_use_plan_with_the_reason() -> None:
    now = utc(2024, 1, 10, 12, 0)
    good = rates(now, [0.1] * 10)
    cases = [
        (None, battery(now, 50), "no import prices"),
        (rates(now - timedelta(days=2), [0.1] * 10), battery(now, 50), "expired"),
        (good, None, "no battery state"),
        (good, battery(now, 50, age=timedelta(minutes=20)), "stale"),
    ]
    for prices, bat, words in cases:
        p = plan(prices, None, None, bat, SETTINGS, now)
        assert p.status == "degraded" and words in (p.reason or "")
        assert {s.action for s in p.slots} == {Action.SELF_USE}
        assert p.slots[0].reason in (Reason.NO_INPUTS, Reason.STALE_INPUTS)


def test_inputs_the_model_cannot_carry_give_self_use_not_an_exception() -> None:
    """Found by the long bus fuzz: a load forecast of 1.5e308 kWh a slot overflowed the baselines' costs, the plan
    failed validation and the replan thread died. Such messages are now refused at the bus, and the planner
    answers anything that still breaks its sums with self-use and the reason."""
    now = utc(2024, 1, 10, 12, 0)
    huge = forecast("load", now, [1.0] * 10)
    huge = huge.model_copy(update={"slots": [s.model_copy(update={"energy_kwh": 1.5e308}) for s in huge.slots]})
    p = plan(rates(now, [0.1] * 10), None, huge, battery(now, 50), SETTINGS, now)
    assert p.status == "degraded" and "planning failed" in (p.reason or "")
    assert {s.action for s in p.slots} == {Action.SELF_USE}
    with pytest.raises(ValueError):
        forecast("load", now, [1e300] * 10)
    with pytest.raises(ValueError):
        rates(now, [1e300] * 10)


def test_missing_forecasts_fall_back_and_say_so() -> None:
    now = utc(2024, 1, 10, 12, 0)
    p = plan(rates(now, [0.1] * 10), None, None, battery(now, 50), SETTINGS, now)
    assert p.status == "ok"
    assert "load forecast missing" in p.reason and "pv forecast missing" in p.reason
    assert all(s.pv_kwh == 0 for s in p.slots)
