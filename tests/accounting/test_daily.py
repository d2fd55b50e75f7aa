"""The pure daily accounting: the integration rule, DST days, missing prices, plans and counterfactuals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.accounting.daily import (
    BatteryParams,
    PlannedSlot,
    Sample,
    StoredValue,
    account_day,
    integrate,
    self_use_grid,
)
from shared.slots import local_day_slots

T0 = datetime(2024, 1, 15, 0, 0, tzinfo=UTC)  # local midnight in winter (GMT)


def every(start: datetime, end: datetime, step: timedelta, **fields) -> list[Sample]:
    out, t = [], start
    while t < end:
        out.append(Sample(at=t, **fields))
        t += step
    return out


def test_constant_import_integrates_to_power_times_time() -> None:
    samples = every(T0, T0 + timedelta(hours=1), timedelta(minutes=1), grid_w=2000.0)
    flows = integrate(samples, [T0, T0 + timedelta(minutes=30)])
    assert [round(f.import_kwh, 9) for f in flows] == [1.0, 1.0]
    assert all(f.observed and f.export_kwh == 0 for f in flows)


def test_import_and_export_in_one_slot_are_not_netted() -> None:
    samples = [Sample(T0, 1200.0), Sample(T0 + timedelta(minutes=10), -600.0), Sample(T0 + timedelta(minutes=20), 0.0)]
    (flow,) = integrate(samples, [T0])
    assert flow.import_kwh == pytest.approx(0.2)
    assert flow.export_kwh == pytest.approx(0.1)


def test_a_silence_longer_than_the_hold_is_a_gap_not_a_constant() -> None:
    samples = [Sample(T0, 1000.0), Sample(T0 + timedelta(hours=2), 1000.0)]
    flows = integrate(samples, [T0, T0 + timedelta(minutes=30)], max_hold=timedelta(minutes=10))
    assert flows[0].import_kwh == pytest.approx(1000 * (10 / 60) / 1000)
    assert not flows[0].observed and flows[1].covered_s == 0


def test_a_sample_before_midnight_holds_into_the_day() -> None:
    samples = [Sample(T0 - timedelta(minutes=5), 3000.0), Sample(T0 + timedelta(minutes=5), 0.0)]
    (flow,) = integrate(samples, [T0])
    assert flow.import_kwh == pytest.approx(3 * 5 / 60)


@pytest.mark.parametrize(("day", "slots"), [(date(2024, 3, 31), 46), (date(2024, 10, 27), 50), (date(2024, 6, 1), 48)])
def test_dst_days_have_46_or_50_slots_and_every_slot_is_costed(day: date, slots: int) -> None:
    starts = local_day_slots(day)
    samples = every(starts[0], starts[-1] + timedelta(minutes=30), timedelta(minutes=5), grid_w=1000.0)
    prices = {s: 0.10 + i / 1000 for i, s in enumerate(starts)}
    acc = account_day(day, samples, prices)
    assert acc.slots_expected == slots == acc.slots_observed
    assert acc.actual_cost_gbp == pytest.approx(sum(0.5 * p for p in prices.values()))
    assert acc.grid_import_kwh == pytest.approx(0.5 * slots)


def test_a_slot_without_a_price_is_counted_not_read_as_zero() -> None:
    day = date(2024, 1, 15)
    starts = local_day_slots(day)
    samples = every(starts[0], starts[-1] + timedelta(minutes=30), timedelta(minutes=5), grid_w=1000.0)
    prices = {s: 0.2 for s in starts[2:]}
    acc = account_day(day, samples, prices)
    assert acc.slots_unpriced == 2
    assert acc.actual_cost_gbp == pytest.approx(0.5 * 0.2 * 46)


def test_export_earns_at_the_export_price() -> None:
    day = date(2024, 1, 15)
    starts = local_day_slots(day)
    samples = every(starts[0], starts[-1] + timedelta(minutes=30), timedelta(minutes=5), grid_w=-1000.0)
    acc = account_day(day, samples, {s: 0.3 for s in starts}, {s: 0.15 for s in starts})
    assert acc.actual_cost_gbp == pytest.approx(-0.15 * 0.5 * 48)
    assert acc.grid_export_kwh == pytest.approx(24)


def test_planned_cost_uses_the_latest_plan_made_before_each_slot() -> None:
    day = date(2024, 1, 15)
    starts = local_day_slots(day)
    early = [PlannedSlot(starts[0] - timedelta(hours=1), s, 1.0) for s in starts]
    late = [PlannedSlot(starts[10], s, 2.0) for s in starts[10:]]  # replanned at slot 10
    too_late = [PlannedSlot(starts[20] + timedelta(minutes=1), s, 5.0) for s in starts[20:]]  # during slot 20
    samples = every(starts[0], starts[-1] + timedelta(minutes=30), timedelta(minutes=5), grid_w=0.0)
    acc = account_day(day, samples, {}, planned=early + late + too_late)
    # slots 0-9 from the early plan, 10-20 from the replan, 21-47 from the one made during slot 20
    assert acc.planned_cost_gbp == pytest.approx(10 * 1.0 + 11 * 2.0 + 27 * 5.0)
    assert acc.slots_planned == 48


def test_counterfactuals_from_observed_load_and_pv() -> None:
    day = date(2024, 6, 1)
    starts = local_day_slots(day)
    # Battery discharging to cover a 1 kW load all day with no PV: grid import 0.
    samples = every(
        starts[0], starts[-1] + timedelta(minutes=30), timedelta(minutes=5), grid_w=0.0, load_w=1000.0, pv_w=0.0,
        soc_pct=100.0, capacity_kwh=13.5,
    )  # fmt: skip
    acc = account_day(day, samples, {s: 0.2 for s in starts})
    assert acc.actual_cost_gbp == 0
    assert acc.soc_start_pct == acc.soc_end_pct == 100.0
    assert acc.no_battery_cost_gbp == pytest.approx(24 * 0.2)
    # Self-use from full: 13.5 kWh down to the 10 % reserve, less the discharge loss (95 %), then the grid.
    delivered = (13.5 - 1.35) * 0.95
    assert acc.self_use_cost_gbp == pytest.approx((24 - delivered) * 0.2)


def test_no_counterfactual_without_load_observations() -> None:
    day = date(2024, 6, 1)
    starts = local_day_slots(day)
    samples = every(starts[0], starts[-1] + timedelta(minutes=30), timedelta(minutes=5), grid_w=500.0)
    acc = account_day(day, samples, {s: 0.2 for s in starts})
    assert acc.no_battery_cost_gbp is None and acc.self_use_cost_gbp is None
    assert acc.actual_cost_gbp == pytest.approx(12 * 0.2)


def test_self_use_stores_pv_surplus_and_uses_it_later() -> None:
    grid = self_use_grid([0.0, 1.0, 2.0], [2.0, 0.0, 0.0], 10.0, BatteryParams(capacity_kwh=10, reserve_pct=10))
    assert grid[0] == (0.0, 0.0)  # 2 kWh surplus stored as 1.9 kWh (limit 2.5 kWh per slot)
    assert grid[1][0] == pytest.approx(0.0)  # 1 kWh delivered from the 1.9 kWh above the reserve
    assert grid[2][0] == pytest.approx(2.0 - (1.9 - 1.0 / 0.95) * 0.95)  # the rest, then the grid


def charged_for_tomorrow(day: date) -> tuple[list[Sample], dict[datetime, float]]:
    """Issue 19's first day: the battery covers the house (50 % down to the 10 % reserve), the house then runs
    from the grid, and from 21:00 batsched grid-charges at 8p for the next day (to about 80 %). 0.5 kW load,
    no PV; 25p by day, 8p from 21:00."""
    starts = local_day_slots(day)
    t0 = starts[0]
    price = {s: (0.08 if (s - t0) >= timedelta(hours=21) else 0.25) for s in starts}
    samples, soc, t = [], 50.0, t0
    step = timedelta(minutes=5)
    h = step.total_seconds() / 3600
    while t < starts[-1] + SLOT_LEN:
        if t - t0 >= timedelta(hours=21):
            grid, change = 3800.0, 3.3 * 0.95 * h / 13.5 * 100
        elif soc > 10.0:
            grid, change = 0.0, max(-0.5 / 0.95 * h / 13.5 * 100, 10.0 - soc)
        else:
            grid, change = 500.0, 0.0
        samples.append(Sample(at=t, grid_w=grid, load_w=500.0, pv_w=0.0, soc_pct=round(soc, 3), capacity_kwh=13.5))
        soc += change
        t += step
    return samples, price


SLOT_LEN = timedelta(minutes=30)


def test_self_use_is_not_credited_for_draining_the_battery() -> None:
    """By money alone the self-use estimate beats batsched (it never charged for tomorrow); valued alike, the
    80 % batsched leaves is worth more than the 10 % self-use leaves, and batsched saves."""
    day = date(2024, 1, 15)
    samples, price = charged_for_tomorrow(day)
    acc = account_day(day, samples, price, plan_value=StoredValue(0.19, "plan"))
    assert acc.self_use_cost_gbp is not None and acc.no_battery_cost_gbp is not None
    assert acc.self_use_cost_gbp < acc.actual_cost_gbp  # the reported "saved vs self use £-0.56" shape
    assert acc.soc_start_pct == 50.0 and acc.soc_end_pct is not None and acc.soc_end_pct > 75
    assert acc.self_use_end_soc_pct == pytest.approx(10.0)
    per_pct = 13.5 / 100 * 0.19
    assert acc.stored_change_value_gbp == pytest.approx((acc.soc_end_pct - 50.0) * per_pct)
    assert acc.self_use_stored_change_value_gbp == pytest.approx(-40.0 * per_pct)
    comparable = acc.actual_cost_gbp - acc.stored_change_value_gbp
    self_use_comparable = acc.self_use_cost_gbp - acc.self_use_stored_change_value_gbp
    assert self_use_comparable - comparable > 0.9
    assert acc.no_battery_cost_gbp - comparable > 1.0
    assert acc.stored_value == StoredValue(0.19, "plan")


def test_without_a_plan_stored_energy_is_valued_at_the_days_mean_price() -> None:
    day = date(2024, 1, 15)
    samples, price = charged_for_tomorrow(day)
    acc = account_day(day, samples, price)
    mean = sum(price.values()) / len(price)
    assert acc.stored_value == StoredValue(pytest.approx(mean * 0.95), "day_prices")
    assert acc.self_use_stored_change_value_gbp == pytest.approx(-40.0 * 13.5 / 100 * mean * 0.95)
