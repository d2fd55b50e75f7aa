"""Valid bus documents built around a given instant: the seeds the fuzzers mutate and the "final valid message"
each fuzz target must still react to. Every builder's output validates against its model in ``shared.models``
(``test_fuzz_docs`` checks this, so a model change that breaks a seed shows up at once)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.models import (
    AppliedDecision,
    BatteryState,
    Command,
    CurrentRate,
    DailySummary,
    EnergyForecast,
    ExecutorAlert,
    Heartbeat,
    OverrideCommand,
    Plan,
    PlanNow,
    PriceEstimate,
    PricingAlert,
    PvToday,
    RateSeries,
    WatchdogReport,
)
from shared.slots import slot_start as floor_slot

SLOT = timedelta(minutes=30)


def z(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _starts(now: datetime, n: int, back: int = 0) -> list[datetime]:
    first = floor_slot(now) - back * SLOT
    return [first + i * SLOT for i in range(n)]


def price_at(i: int) -> float:
    """A plausible Agile-like day: cheap nights, dear 16:00-19:00, GBP/kWh."""
    return round(0.18 + 0.12 * math.sin(i / 48 * 2 * math.pi) + (0.15 if 32 <= i % 48 < 38 else 0.0), 4)


def rate_series(now: datetime, n: int = 72, direction: str = "import", base: float = 0.0) -> dict[str, Any]:
    starts = _starts(now, n)
    return {
        "schema_version": 1,
        "generated_at": z(now),
        "valid_until": z(starts[-1] + SLOT),
        "tariff_code": "E-1R-AGILE-24-10-01-J" if direction == "import" else "E-1R-AGILE-OUTGOING-19-05-13-J",
        "direction": direction,
        "unit": "GBP/kWh",
        "source": "octopus",
        "fetched_at": z(now),
        "rates": [
            {"start": z(s), "end": z(s + SLOT), "value_inc_vat": round(base + price_at(i), 4)}
            for i, s in enumerate(starts)
        ],
    }


def price_estimate(now: datetime, n: int = 96, paths: int = 3, after: int = 72) -> dict[str, Any]:
    """An estimate for the ``n`` slots after ``rate_series(now, after)``'s last one."""
    starts = _starts(now, after + n)[after:]
    med = [round(price_at(after + i), 4) for i in range(n)]
    return {
        "schema_version": 1,
        "generated_at": z(now),
        "valid_until": z(starts[-1] + SLOT),
        "is_estimate": True,
        "tariff_code": "E-1R-AGILE-24-10-01-J",
        "direction": "import",
        "unit": "GBP/kWh",
        "method": "analog-v1",
        "source": "learned",
        "learned_from": "fuzz seed",
        "published_until": z(starts[0]),
        "slots": [
            {
                "start": z(s),
                "end": z(s + SLOT),
                "median_gbp": m,
                "low_gbp": round(m - 0.05, 4),
                "high_gbp": round(m + 0.05, 4),
            }
            for s, m in zip(starts, med, strict=True)
        ],
        "scenarios_gbp": [[round(m + 0.02 * (k - 1), 4) for m in med] for k in range(paths)],
    }


def current_rate(now: datetime, value: float | None = 0.15) -> dict[str, Any]:
    start = floor_slot(now)
    return {
        "generated_at": z(now),
        "valid_until": z(start + SLOT),
        "tariff_code": "E-1R-AGILE-24-10-01-J",
        "slot_start": z(start),
        "slot_end": z(start + SLOT),
        "known": value is not None,
        "value_inc_vat": value,
    }


def energy_forecast(now: datetime, kind: str = "pv", n: int = 96) -> dict[str, Any]:
    starts = _starts(now, n)
    return {
        "generated_at": z(now),
        "valid_until": z(now + timedelta(hours=24)),
        "kind": kind,
        "source": "open-meteo" if kind == "pv" else "history",
        "model": "fuzz-seed",
        "slots": [
            {
                "start": z(s),
                "end": z(s + SLOT),
                "energy_kwh": round(max(0.0, math.sin((i % 48 - 12) / 24 * math.pi)) * 1.5, 3)
                if kind == "pv"
                else 0.35,
            }
            for i, s in enumerate(starts)
        ],
    }


def pv_today(now: datetime) -> dict[str, Any]:
    return {"generated_at": z(now), "date": now.date().isoformat(), "energy_kwh": 12.5}


def battery_state(now: datetime, soc: float = 55.0) -> dict[str, Any]:
    return {
        "generated_at": z(now),
        "valid_until": z(now + timedelta(minutes=5)),
        "observed_at": z(now),
        "soc_pct": soc,
        "capacity_kwh": 13.5,
        "battery_power_w": 0.0,
        "grid_power_w": 350.0,
        "solar_power_w": 0.0,
        "load_power_w": 350.0,
        "grid_status": "on_grid",
        "storm_mode_active": False,
        "config": {
            "operational_mode": "self_consumption",
            "backup_reserve_pct": 20,
            "grid_charging": False,
            "energy_exports": "battery_ok",
        },
        "source": "netzero",
    }


