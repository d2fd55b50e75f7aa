"""Builders and helpers shared by the executor tests: plans, prices, the simulator over HTTP, a fast sim clock."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.clock import SimClock
from shared.models import (
    Action,
    CurrentRate,
    Plan,
    PlanSlot,
    Rate,
    RateSeries,
    Reason,
)
from shared.slots import SLOT, in_local_window, iter_slots, parse_hhmm
from sim.netzero import NetZeroSim, serve

TOKEN = "test-token"
SITE = "987654321"
BASELINE = {"operational_mode": "self_consumption", "backup_reserve_percent": 20, "grid_charging": False}
PEAK = (parse_hhmm("16:00"), parse_hhmm("19:00"))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_plan(
    generated_at: datetime,
    start: datetime,
    hours: float,
    charge: Iterable[datetime] = (),
    hold: Iterable[datetime] = (),
    valid_until: datetime | None = None,
    target: float = 100.0,
    plan_id: str = "plan-1",
) -> Plan:
    charge, hold = set(charge), set(hold)
    slots = []
    for s in iter_slots(start, start + timedelta(hours=hours)):
        action = Action.CHARGE if s in charge else Action.HOLD if s in hold else Action.SELF_USE
        reason = Reason.CHEAPEST_NEEDED if action == Action.CHARGE else Reason.SELF_USE
        slots.append(
            PlanSlot(
                start=s,
                end=s + SLOT,
                action=action,
                reason=reason,
                target_soc_pct=target if action != Action.SELF_USE else None,
                expected_soc_pct=50.0,
            )
        )
    return Plan(
        generated_at=generated_at,
        valid_until=valid_until or start + timedelta(hours=hours),
        plan_id=plan_id,
        slots=slots,
    )


def make_rates(generated_at: datetime, start: datetime, hours: float, price: Callable[[datetime], float]) -> RateSeries:
    end = start + timedelta(hours=hours)
    rates = [Rate(start=s, end=s + SLOT, value_inc_vat=price(s)) for s in iter_slots(start, end)]
    return RateSeries(generated_at=generated_at, valid_until=end, tariff_code="E-1R-AGILE-TEST-J", rates=rates)


def current_rate(now: datetime, slot: datetime, value: float | None) -> CurrentRate:
    return CurrentRate(
        generated_at=now,
        valid_until=slot + SLOT,
        tariff_code="E-1R-AGILE-TEST-J",
        slot_start=slot,
        slot_end=slot + SLOT,
        known=value is not None,
        value_inc_vat=value,
    )


def in_peak(t: datetime, tz: Any) -> bool:
    return in_local_window(t, PEAK[0], PEAK[1], tz)


class SimServer:
    """The NetZero simulator on a local port, inspected over HTTP like a test would a real fake server."""

    def __init__(self, sim: NetZeroSim) -> None:
        self.sim = sim
        self.server = serve(sim)
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/api/v1"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as resp:
            return json.loads(resp.read())

    def control(self, **doc: Any) -> Any:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/_control",
            data=json.dumps(doc).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def log(self) -> dict[str, Any]:
        return self.get("/_log")

    def state(self) -> dict[str, Any]:
        return self.get("/_state")

    def stop(self) -> None:
        self.server.shutdown()

    def env(self) -> dict[str, str]:
        return {
            "BATSCHED_NETZERO_BASE_URL": self.base_url,
            "BATSCHED_NETZERO_API_KEY": TOKEN,
            "BATSCHED_NETZERO_SITE_ID": SITE,
        }


def sim_clock_env(start: datetime, speed: float) -> tuple[SimClock, dict[str, str]]:
    """A fast clock shared by the test process and the services it starts."""
    origin = time.time()
    clock = SimClock(start, speed, origin)
    env = {
        "BATSCHED_CLOCK": "sim",
        "BATSCHED_SIM_START": start.isoformat(),
        "BATSCHED_SIM_SPEED": repr(speed),
        "BATSCHED_SIM_ORIGIN": repr(origin),
    }
    return clock, env


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, poll: float = 0.05) -> Any:
    """Poll an external condition (the simulator's HTTP state) with a deadline; raises with ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(poll)


def wait_sim_time(clock: SimClock, t: datetime, timeout: float = 60.0) -> None:
    wait_until(lambda: clock.now() >= t, timeout, f"simulated time {t.isoformat()}", poll=0.02)


def grid_charge_in_peak(samples: list[dict[str, Any]], tz: Any) -> list[dict[str, Any]]:
    return [s for s in samples if s["grid_charge_w"] > 0 and in_peak(datetime.fromisoformat(s["t"]), tz)]


def reserves_81_99(requests: list[dict[str, Any]]) -> list[Any]:
    return [r for r in requests if r.get("reserve_sent") is not None and 81 <= r["reserve_sent"] <= 99]
