"""A household's morning on the bus, as the other services would publish it, for the browser tests.

The clock is the system's (a simulated clock at ``NOW``, 02:10 British Summer Time on Mon 15 Jul 2024), never the
browser's: the browser runs in New York's time zone with a US locale, so any time taken from the browser shows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.models import (
    SLOT,
    Action,
    AppliedDecision,
    EstimateSlot,
    ExecutorMode,
    Heartbeat,
    ManualWindow,
    MoneyPeriod,
    MoneySummary,
    OverrideState,
    Plan,
    PlanNow,
    PowerwallConfig,
    PriceEstimate,
    RuleOutcome,
    StrategyOutcome,
    WindowList,
)
from shared.topics import Topics
from tests.dashboard import helpers
from tests.dashboard.helpers import decision as _decision

NOW = datetime(2024, 7, 15, 1, 10, tzinfo=UTC)  # 02:10 in London (BST)
DAYS = ("2024-07-14", "2024-07-15")  # the local days the decisions fall on
SERVICES = ("pricing", "forecast", "planner", "executor", "watchdog", "accounting", "dashboard")
T = Topics()


def estimate(now: datetime, published_until: datetime, hours: int = 24) -> PriceEstimate:
    slots = []
    for i in range(hours * 2):
        start = published_until + i * SLOT
        median = 0.12 + 0.1 * ((start.hour + 6) % 24) / 24
        slots.append(EstimateSlot(start=start, end=start + SLOT, median_gbp=median, low_gbp=median - 0.03,
                                  high_gbp=median + 0.05))  # fmt: skip
    return PriceEstimate(
        generated_at=now,
        valid_until=now + timedelta(hours=12),
        tariff_code="E-1R-AGILE-24-10-01-J",
        method="analog-v1",
        learned_from="test history",
        published_until=published_until,
        slots=slots,
        scenarios_gbp=[[s.median_gbp for s in slots]],
    )


def money(now: datetime) -> MoneySummary:
    """The accounting service's money: three closed days (one a real loss against self-use), today so far."""

    def day(d: date, paid: float, stored: float, no_batt: float, self_use: float, partial: bool = False) -> MoneyPeriod:
        comparable = paid - stored
        return MoneyPeriod(period="day", label=d.isoformat(), first_date=d, last_date=d, days=1, days_compared=1,
                           partial=partial, actual_cost_gbp=paid, stored_change_value_gbp=stored,
                           actual_comparable_cost_gbp=comparable, no_battery_cost_gbp=no_batt,
                           self_use_cost_gbp=self_use, self_use_comparable_cost_gbp=self_use,
                           saved_vs_no_battery_gbp=no_batt - comparable, saved_vs_self_use_gbp=self_use - comparable,
                           grid_import_kwh=12.0, grid_export_kwh=0.5)  # fmt: skip

    today = now.date()
    days = [day(today - timedelta(days=i), 1.2 + 0.1 * i, 0.3, 2.6, 1.9) for i in (3, 2)]
    days.append(day(today - timedelta(days=1), 1.5, -0.2, 2.75, 1.6))  # batsched did worse than self-use here
    month = MoneyPeriod(period="month", label=today.strftime("%Y-%m"), first_date=today.replace(day=1),
                        last_date=today, days=14, days_compared=14, actual_cost_gbp=20.1,
                        stored_change_value_gbp=0.4, actual_comparable_cost_gbp=19.7, no_battery_cost_gbp=31.0,
                        self_use_cost_gbp=24.0, self_use_comparable_cost_gbp=23.5, saved_vs_no_battery_gbp=11.3,
                        saved_vs_self_use_gbp=3.8)  # fmt: skip
    since = month.model_copy(update={"period": "since_install", "label": "since install"})
    return MoneySummary(generated_at=now, today=day(today, 0.42, 0.9, 1.1, 0.8, partial=True), days=days,
                        months=[month], since_install=since,
                        stored_value_note="stored energy valued at the plan's own value per kWh")  # fmt: skip


def comparison(plan: Plan) -> Plan:
    """The planner's fair comparison: each strategy's end energy valued alike."""

    def outcome(cost: float, soc: float, end_value: float, change: float, saving: float) -> StrategyOutcome:
        return StrategyOutcome(cost_gbp=cost, end_soc_pct=soc, end_value_gbp=end_value,
                               stored_change_value_gbp=change, comparable_cost_gbp=cost - change,
                               saving_gbp=saving)  # fmt: skip

    return plan.model_copy(update={
        "end_soc_pct": 48.0, "end_value_method": "estimate", "comparable_cost_gbp": 1.31 - 0.62,
        "comparison": {
            "plan": outcome(1.31, 48, 1.10, 0.62, 0.0),
            "no_battery": outcome(1.30, 42, 0.48, 0.0, 1.30 - 0.69),
            "self_use": outcome(0.57, 10, 0.0, -0.48, 1.05 - 0.69),
            "seed_rule": outcome(0.31, 12, 0.05, -0.43, 0.74 - 0.69),
        },
        "comparison_note": "the energy left at the end is valued at the plan's own price for stored energy",
    })  # fmt: skip


