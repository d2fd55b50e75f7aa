"""Each safety rule on its own, then the translation, then the decision chain (pure functions, no I/O)."""

from __future__ import annotations

from datetime import time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.executor import rules
from services.executor.decide import DecisionInputs, Override, decide, write_outcome
from services.executor.rules import Proposal, RuleConfig
from services.executor.translate import (
    desired_config,
    diff,
    is_forced,
    restore_config,
    safe_reserve,
    user_baseline,
)
from shared.models import Action, BatteryState, ExecutorMode, GridStatus, PowerwallConfig
from shared.peak import PeakWindow
from tests.executor.support import current_rate, make_plan, make_rates, utc

TZ = ZoneInfo("Europe/London")
CFG = RuleConfig(tz=TZ)
BASE = PowerwallConfig(operational_mode="self_consumption", backup_reserve_pct=20, grid_charging=False)
CHARGE = Proposal(Action.CHARGE, 100.0)


def battery(now, soc=50.0, grid=GridStatus.ON_GRID, storm=False, age_s=0, config=BASE) -> BatteryState:
    seen = now - timedelta(seconds=age_s)
    return BatteryState(
        generated_at=seen,
        valid_until=seen + timedelta(minutes=5),
        observed_at=seen,
        soc_pct=soc,
        grid_status=grid,
        storm_mode_active=storm,
        config=config,
    )


# ------------------------------------------------------------------------------------------- rule 1: peak


@pytest.mark.parametrize(
    ("now", "blocked"),
    [
        (utc(2024, 1, 15, 15, 54), False),  # winter: peak is 16:00–19:00 UTC; 6 min before is fine
        (utc(2024, 1, 15, 15, 56), True),  # inside the 5-minute lead
        (utc(2024, 1, 15, 18, 59), True),
        (utc(2024, 1, 15, 19, 0), False),
        (utc(2024, 6, 15, 15, 30), True),  # summer: peak is 15:00–18:00 UTC
        (utc(2024, 6, 15, 18, 0), False),
        (utc(2024, 3, 31, 15, 0), True),  # spring-forward day: 16:00 BST
        (utc(2024, 10, 27, 16, 30), True),  # fall-back day: 16:30 GMT
        (utc(2024, 10, 27, 15, 30), False),
    ],
)
def test_peak_window_blocks_grid_charging_in_local_time(now, blocked: bool) -> None:
    p, out = rules.peak_window(CHARGE, now, CFG)
    assert out.rule == "peak_window"
    assert (p.action == Action.SELF_USE) is blocked
    assert out.verdict == ("blocked" if blocked else "pass")


def test_the_planners_peak_window_is_kept_out_too() -> None:
    now = utc(2024, 1, 15, 14, 30)  # outside 16:00–19:00
    assert rules.peak_window(CHARGE, now, CFG)[0] == CHARGE
    p, out = rules.peak_window(CHARGE, now, CFG, planner=PeakWindow(time(14), time(15), CFG.tz))
    assert p.action == Action.SELF_USE and "14:00–15:00" in out.detail
    assert rules.next_peak_start(utc(2024, 1, 15, 13), CFG, planner=PeakWindow(time(14), time(15), CFG.tz)) == utc(
        2024, 1, 15, 14
    )


def test_peak_window_leaves_other_actions_alone() -> None:
    p, out = rules.peak_window(Proposal(Action.HOLD), utc(2024, 1, 15, 17), CFG)
    assert p.action == Action.HOLD and out.verdict == "pass"


# ------------------------------------------------------------------------------------------- rule 2: price


def test_price_limit_blocks_unknown_and_high_prices_and_passes_negative_ones() -> None:
    now = utc(2024, 1, 15, 3, 10)
    slot = utc(2024, 1, 15, 3, 0)
    for price, action in (
        (None, Action.SELF_USE),
        (0.25, Action.SELF_USE),
        (0.20, Action.CHARGE),
        (-0.05, Action.CHARGE),
    ):
        p, out = rules.price_limit(CHARGE, now, price, 0.20)
        assert p.action == action, (price, out)
        assert out.rule == "price_limit"
    assert rules.current_price(now, current_rate(now, slot, 0.1), None) == 0.1
    assert rules.current_price(now, current_rate(now, slot, None), None) is None  # unknown is never 0
    expired = current_rate(now, slot - timedelta(minutes=30), 0.1)
    assert rules.current_price(now, expired, None) is None
    series = make_rates(now, slot - timedelta(hours=1), 3, lambda s: 0.07)
    assert rules.current_price(now, expired, series) == 0.07  # the pricing service's own series as fallback
    assert rules.price_limit_gbp(CFG, 0.12) == 0.12 and rules.price_limit_gbp(CFG, 0.5) == 0.20


