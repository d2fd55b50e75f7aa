"""The accounting job in-process on a fixed clock the test moves: a 46-slot spring-forward day, bad payloads,
a restart that puts the summary back after the broker lost it."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from services.accounting.__main__ import wire
from services.accounting.config import AccountingSettings
from services.accounting.store import AccountingStore
from shared.bus import Bus
from shared.clock import FixedClock
from shared.logging import get_logger
from shared.models import BatteryState, Rate, RateSeries
from shared.runner import ServiceContext
from shared.slots import SLOT, local_day_bounds, local_day_slots
from tests.support.broker import Broker
from tests.support.probe import Probe

PREFIX = "batsched"
DAY = date(2024, 3, 31)  # clocks go forward: 46 half-hours
SUMMARY = f"{PREFIX}/executor/daily_summary"


def start_job(broker: Broker, data: Path, clock: FixedClock) -> ServiceContext:
    settings = AccountingSettings(mqtt_host="127.0.0.1", mqtt_port=broker.port, data_dir=data, accounting_settle_s=60)
    ctx = ServiceContext("accounting", settings, clock, Bus(settings, "accounting"), get_logger("test.accounting"))
    wire(ctx)
    ctx.bus.start()
    assert ctx.bus.wait_connected(10)
    ctx.start_tasks()
    return ctx


def wait_samples(data: Path, start: datetime, end: datetime, n: int, timeout: float = 10.0) -> None:
    """The job has stored ``n`` samples (it acknowledges nothing on the bus, so look in its own history)."""
    store = AccountingStore(data / "accounting.db")
    deadline = time.monotonic() + timeout
    try:
        while len(store.samples(start, end)) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the job stored {len(store.samples(start, end))} of {n} samples")
            time.sleep(0.02)
    finally:
        store.close()


def test_spring_forward_day_restart_and_bad_payloads(broker: Broker, probe: Probe, tmp_path: Path) -> None:
    lo, hi = local_day_bounds(DAY)
    slots = local_day_slots(DAY)
    clock = FixedClock(lo - timedelta(minutes=30))
    ctx = start_job(broker, tmp_path, clock)
    prices = {s: round(0.05 + 0.004 * k, 4) for k, s in enumerate(slots)}
    rates = RateSeries(
        generated_at=lo,
        valid_until=hi,
        tariff_code="E-1R-AGILE-24-10-01-J",
        rates=[Rate(start=s, end=s + SLOT, value_inc_vat=p) for s, p in prices.items()],
    )
    probe.publish(f"{PREFIX}/pricing/import/rates", rates.model_dump_json(), retain=True)
    probe.publish(f"{PREFIX}/battery/state", "this is not json")  # logged and dropped
    probe.publish(f"{PREFIX}/battery/state", {"soc_pct": 400})  # invalid: dropped
    t, n = lo, 0
    while t < hi:
        state = BatteryState(
            generated_at=t, valid_until=t + timedelta(minutes=5), observed_at=t, soc_pct=60, grid_power_w=1500.0
        )
        probe.publish(f"{PREFIX}/battery/state", state.model_dump_json(), wait=False)
        t, n = t + timedelta(minutes=5), n + 1
    wait_samples(tmp_path, lo, hi, n)

    mark = probe.mark()
    clock.set(hi + timedelta(seconds=61))  # local midnight plus the settling minute
    doc = probe.wait_json(SUMMARY, lambda d: d["date"] == DAY.isoformat(), timeout=10, after=mark)
    made = datetime.fromisoformat(doc["generated_at"].replace("Z", "+00:00"))
    assert made >= hi + timedelta(seconds=60)  # it waited for late messages before closing the day
    assert doc["slots_expected"] == doc["slots_observed"] == 46
    assert doc["actual_cost_gbp"] == pytest.approx(sum(0.75 * p for p in prices.values()), abs=1e-3)
    assert doc["grid_import_kwh"] == pytest.approx(46 * 0.75)
    assert doc["since_install"]["days"] == 1
    assert len([m for m in probe.on(SUMMARY) if m.payload]) == 1
    ctx.shutdown()

    # The broker forgets the retained summary; a restarted job puts it back from its own history.
    probe.publish(SUMMARY, "", retain=True)
    mark = probe.mark()
    ctx = start_job(broker, tmp_path, clock)
    try:
        again = probe.wait_json(SUMMARY, lambda d: d["date"] == DAY.isoformat(), timeout=10, after=mark)
        assert again["actual_cost_gbp"] == doc["actual_cost_gbp"]
        fresh = Probe(broker.port).start()
        try:
            assert fresh.wait_json(SUMMARY, timeout=10)["date"] == DAY.isoformat()  # retained again
        finally:
            fresh.stop()
    finally:
        ctx.shutdown()
