"""Each rule is defined once and every service asks the same definition: the peak window (and the one a plan was
made with), the price now, the true/false words, the reserve Tesla would coerce, the grid-unsafe test, and one
planning entry point for a single home and a fleet home."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from services.executor import rules
from services.executor.decide import DecisionInputs, decide
from services.executor.netzero import config_body
from services.fleet.__main__ import wire as wire_fleet
from services.fleet.config import FleetSettings
from services.planner.config import PlannerServiceSettings
from services.planner.service import PlannerService
from shared.clock import FixedClock
from shared.logging import get_logger
from shared.models import Action, ExecutorMode, GridStatus, Plan, PlannerSettings, PowerwallConfig
from shared.peak import PeakWindow
from shared.plain import parse_bool
from shared.prices import price_now
from shared.runner import ServiceContext
from shared.slots import LONDON, local_day_slots
from shared.topics import BATTERY_STATE, FORECAST_LOAD, IMPORT_RATES, PLANNER_SETTING, Topics
from tests.executor.support import current_rate, make_plan, make_rates
from tests.planner.helpers import HALF, battery, forecast, rates, utc
from tests.support.memory_bus import MemoryBus

WINTER_1630 = datetime(2024, 1, 15, 16, 30, tzinfo=UTC)
BASELINE = PowerwallConfig(operational_mode="self_consumption", backup_reserve_pct=20, grid_charging=False)


# ------------------------------------------------------------------------------------------- peak window


def test_the_peak_window_is_local_and_its_slots_are_those_it_overlaps() -> None:
    peak = PeakWindow.parse("16:15", "19:15", LONDON)
    summer = datetime(2024, 7, 15, 15, 20, tzinfo=UTC)  # 16:20 BST
    assert peak.contains(summer) and not peak.contains(summer - timedelta(minutes=10))
    assert peak.contains(summer - timedelta(minutes=10), lead=timedelta(minutes=5))
    day = local_day_slots(datetime(2024, 1, 15).date())
    inside = [s for s, m in zip(day, peak.mask(day), strict=True) if m]
    assert inside[0] == datetime(2024, 1, 15, 16, tzinfo=UTC) and inside[-1] == datetime(2024, 1, 15, 19, tzinfo=UTC)
    assert peak.next_start(summer) == datetime(2024, 7, 16, 15, 15, tzinfo=UTC)
    with pytest.raises(ValueError):
        PeakWindow.parse("16:00", "late")


def test_the_plan_records_the_peak_window_and_price_limit_it_was_made_with() -> None:
    from services.planner.optimiser import plan

    now = utc(2024, 1, 15, 12, 0)
    settings = PlannerSettings(peak_start_local="17:00", peak_end_local="20:00", max_charge_price_gbp=0.12)
    made = plan(rates(now, [0.10] * 24), None, None, battery(now, 30), settings, now)
    degraded = plan(None, None, None, None, settings, now)
    for p in (made, degraded):
        assert (p.peak_start_local, p.peak_end_local, p.max_charge_price_gbp) == ("17:00", "20:00", 0.12)
    assert not [
        s for s in made.slots if s.action == Action.CHARGE and PeakWindow(time(17), time(20)).overlaps_slot(s.start)
    ]


def _decision(plan_window: tuple[str, str] | None, plan_limit: float | None, price: float) -> object:
    now = WINTER_1630 - timedelta(minutes=45)  # 15:45: outside our 16:00–19:00 (and its 5-minute lead)
    slot = now.replace(minute=30)
    p = make_plan(now, slot, 4, charge=[slot])
    if plan_window:
        p = p.model_copy(update={"peak_start_local": plan_window[0], "peak_end_local": plan_window[1]})
    if plan_limit is not None:
        p = p.model_copy(update={"max_charge_price_gbp": plan_limit})
    return decide(
        DecisionInputs(
            now=now,
            mode=ExecutorMode.AUTO,
            baseline=BASELINE,
            plan=p,
            current_rate=current_rate(now, slot, price),
            battery=battery(now, 40).model_copy(update={"grid_status": GridStatus.ON_GRID}),
        ),
        rules.RuleConfig(tz=LONDON),
    )


def test_the_executor_also_refuses_a_charge_in_the_window_and_above_the_limit_the_plan_was_made_with() -> None:
    assert _decision(None, None, 0.10).action == Action.CHARGE
    moved = _decision(("15:00", "18:00"), None, 0.10)  # the planner's setting: earlier than the executor's
    assert moved.action == Action.SELF_USE
    assert [o.detail for o in moved.rules if o.rule == "peak_window"] == [
        "no grid charging 15:00–18:00 local (the plan's peak window)"
    ]
    cheaper = _decision(None, 0.08, 0.10)
    assert cheaper.action == Action.SELF_USE
    assert "above limit 8.00p/kWh" in next(o.detail for o in cheaper.rules if o.rule == "price_limit")


# ------------------------------------------------------------------------------------------- the rest


def test_price_now_prefers_a_valid_current_rate_and_never_reads_a_gap_as_zero() -> None:
    now = utc(2024, 1, 15, 10, 10)
    slot = utc(2024, 1, 15, 10, 0)
    series = make_rates(now, slot, 2, lambda s: 0.2)
    assert price_now(now, current_rate(now, slot, 0.3), series) == 0.3
    assert price_now(now, None, series) == 0.2
    assert price_now(now, current_rate(now, slot - HALF, 0.3), series) == 0.2  # another slot's message
    assert price_now(now + timedelta(hours=3), None, series) is None  # expired
    assert price_now(now, None, make_rates(now, slot + HALF, 2, lambda s: 0.2)) is None  # a gap


def test_the_boolean_words() -> None:
    assert [parse_bool(w) for w in ("true", " ON", "1", "Yes", "false", "off", "0", "NO")] == [True] * 4 + [False] * 4
    with pytest.raises(ValueError, match="expected true or false"):
        parse_bool("maybe")


@pytest.mark.parametrize("reserve", [81, 90, 99])
def test_a_reserve_tesla_would_coerce_is_changed_by_the_rules_and_refused_by_the_client(reserve: int) -> None:
    change = PowerwallConfig(backup_reserve_pct=reserve)
    fixed, outcome = rules.reserve_bounds(change)
    assert fixed is not None and fixed.backup_reserve_pct == 80 and outcome.verdict == "changed"
    with pytest.raises(ValueError, match="coerced to 80%"):
        config_body(change)
    assert rules.reserve_bounds(PowerwallConfig(backup_reserve_pct=80))[0].backup_reserve_pct == 80


def test_grid_unsafe_names_why() -> None:
    now = utc(2024, 1, 15, 10, 0)
    on = battery(now, 50).model_copy(update={"grid_status": GridStatus.ON_GRID})
    assert rules.grid_unsafe(on) is None
    assert rules.grid_unsafe(on.model_copy(update={"grid_status": GridStatus.OFF_GRID})) == "grid down or islanded"
    assert rules.grid_unsafe(on.model_copy(update={"storm_mode_active": True})) == "storm watch active"


# ------------------------------------------------------------------------------------------- one entry point


def test_a_fleet_home_is_planned_like_a_single_home_price_history_included(tmp_path: Path) -> None:
    """Yesterday's prices feed the value of energy left at the horizon's end: a fleet home remembers them too."""
    now = utc(2024, 1, 15, 12, 0)
    clock = FixedClock(now - timedelta(days=1))
    yesterday = rates(now - timedelta(days=1), [0.30 if 32 <= k < 38 else 0.12 for k in range(48)])
    today = rates(now, [0.30 if 8 <= k < 14 else 0.12 for k in range(24)], generated_at=now)
    inputs = [(BATTERY_STATE, battery(now, 35)), (FORECAST_LOAD, forecast("load", now, [0.5] * 96))]

    single_bus = MemoryBus(PlannerServiceSettings(_secrets_dir=None, data_dir=tmp_path / "single"), "planner")
    single = PlannerService(ServiceContext("planner", single_bus.settings, clock, single_bus, get_logger("t")))
    single.on_rates(yesterday)
    clock.set(now)
    for channel, value in inputs:
        (single.on_battery if channel is BATTERY_STATE else single.on_load)(value)
    single.on_rates(today)
    expected = single.replan("test")

    site = Topics("batsched/site-0001")
    fleet_settings = FleetSettings(_secrets_dir=None, data_dir=tmp_path / "fleet", fleet_root="batsched")
    fleet_bus = MemoryBus(fleet_settings, "fleet-planner-1")
    clock.set(now - timedelta(days=1))
    wire_fleet(ServiceContext("fleet", fleet_settings, clock, fleet_bus, get_logger("t")))
    fleet_bus.start()
    fleet_bus.fire(site.of(IMPORT_RATES), yesterday, retain=True)
    clock.set(now)
    for channel, value in inputs:
        fleet_bus.fire(site.of(channel), value, retain=True)
    fleet_bus.fire(site.of(PLANNER_SETTING, setting="min_soc_pct"), "10.0", retain=True)
    fleet_bus.fire(site.of(IMPORT_RATES), today, retain=True)
    got = fleet_bus.last(site.plan)
    assert got is not None
    fleet_plan = Plan.model_validate_json(got.payload)
    assert "no price history" not in (fleet_plan.reason or "")
    assert fleet_plan.end_value_gbp == expected.end_value_gbp
    assert fleet_plan.expected_cost_gbp == expected.expected_cost_gbp
    assert [s.action for s in fleet_plan.slots] == [s.action for s in expected.slots]