def test_a_dear_next_slot_stops_the_charge_a_few_minutes_early() -> None:
    slot = utc(2024, 1, 15, 3, 0)
    series = make_rates(slot, slot, 2, lambda s: 0.05 if s == slot else 0.30)
    lead = CFG.peak_lead
    assert rules.next_price(utc(2024, 1, 15, 3, 20), series, lead) is None  # not near the end yet
    upcoming = rules.next_price(utc(2024, 1, 15, 3, 26), series, lead)
    assert upcoming == 0.30
    p, out = rules.price_limit(CHARGE, utc(2024, 1, 15, 3, 26), 0.05, 0.20, upcoming)
    assert p.action == Action.SELF_USE and "next slot" in out.detail
    p, out = rules.price_limit(CHARGE, utc(2024, 1, 15, 3, 26), 0.05, 0.20, None)  # unknown next: carry on
    assert p.action == Action.CHARGE


# ------------------------------------------------------------------------------------------- rule 3: off-grid


@pytest.mark.parametrize(("grid", "storm"), [(GridStatus.OFF_GRID, False), (GridStatus.ON_GRID, True)])
def test_off_grid_or_storm_stands_aside(grid: GridStatus, storm: bool) -> None:
    now = utc(2024, 1, 15, 3)
    for start in (CHARGE, Proposal(Action.SELF_USE)):
        p, out = rules.off_grid(start, battery(now, grid=grid, storm=storm))
        assert p.action is None and out.verdict == "stand_aside"


def test_unknown_grid_blocks_charging_only() -> None:
    now = utc(2024, 1, 15, 3)
    p, out = rules.off_grid(CHARGE, battery(now, grid=GridStatus.UNKNOWN))
    assert p.action == Action.SELF_USE and out.verdict == "blocked"


# ------------------------------------------------------------------------------------------- rule 4: stale


def test_stale_inputs_fall_back_to_the_baseline() -> None:
    now = utc(2024, 1, 15, 3, 10)
    plan = make_plan(now, utc(2024, 1, 15, 3), 2, charge=[utc(2024, 1, 15, 3)])
    fresh = battery(now)
    p, out = rules.stale_inputs(Proposal(Action.CHARGE, slot=plan.slots[0]), now, plan, fresh, CFG)
    assert p.action == Action.CHARGE and out.verdict == "pass"
    p, out = rules.stale_inputs(Proposal(Action.CHARGE, slot=plan.slots[0]), now, plan, battery(now, age_s=600), CFG)
    assert p.action == Action.SELF_USE and "battery" in out.detail
    late = now + timedelta(hours=3)
    p, out = rules.stale_inputs(Proposal(Action.CHARGE, slot=plan.slots[0]), late, plan, battery(late), CFG)
    assert p.action == Action.SELF_USE and "expired" in out.detail
    p, out = rules.stale_inputs(Proposal(Action.CHARGE, source="override"), late, None, battery(late), CFG)
    assert p.action == Action.CHARGE  # an override does not need a plan


# ------------------------------------------------------------------------------------------- rule 5: bounds


@pytest.mark.parametrize("action", [Action.CHARGE, Action.HOLD])
def test_a_host_clock_off_netzeros_allows_no_charge_or_hold(action: Action) -> None:
    p = Proposal(action, 100.0)
    for skew in (timedelta(minutes=5), -timedelta(days=14), -timedelta(hours=1), timedelta(seconds=61)):
        out_p, out = rules.clock_skew(p, skew, CFG)
        assert out_p.action == Action.SELF_USE and out.verdict == "blocked", skew
        assert ("ahead of" if skew > timedelta(0) else "behind") in out.detail
    for skew in (None, timedelta(0), timedelta(seconds=59), -timedelta(seconds=60)):  # unknown or close enough
        assert rules.clock_skew(p, skew, CFG) == (p, rules._out("clock_skew", rules.PASS)), skew
    self_use = Proposal(Action.SELF_USE)
    assert rules.clock_skew(self_use, timedelta(days=1), CFG)[0] == self_use  # the baseline is safe at any hour