def plan_slot(start: datetime, action: str = "self_use", price: float | None = 0.2) -> dict[str, Any]:
    slot = {
        "start": z(start),
        "end": z(start + SLOT),
        "action": action,
        "reason": "self_use" if action == "self_use" else "cheapest_needed",
        "expected_soc_pct": 50.0,
        "value_inc_vat": price,
        "load_kwh": 0.35,
        "grid_import_kwh": 0.0,
        "cost_gbp": 0.0,
    }
    if action != "self_use":
        slot["target_soc_pct"] = 80.0
    return slot


def plan(now: datetime, n: int = 48, plan_id: str = "fuzz-plan", charge_first: bool = False) -> dict[str, Any]:
    starts = _starts(now, n)
    return {
        "generated_at": z(now),
        "valid_until": z(now + timedelta(hours=1)),
        "plan_id": plan_id,
        "status": "ok",
        "inputs": {"soc_pct": 50.0, "rates_generated_at": z(now)},
        "slots": [
            plan_slot(s, "charge" if charge_first and i == 0 else "self_use", price_at(i)) for i, s in enumerate(starts)
        ],
        "expected_cost_gbp": 1.23,
        "baseline_costs_gbp": {"no_battery": 2.5},
    }


def plan_now(now: datetime, plan_id: str = "fuzz-plan") -> dict[str, Any]:
    return {
        "generated_at": z(now),
        "valid_until": z(floor_slot(now) + SLOT),
        "plan_id": plan_id,
        "slot": plan_slot(floor_slot(now)),
        "next_charge_start": None,
    }


def heartbeat(now: datetime, seq: int = 1, forced: bool = False) -> dict[str, Any]:
    return {"generated_at": z(now), "seq": seq, "forced": forced, "lease_until": None}


def applied(now: datetime) -> dict[str, Any]:
    return {
        "generated_at": z(now),
        "decision_id": "fuzz-decision",
        "plan_id": "fuzz-plan",
        "slot_start": z(floor_slot(now)),
        "mode": "auto",
        "dry_run": True,
        "requested_action": "self_use",
        "action": "self_use",
        "rules": [{"rule": "peak_window", "verdict": "pass", "detail": ""}],
        "outcome": "dry_run",
        "soc_pct": 50.0,
    }


def watchdog_report(now: datetime) -> dict[str, Any]:
    return {"generated_at": z(now), "state": "watching", "last_heartbeat_at": z(now), "detail": ""}


def daily_summary(now: datetime) -> dict[str, Any]:
    return {
        "generated_at": z(now),
        "date": (now - timedelta(days=1)).date().isoformat(),
        "actual_cost_gbp": 1.5,
        "planned_cost_gbp": 1.4,
        "grid_import_kwh": 8.0,
        "slots_observed": 48,
    }


def pricing_alert(now: datetime) -> dict[str, Any]:
    return {"generated_at": z(now), "code": "ok", "message": "prices current", "since": z(now)}


def executor_alert(now: datetime) -> dict[str, Any]:
    return {
        "generated_at": z(now),
        "code": "baseline_unrestorable",
        "message": "your own backup reserve of 95% cannot be restored through NetZero",
        "since": z(now),
    }


def command(request_id: str = "fuzz-0001", reason: str | None = None) -> dict[str, Any]:
    return {"request_id": request_id, "reason": reason}


def override(now: datetime, request_id: str = "fuzz-0001", action: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"request_id": request_id, "action": action}
    if action is not None:
        doc["until"] = z(now + timedelta(minutes=30))
        doc["target_soc_pct"] = 80.0
    return doc


# The JSON kinds the fuzzers know, with their seed builder and model.
KINDS: dict[str, tuple[Any, Any]] = {
    "rates": (rate_series, RateSeries),
    "export_rates": (lambda now: rate_series(now, direction="export", base=-0.1), RateSeries),
    "current": (current_rate, CurrentRate),
    "estimate": (price_estimate, PriceEstimate),
    "pv": (lambda now: energy_forecast(now, "pv"), EnergyForecast),
    "load": (lambda now: energy_forecast(now, "load"), EnergyForecast),
    "pv_today": (pv_today, PvToday),
    "battery": (battery_state, BatteryState),
    "plan": (plan, Plan),
    "plan_now": (plan_now, PlanNow),
    "heartbeat": (heartbeat, Heartbeat),
    "applied": (applied, AppliedDecision),
    "watchdog": (watchdog_report, WatchdogReport),
    "daily": (daily_summary, DailySummary),
    "alert": (pricing_alert, PricingAlert),
    "executor_alert": (executor_alert, ExecutorAlert),
    "command": (lambda now: command(), Command),
    "override": (lambda now: override(now, action="charge"), OverrideCommand),
}

# Plain-text topics and what a valid value looks like.
TEXT_VALUES: dict[str, list[str]] = {
    "status": ["online", "offline"],
    "mode": ["auto", "force_charge", "hold", "off"],
    "bool": ["true", "false", "ON", "OFF"],
    "min_soc_pct": ["10", "0", "100", "12.5"],
    "max_charge_price_gbp": ["0.2", "-1", "2", "0.15"],
    "target_soc_cap_pct": ["100", "80", "0"],
    "peak_start_local": ["16:00", "00:00", "23:59"],
    "peak_end_local": ["19:00", "00:00", "23:59"],
}
