"""The accounting job on a clock the test moves, over the in-memory bus: a summary after each local midnight, its
cost recomputable from the states it was sent. (The process itself is run on Mosquitto by ``test_job_clock`` and
the bus fuzzing.)"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from services.accounting.__main__ import wire
from services.accounting.config import AccountingSettings
from shared.clock import FixedClock
from shared.logging import get_logger
from shared.models import BatteryState, Plan, PlanSlot, Rate, RateSeries
from shared.runner import ServiceContext
from shared.slots import SLOT, iter_slots, local_midnight, slot_start
from shared.topics import BATTERY_STATE, EXECUTOR_DAILY_SUMMARY, IMPORT_RATES, PLAN
from sim.datasets import agile_prices
from tests.support.memory_bus import MemoryBus

START = datetime(2023, 6, 12, 13, 0, tzinfo=UTC)  # the clock starts here
FIRST = datetime(2023, 6, 12, 21, 0, tzinfo=UTC)  # 22:00 BST: the first sample, two slots before local midnight
DAY1, DAY2 = date(2023, 6, 12), date(2023, 6, 13)
END = local_midnight(date(2023, 6, 14))  # the second local midnight
SETTLE_S = 1200
STEP = timedelta(minutes=5)


def grid_w(i: int) -> float:
    # A varied, deterministic pattern with some export (which earns nothing here: no export rates).
    return [800.0, 2400.0, 150.0, -300.0, 3300.0, 0.0, 1200.0][i % 7]


def rates() -> RateSeries:
    prices = agile_prices()
    slots = list(iter_slots(FIRST, END + timedelta(hours=1)))
    return RateSeries(
        generated_at=START,
        valid_until=slots[-1] + SLOT,
        tariff_code="E-1R-AGILE-FLEX-22-11-25-J",
        rates=[Rate(start=s, end=s + SLOT, value_inc_vat=float(prices[s])) for s in slots],
    )


def plan() -> Plan:
    slots = list(iter_slots(FIRST, END))
    return Plan(
        generated_at=START - timedelta(minutes=1),
        valid_until=END,
        plan_id="p-test",
        slots=[
            PlanSlot(start=s, end=s + SLOT, action="self_use", reason="self_use", expected_soc_pct=50, cost_gbp=0.01)
            for s in slots
        ],
    )


def test_daily_summary_after_each_local_midnight_equals_observed_import_times_price(tmp_path: Path) -> None:
    rs = rates()
    clock = FixedClock(START)
    settings = AccountingSettings(_secrets_dir=None, data_dir=tmp_path, accounting_settle_s=SETTLE_S)
    bus = MemoryBus(settings, "accounting")
    ctx = ServiceContext("accounting", settings, clock, bus, get_logger("test.accounting"))
    bus.fire(IMPORT_RATES, rs, retain=True)
    bus.fire(PLAN, plan(), retain=True)
    wire(ctx)  # its close-days task is driven below as the runner would: now, then after seconds_to_next_close()
    bus.start()
    job = close_days_task(ctx)
    job()

    # battery/state every 5 minutes, as the executor publishes it; the close-days task runs when it is due.
    published: list[tuple[datetime, float]] = []
    t, i = FIRST, 0
    while t < END + timedelta(hours=1):
        clock.set(t)
        job()
        if t < END:
            state = BatteryState(
                generated_at=t,
                valid_until=t + timedelta(minutes=5),
                observed_at=t,
                soc_pct=50.0,
                grid_power_w=grid_w(i),
            )
            bus.fire(BATTERY_STATE, state)
            published.append((t, grid_w(i)))
        t, i = t + STEP, i + 1

    sent = [json.loads(m.payload) for m in bus.on(EXECUTOR_DAILY_SUMMARY)]

    def summary_for(day: date) -> dict:
        return next(d for d in sent if d["date"] == day.isoformat())

    price = {r.start: r.value_inc_vat for r in rs.rates}
    for day in (DAY1, DAY2):
        summary = summary_for(day)
        midnight = local_midnight(day + timedelta(days=1))
        made = datetime.fromisoformat(summary["generated_at"].replace("Z", "+00:00"))
        assert midnight <= made < midnight + timedelta(hours=1), "published soon after the local midnight"
        lo, hi = local_midnight(day), midnight
        # Recompute from what we published: each sample's import holds for its 5 minutes.
        expected = sum(
            max(w, 0.0) / 1000 * STEP.total_seconds() / 3600 * price[slot_start(at)]
            for at, w in published
            if lo <= at < hi
        )
        assert summary["actual_cost_gbp"] == pytest.approx(expected, abs=1e-3)
        assert summary["actual_cost_gbp"] > 0
        assert summary["slots_unpriced"] == 0
        assert summary["planned_cost_gbp"] == pytest.approx(0.01 * summary["slots_planned"])
    second = summary_for(DAY2)
    assert second["slots_expected"] == second["slots_observed"] == 48
    assert second["since_install"]["days"] == 2
    assert second["month"]["actual_cost_gbp"] == pytest.approx(
        second["actual_cost_gbp"] + summary_for(DAY1)["actual_cost_gbp"], abs=1e-3
    )
    last = bus.last(EXECUTOR_DAILY_SUMMARY)
    assert last is not None and json.loads(last.payload)["date"] == DAY2.isoformat()
    assert bus.retained[bus.topics.executor_daily_summary] == last.payload


def close_days_task(ctx: ServiceContext) -> Callable[[], None]:
    """The task ``wire`` scheduled with ``ctx.every``, as a call that runs it when due (now, then after its own
    interval), like the runner's loop on this clock."""
    interval, fn = ctx.periodic["close-days"]
    assert callable(interval)
    due: list[datetime] = []

    def run_if_due() -> None:
        if not due or ctx.clock.now() >= due[0]:
            fn()
            due[:] = [ctx.clock.now() + timedelta(seconds=interval())]

    return run_if_due