def test_bounds_clamp_the_target_and_hold_once_reached() -> None:
    now = utc(2024, 1, 15, 3)
    cfg = RuleConfig(tz=TZ, min_target_soc_pct=20, max_target_soc_pct=90)
    p, out = rules.bounds(Proposal(Action.CHARGE, 100.0), battery(now, soc=50), cfg)
    assert p.target_soc_pct == 90 and out.verdict == "changed"
    p, out = rules.bounds(Proposal(Action.CHARGE, 60.0), battery(now, soc=61), cfg)
    assert p.action == Action.HOLD and "hold" in out.detail


def test_reserve_bounds_never_send_81_to_99() -> None:
    fixed, out = rules.reserve_bounds(PowerwallConfig(backup_reserve_pct=90))
    assert fixed.backup_reserve_pct == 80 and out.verdict == "changed"
    assert [safe_reserve(x) for x in (20, 80.2, 85, 99.5, 100)] == [20, 80, 80, 100, 100]


# ------------------------------------------------------------------------------------------- rule 6: budget


def test_budget_defers_without_a_token_and_during_backoff() -> None:
    now = utc(2024, 1, 15, 3)
    change = PowerwallConfig(grid_charging=True)
    assert rules.budget(None, now, 0, None, None)[0] is True
    assert rules.budget(change, now, 0, None, None)[0] is False
    assert rules.budget(change, now, 2, change, now + timedelta(minutes=2))[0] is False
    assert rules.budget(change, now, 2, change, now - timedelta(seconds=1))[0] is True
    wait = "NetZero asked us to wait 120 s (HTTP 429 Retry-After): no request before 03:02:00 UTC"
    ok, out = rules.budget(change, now, 0, None, None, wait)
    assert not ok and out.detail == f"{wait}: deferred"  # the reason is the server's, not "budget used"


def test_fresh_read_a_forcing_write_goes_only_on_a_read_a_few_seconds_old() -> None:
    now = utc(2024, 1, 15, 3)
    assert rules.fresh_read(True, now, battery(now, age_s=5), CFG, 1)[0] is True
    assert rules.fresh_read(False, now, battery(now, age_s=29), CFG, 0)[0] is True  # not forcing: no matter
    ok, out = rules.fresh_read(True, now, battery(now, age_s=29), CFG, 2)
    assert not ok and "29s old" in out.detail and "reading again" in out.detail
    ok, out = rules.fresh_read(True, now, battery(now, age_s=29), CFG, 1)
    assert not ok and "do not both fit" in out.detail and "the write waits" in out.detail


def test_a_decision_on_an_old_read_asks_for_a_fresh_one_and_sends_nothing() -> None:
    now = utc(2024, 1, 15, 3)
    i = DecisionInputs(now=now, mode=ExecutorMode.HOLD, baseline=BASE, battery=battery(now, age_s=29))
    d = decide(i, CFG)
    assert d.action == Action.HOLD and d.needs_read and d.change is None and d.deferred
    d = decide(DecisionInputs(now=now, mode=ExecutorMode.HOLD, baseline=BASE, battery=battery(now, age_s=1)), CFG)
    assert d.change == PowerwallConfig(operational_mode="backup") and not d.needs_read


def test_write_outcome_reads_the_grid_in_the_response() -> None:
    now = utc(2024, 1, 15, 3)
    sent = PowerwallConfig(operational_mode="backup", grid_charging=True)
    charging = BASE.model_copy(update={"operational_mode": "backup", "grid_charging": True})
    assert write_outcome(sent, battery(now, config=charging)) == ("applied", None)
    assert write_outcome(sent, battery(now))[0] == "mismatch"
    for down in (battery(now, grid=GridStatus.OFF_GRID, config=charging), battery(now, storm=True)):
        outcome, why = write_outcome(sent, down)
        assert outcome == "grid_down_after_write" and "nothing more is sent" in why


# ------------------------------------------------------------------------------------------- rule 7: leaving


def test_leaving_restores_only_what_is_ours() -> None:
    p, out = rules.leaving(CHARGE, True, "SIGTERM")
    assert p.action == Action.SELF_USE and out.verdict == "changed"
    p, out = rules.leaving(CHARGE, False, "mode off")
    assert p.action is None and out.verdict == "stand_aside"


# ------------------------------------------------------------------------------------------- translation


