"""The accounting job on a fast simulated clock: a summary after each local midnight, its cost recomputable."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from shared.clock import SimClock
from shared.models import BatteryState, Plan, PlanSlot, Rate, RateSeries
from shared.slots import SLOT, iter_slots, local_midnight, slot_start
from sim.datasets import agile_prices
from tests.support.probe import Probe

PREFIX = "batsched"
START = datetime(2023, 6, 12, 13, 0, tzinfo=UTC)  # the simulated clock starts here (time for the job to start)
FIRST = datetime(2023, 6, 12, 21, 0, tzinfo=UTC)  # 22:00 BST: the first sample, two slots before local midnight
DAY1, DAY2 = date(2023, 6, 12), date(2023, 6, 13)
END = local_midnight(date(2023, 6, 14))  # the second local midnight
SPEED = 12_000.0  # 3⅓ hours a second
SETTLE_S = 1200
LEAD = timedelta(minutes=30)  # each sample is sent this much before its time: a busy test machine may lag
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


@pytest.mark.timeout(90)
def test_daily_summary_after_each_local_midnight_equals_observed_import_times_price(spawn, probe: Probe) -> None:
    rs = rates()
    probe.publish(f"{PREFIX}/pricing/import/rates", rs.model_dump_json(), retain=True)
    probe.publish(f"{PREFIX}/planner/plan", plan().model_dump_json(), retain=True)
    origin = time.time() + 1.0  # the simulated clock starts 1 s from now, on both sides
    clock = SimClock(START, SPEED, origin)
    spawn(
        "services.accounting",
        env={
            "BATSCHED_CLOCK": "sim",
            "BATSCHED_SIM_START": START.isoformat(),
            "BATSCHED_SIM_SPEED": str(SPEED),
            "BATSCHED_SIM_ORIGIN": repr(origin),
            "BATSCHED_ACCOUNTING_SETTLE_S": str(SETTLE_S),
        },
        name="accounting",
    )
    probe.wait_for(f"{PREFIX}/accounting/status", lambda m: m.text == "online", timeout=15)
    assert clock.now() < FIRST - LEAD, "the job took longer to start than the simulated evening before the samples"

    # Publish battery/state every 5 simulated minutes as the executor would (a little ahead of time, so that a slow
    # test process cannot miss a midnight: the job files samples by their observed_at, not by arrival).
    published: list[tuple[datetime, float]] = []
    never = threading.Event()
    t, i = FIRST, 0
    while t < END:
        clock.wait((t - LEAD - clock.now()).total_seconds(), never)
        state = BatteryState(
            generated_at=t, valid_until=t + timedelta(minutes=5), observed_at=t, soc_pct=50.0, grid_power_w=grid_w(i)
        )
        probe.publish(f"{PREFIX}/battery/state", state.model_dump_json())
        published.append((t, grid_w(i)))
        t, i = t + STEP, i + 1

    price = {r.start: r.value_inc_vat for r in rs.rates}
    topic = f"{PREFIX}/executor/daily_summary"
    for day in (DAY1, DAY2):
        summary = probe.wait_json(topic, lambda d, day=day: d["date"] == day.isoformat(), timeout=20)
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
    second = probe.wait_json(topic, lambda d: d["date"] == DAY2.isoformat())
    assert second["slots_expected"] == second["slots_observed"] == 48
    assert second["since_install"]["days"] == 2
    assert second["month"]["actual_cost_gbp"] == pytest.approx(
        second["actual_cost_gbp"] + probe.wait_json(topic, lambda d: d["date"] == DAY1.isoformat())["actual_cost_gbp"],
        abs=1e-3,
    )
    last = probe.latest(topic)
    assert last is not None and last.json()["date"] == DAY2.isoformat()
