"""``accounting/money``: the job publishes today so far, each day, month and since install, with batsched and the
self-use estimate's stored energy valued alike (issue 19's money page)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from services.accounting.__main__ import wire
from services.accounting.config import AccountingSettings
from services.accounting.money import money_summary
from shared.clock import FixedClock
from shared.logging import get_logger
from shared.models import BatteryState, DailySummary, MoneySummary, Plan, PlanSlot, Rate, RateSeries
from shared.runner import ServiceContext
from shared.slots import SLOT, local_midnight
from shared.topics import ACCOUNTING_MONEY, BATTERY_STATE, IMPORT_RATES, PLAN
from tests.accounting.test_daily import charged_for_tomorrow
from tests.support.memory_bus import MemoryBus

DAY1 = date(2024, 1, 15)


def _day(d: date, actual: float, stored: float | None, no_battery: float | None, su: float | None,
         su_stored: float | None) -> DailySummary:  # fmt: skip
    return DailySummary(
        generated_at=datetime(2024, 3, 1, tzinfo=UTC),
        date=d,
        actual_cost_gbp=actual,
        no_battery_cost_gbp=no_battery,
        self_use_cost_gbp=su,
        stored_change_value_gbp=stored,
        self_use_stored_change_value_gbp=su_stored,
        stored_value_gbp_per_kwh=0.19 if stored is not None else None,
        stored_value_source="plan" if stored is not None else None,
        grid_import_kwh=10.0,
    )


def test_periods_add_up_only_the_days_whose_figures_are_known() -> None:
    days = [
        _day(date(2024, 1, 30), 2.25, 0.77, 2.75, 1.46, -1.03),  # charged for tomorrow: saves 1.01 vs self-use
        _day(date(2024, 1, 31), 1.00, None, None, None, None),  # no load or SOC readings: actual only
        _day(date(2024, 2, 1), 1.50, -0.20, 2.00, 1.60, -0.20),
    ]
    today = _day(date(2024, 2, 2), 0.40, 0.10, 0.60, 0.45, -0.05)
    m = money_summary(days, today, datetime(2024, 2, 2, 12, tzinfo=UTC))
    assert [d.label for d in m.days] == ["2024-01-30", "2024-01-31", "2024-02-01"]
    assert [x.label for x in m.months] == ["2024-01", "2024-02"]
    jan = m.months[0]
    assert jan.days == 2 and jan.days_compared == 1
    assert jan.actual_cost_gbp == pytest.approx(3.25)
    assert jan.actual_comparable_cost_gbp == pytest.approx(2.25 - 0.77)
    assert jan.saved_vs_no_battery_gbp == pytest.approx(2.75 - (2.25 - 0.77))
    assert jan.saved_vs_self_use_gbp == pytest.approx((1.46 + 1.03) - (2.25 - 0.77))
    assert jan.self_use_comparable_cost_gbp == pytest.approx(1.46 + 1.03)
    total = m.since_install
    assert total is not None and total.days == 3 and total.days_compared == 2 and not total.partial
    assert total.saved_vs_self_use_gbp == pytest.approx(1.01 + (1.80 - 1.70))
    assert m.days[1].saved_vs_no_battery_gbp is None and m.days[1].actual_comparable_cost_gbp is None
    assert m.today is not None and m.today.partial and m.today.label == "2024-02-02"
    assert m.today.saved_vs_self_use_gbp == pytest.approx((0.45 + 0.05) - (0.40 - 0.10))
    assert "19.0p/kWh on 2024-02-02" in m.stored_value_note and "\n" not in m.stored_value_note


def test_the_job_publishes_money_retained_with_the_plans_value_of_stored_energy(tmp_path: Path) -> None:
    samples, price = charged_for_tomorrow(DAY1)
    start = local_midnight(DAY1)
    clock = FixedClock(start - timedelta(hours=1))
    settings = AccountingSettings(_secrets_dir=None, data_dir=tmp_path, accounting_settle_s=300)
    bus = MemoryBus(settings, "accounting")
    ctx = ServiceContext("accounting", settings, clock, bus, get_logger("test.accounting"))
    slots = sorted(price)
    rates = [Rate(start=s, end=s + SLOT, value_inc_vat=p) for s, p in price.items()]
    bus.fire(
        IMPORT_RATES,
        RateSeries(generated_at=clock.now(), valid_until=slots[-1] + SLOT, rates=rates, tariff_code="T"),
        retain=True,
    )
    wire(ctx)
    bus.start()
    made = start + timedelta(hours=20)
    clock.set(made)
    plan = Plan(
        generated_at=made,
        valid_until=made + timedelta(hours=1),
        plan_id="evening",
        slots=[PlanSlot(start=slots[40], end=slots[41], action="self_use", reason="self_use", expected_soc_pct=10)],
        end_value_gbp_per_kwh=0.19,
    )
    bus.fire(PLAN, plan)
    for s in samples:
        clock.set(s.at)
        bus.fire(
            BATTERY_STATE,
            BatteryState(
                generated_at=s.at, valid_until=s.at + timedelta(minutes=5), observed_at=s.at, soc_pct=s.soc_pct,
                grid_power_w=s.grid_w, load_power_w=s.load_w, solar_power_w=s.pv_w, capacity_kwh=13.5,
            ),
        )  # fmt: skip
    _, publish_money = ctx.periodic["money"]
    publish_money()  # the periodic task: today so far, before the day closes
    so_far = MoneySummary.model_validate_json(bus.last(ACCOUNTING_MONEY).payload)
    assert so_far.today is not None and so_far.today.partial and so_far.days == []
    _, close = ctx.periodic["close-days"]
    clock.set(local_midnight(DAY1 + timedelta(days=1)) + timedelta(minutes=10))
    close()
    last = bus.last(ACCOUNTING_MONEY)
    assert last is not None and bus.retained[bus.topics.accounting_money] == last.payload
    money = MoneySummary.model_validate_json(last.payload)
    (day,) = money.days
    assert day.label == DAY1.isoformat() and day.days_compared == 1
    assert day.self_use_cost_gbp is not None and day.self_use_cost_gbp < day.actual_cost_gbp  # money alone
    assert day.saved_vs_self_use_gbp is not None and day.saved_vs_self_use_gbp > 0.9  # valued alike
    assert day.saved_vs_no_battery_gbp is not None and day.saved_vs_no_battery_gbp > 1.0
    assert money.since_install is not None and money.since_install.saved_vs_self_use_gbp == day.saved_vs_self_use_gbp
    assert [m.label for m in money.months] == ["2024-01"]
    assert "planner's own value" in money.stored_value_note and "19.0p/kWh" in money.stored_value_note
    summary = json.loads(bus.retained[bus.topics.executor_daily_summary])
    assert summary["stored_value_source"] == "plan" and summary["self_use_end_soc_pct"] == pytest.approx(10.0)
    assert summary["since_install"]["saved_vs_self_use_gbp"] == pytest.approx(day.saved_vs_self_use_gbp, abs=1e-3)