def test_translation_per_action() -> None:
    assert desired_config(Action.CHARGE, BASE) == PowerwallConfig(operational_mode="backup", grid_charging=True)
    assert desired_config(Action.CHARGE, BASE, 90, "reserve").backup_reserve_pct == 80
    assert desired_config(Action.HOLD, BASE) == PowerwallConfig(operational_mode="backup", grid_charging=False)
    assert desired_config(Action.SELF_USE, BASE) == BASE
    observed = BASE.model_copy(update={"energy_exports": "battery_ok"})
    assert diff(desired_config(Action.CHARGE, BASE), observed) == PowerwallConfig(
        operational_mode="backup", grid_charging=True
    )
    assert diff(desired_config(Action.SELF_USE, BASE), observed) is None


def test_baseline_is_the_users_own_configuration_whatever_it_is() -> None:
    """Issue 20: it used to be "never a charging state" (backup → self-consumption, 90 → 80 %), which rewrote the
    user's own setting at start-up. Now it is exactly what was found; only the two baseline settings replace a
    field, when the user set them."""
    found = PowerwallConfig(operational_mode="backup", backup_reserve_pct=90, grid_charging=True)
    base = user_baseline(found)
    assert base == found and not is_forced(found, base)
    assert desired_config(Action.SELF_USE, base) == found  # handing back is handing back all of it
    assert is_forced(PowerwallConfig(operational_mode="backup", grid_charging=True), BASE)
    assert user_baseline(found, "autonomous", 30) == PowerwallConfig(
        operational_mode="autonomous", backup_reserve_pct=30, grid_charging=True
    )
    assert restore_config(base).backup_reserve_pct == 80  # only ever sent when the user accepted it …
    assert restore_config(base, found).backup_reserve_pct is None  # … and left out while the Powerwall has it
    assert restore_config(BASE) == BASE


def test_baseline_rule_forces_nothing_that_cannot_be_handed_back() -> None:
    for pct in (81, 95, 99):
        user = BASE.model_copy(update={"backup_reserve_pct": pct})
        for action in (Action.CHARGE, Action.HOLD):
            p, out = rules.baseline(Proposal(action, 100.0), user, CFG)
            assert p.action == Action.SELF_USE and out.verdict == "blocked"
            assert f"{pct}%" in out.detail and "Tesla app" in out.detail and "ACCEPT_NEAREST" in out.detail
        p, out = rules.baseline(CHARGE, user, RuleConfig(tz=TZ, accept_nearest_reserve=True))
        assert p.action == Action.CHARGE and "80%" in out.detail
    for pct in (0, 80, 100):
        assert rules.baseline(CHARGE, BASE.model_copy(update={"backup_reserve_pct": pct}), CFG)[0] == CHARGE


# ------------------------------------------------------------------------------------------- the chain


def test_override_passes_the_same_rules() -> None:
    now = utc(2024, 1, 15, 16, 30)  # in the peak
    i = DecisionInputs(
        now=now,
        mode=ExecutorMode.AUTO,
        baseline=BASE,
        battery=battery(now),
        override=Override(Action.CHARGE, now + timedelta(hours=1)),
        current_rate=current_rate(now, utc(2024, 1, 15, 16, 30), 0.01),
    )
    d = decide(i, CFG)
    assert d.requested_action == Action.CHARGE and d.action == Action.SELF_USE
    assert any(r.rule == "peak_window" and r.verdict == "blocked" for r in d.rules)
    assert d.change is None  # not forced: nothing to undo


def test_charge_decision_has_a_lease_within_the_plan_and_before_the_peak() -> None:
    now = utc(2024, 1, 15, 15, 40)
    slot = utc(2024, 1, 15, 15, 30)
    plan = make_plan(now, utc(2024, 1, 15, 15), 2, charge=[slot])
    i = DecisionInputs(
        now=now,
        mode=ExecutorMode.AUTO,
        baseline=BASE,
        battery=battery(now),
        plan=plan,
        current_rate=current_rate(now, slot, 0.05),
    )
    d = decide(i, CFG)
    assert d.action == Action.CHARGE and d.change == PowerwallConfig(operational_mode="backup", grid_charging=True)
    assert d.lease_until == utc(2024, 1, 15, 15, 55)  # peak start minus the lead, before slot end + margin


def test_mode_off_with_a_forced_state_restores_the_baseline() -> None:
    now = utc(2024, 1, 15, 3)
    charging = PowerwallConfig(operational_mode="backup", backup_reserve_pct=20, grid_charging=True)
    i = DecisionInputs(
        now=now, mode=ExecutorMode.OFF, baseline=BASE, battery=battery(now, config=charging), forced_active=True
    )
    d = decide(i, CFG)
    assert d.action == Action.SELF_USE
    assert d.change == PowerwallConfig(operational_mode="self_consumption", grid_charging=False)