def battery(now: datetime, soc: float) -> Any:
    # Charging from the grid: battery power negative (charging), grid positive (importing).
    return helpers.battery(now, soc).model_copy(update={"battery_power_w": -3300.0, "grid_power_w": 3850.0})


def decisions(now: datetime) -> list[AppliedDecision]:
    """Yesterday evening and this night: self-use, then a charge applied and re-affirmed, one read back wrong."""
    out = []
    start = now - timedelta(hours=6)
    cfg = PowerwallConfig(operational_mode="backup", backup_reserve_pct=80, grid_charging=True)
    for i in range(int((now - start) / timedelta(minutes=5))):
        t = start + i * timedelta(minutes=5)
        charging = t.hour >= 1
        d = _decision(t, f"w-{i}").model_copy(
            update={
                "requested_action": Action.CHARGE if charging else Action.SELF_USE,
                "action": Action.CHARGE if charging else Action.SELF_USE,
                "outcome": ("applied" if t.minute == 0 else "unchanged") if charging else "unchanged",
                "observed": cfg if charging else None,
                "sent": cfg if charging and t.minute == 0 else None,
                "desired": cfg if charging else None,
            }
        )
        out.append(d)
    sent = "{'operational_mode': 'backup', 'grid_charging': True}"  # as the executor words it (a Python dict)
    limit = RuleOutcome(rule="price_limit", verdict="blocked", detail="price 31.20p/kWh above limit 20.00p/kWh")
    wrong = _decision(start - timedelta(minutes=30), "w-mismatch").model_copy(
        update={
            "error": f"read-back differs from what was sent (sent {sent})",
            "rules": [limit],
            "action": Action.SELF_USE,
        }
    )
    return [wrong, *out]


def publish(probe: Any, now: datetime = NOW) -> dict[str, Any]:
    """Every retained message the pages read; returns facts the tests check against."""
    rates = helpers.rates(now, hours=30)
    plan = comparison(helpers.plan(now, hours=30, charge_hours=(1, 2, 3)))  # UTC: 02:00–05:00 in London
    current = plan.slot_at(now)
    probe.publish(T.import_rates, rates.model_dump_json(), retain=True)
    probe.publish(T.import_estimate, estimate(now, rates.rates[-1].end).model_dump_json(), retain=True)
    probe.publish(T.forecast_pv, helpers.forecast(now, "pv").model_dump_json(), retain=True)
    probe.publish(T.forecast_load, helpers.forecast(now, "load").model_dump_json(), retain=True)
    probe.publish(T.battery_state, battery(now, 42.0).model_dump_json(), retain=True)
    probe.publish(T.plan, plan.model_dump_json(), retain=True)
    now_doc = PlanNow(generated_at=now, valid_until=now + timedelta(hours=2), plan_id=plan.plan_id, slot=current)
    probe.publish(T.plan_current, now_doc.model_dump_json(), retain=True)
    probe.publish(T.executor_mode, "auto", retain=True)
    probe.publish(T.executor_dry_run, "false", retain=True)
    probe.publish(T.executor_override_state, OverrideState(generated_at=now).model_dump_json(), retain=True)
    beat = Heartbeat(generated_at=now, seq=1, forced=True, lease_until=now + timedelta(minutes=30))
    probe.publish(T.executor_heartbeat, beat.model_dump_json(), retain=True)
    for name, value in (("min_soc_pct", "10.0"), ("max_charge_price_gbp", "0.2"), ("target_soc_cap_pct", "100.0"),
                        ("peak_start_local", "16:00"), ("peak_end_local", "19:00")):  # fmt: skip
        probe.publish(T.planner_setting(name), value, retain=True)
    window = ManualWindow(window_id=1, start=now + timedelta(hours=11), end=now + timedelta(hours=12),
                          action="charge", target_soc_pct=80, source="dashboard")  # fmt: skip
    probe.publish(T.executor_windows, WindowList(generated_at=now, windows=[window]).model_dump_json(), retain=True)
    summary = {
        "generated_at": now.isoformat(),
        "date": (now - timedelta(days=1)).date().isoformat(),
        "actual_cost_gbp": 1.5,
        "no_battery_cost_gbp": 2.75,
        "month": {"actual_cost_gbp": 20.1, "days": 14, "saved_vs_no_battery_gbp": 9.3},
        "since_install": {"actual_cost_gbp": 400.0, "days": 300, "saved_vs_no_battery_gbp": 151.2},
    }
    probe.publish(T.executor_daily_summary, summary, retain=True)
    probe.publish(T.accounting_money, money(now).model_dump_json(), retain=True)
    for svc in SERVICES:
        probe.publish(T.status(svc), "online", retain=True)
    return {"plan": plan, "window": window, "mode": ExecutorMode.AUTO}
