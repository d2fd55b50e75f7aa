"""Property test of the pure decision (hypothesis): whatever the plan, prices, battery and time (DST days too),
no decision grid-charges in the peak, above the price limit, without a price, off-grid, on stale battery data,
on an expired plan or while this host's clock is off NetZero's; and no reserve of 81–99 % is ever sent.

The read's age and the grid state shown by the write's own response are drawn too: a charge or hold is sent only
on a read at most 5 s old that showed the grid up and no storm watch; a response showing off-grid or storm is
never recorded as ``applied``, and the decision that follows on it sends nothing at all.

``make test`` runs the ``ci`` profile (200 cases); ``make soak`` runs the slow variant with 10,000 cases.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.executor import rules
from services.executor.decide import DecisionInputs, Override, decide, write_outcome
from services.executor.rules import RuleConfig
from services.executor.translate import may_grid_charge
from shared.models import (
    Action,
    BatteryState,
    CurrentRate,
    ExecutorMode,
    GridStatus,
    Plan,
    PlanSlot,
    PowerwallConfig,
    Rate,
    RateSeries,
    Reason,
)
from shared.slots import SLOT, iter_slots, slot_start

TZ = ZoneInfo("Europe/London")
CFG = RuleConfig(tz=TZ)
DST_DAYS = [date(2023, 3, 26), date(2023, 10, 29), date(2024, 3, 31), date(2024, 10, 27), date(2025, 3, 30)]
BASE = PowerwallConfig(operational_mode="self_consumption", backup_reserve_pct=20, grid_charging=False)

days = st.one_of(st.sampled_from(DST_DAYS), st.dates(date(2023, 1, 1), date(2025, 12, 31)))
prices = st.one_of(st.none(), st.floats(-0.3, 1.2), st.floats(-0.3, 0.2))
configs = st.builds(
    PowerwallConfig,
    operational_mode=st.sampled_from(["autonomous", "self_consumption", "backup"]),
    backup_reserve_pct=st.integers(0, 100),
    grid_charging=st.booleans(),
)


# The user's own configuration, whatever it is: a reserve of 81–99 % cannot be restored (NetZero stores 80).
baselines = st.one_of(
    st.just(BASE),
    st.builds(
        PowerwallConfig,
        operational_mode=st.sampled_from(["autonomous", "self_consumption", "backup"]),
        backup_reserve_pct=st.sampled_from([0, 20, 80, 81, 95, 99, 100]),
        grid_charging=st.booleans(),
    ),
)


@st.composite
def instants(draw: st.DrawFn) -> datetime:
    day = draw(days)
    local = datetime.combine(day, time(0), tzinfo=TZ)
    return (local + timedelta(minutes=draw(st.integers(0, 25 * 60 - 1)), seconds=draw(st.integers(0, 59)))).astimezone(
        ZoneInfo("UTC")
    )


@st.composite
def scenarios(draw: st.DrawFn) -> DecisionInputs:
    now = draw(instants())
    plan = None
    if draw(st.booleans()):
        start = slot_start(now) - SLOT * draw(st.integers(0, 8))
        n = draw(st.integers(1, 16))
        slots = []
        for s in iter_slots(start, start + SLOT * n):
            action = draw(st.sampled_from([Action.CHARGE, Action.CHARGE, Action.HOLD, Action.SELF_USE]))
            slots.append(
                PlanSlot(
                    start=s,
                    end=s + SLOT,
                    action=action,
                    reason=Reason.CHEAPEST_NEEDED,
                    target_soc_pct=draw(st.one_of(st.none(), st.floats(0, 100))),
                    expected_soc_pct=50,
                    value_inc_vat=draw(prices),
                )
            )
        valid = now + timedelta(minutes=draw(st.one_of(st.integers(-240, 600), st.integers(1, 600))))
        plan = Plan(generated_at=now - timedelta(hours=1), valid_until=valid, plan_id="p", slots=slots)
    current = None
    if draw(st.booleans()):
        s = slot_start(now) + SLOT * draw(st.sampled_from([0, 0, 0, -1, 1, -2]))
        value = draw(prices)
        current = CurrentRate(
            generated_at=s,
            valid_until=s + SLOT,
            tariff_code="T",
            slot_start=s,
            slot_end=s + SLOT,
            known=value is not None,
            value_inc_vat=value,
        )
    series = None
    if draw(st.booleans()):
        s0 = slot_start(now) - SLOT * 4
        rates = [
            Rate(start=s, end=s + SLOT, value_inc_vat=draw(st.floats(-0.3, 1.2)))
            for s in iter_slots(s0, s0 + SLOT * 8)
            if draw(st.booleans())
        ]
        series = RateSeries(
            generated_at=s0,
            valid_until=now + timedelta(minutes=draw(st.integers(-60, 600))),
            tariff_code="T",
            rates=rates,
        )
    battery = None
    if draw(st.integers(0, 9)) > 0:
        age_s = draw(st.one_of(st.floats(-2, 12), st.integers(0, 120), st.integers(-30, 900)))
        seen = now - timedelta(seconds=age_s)
        battery = BatteryState(
            generated_at=seen,
            valid_until=seen + timedelta(minutes=5),
            observed_at=seen,
            soc_pct=draw(st.floats(0, 100)),
            grid_status=draw(st.sampled_from([GridStatus.ON_GRID] * 4 + list(GridStatus))),
            storm_mode_active=draw(st.sampled_from([False, False, False, None, True])),
            config=draw(configs),
        )
    override = None
    if draw(st.integers(0, 3)) == 0:
        override = Override(
            draw(st.sampled_from(list(Action))),
            now + timedelta(minutes=draw(st.integers(-30, 300))),
            draw(st.one_of(st.none(), st.floats(0, 100))),
        )
    return DecisionInputs(
        now=now,
        mode=draw(st.sampled_from([ExecutorMode.AUTO] * 3 + list(ExecutorMode))),
        baseline=draw(baselines),
        plan=plan,
        current_rate=current,
        rates=series,
        planner_max_price_gbp=draw(st.one_of(st.none(), st.floats(-0.1, 0.6))),
        battery=battery,
        forced_active=draw(st.booleans()),
        override=override,
        leaving=draw(st.sampled_from([None] * 6 + ["SIGTERM"])),
        budget_available=draw(st.integers(0, 4)),
        charge_method=draw(st.sampled_from(["backup", "reserve"])),
        clock_skew=draw(
            st.one_of(st.none(), st.timedeltas(timedelta(seconds=-90), timedelta(seconds=90)), st.timedeltas())
        ),
    )


@st.composite
def forcing_scenarios(draw: st.DrawFn) -> DecisionInputs:
    """Scenarios where a charge or hold is asked for and mostly allowed, so that forcing writes are common (about
    one case in three) and the read's age and the grid state decide."""
    i = draw(scenarios())
    now = i.now
    age_s = draw(st.one_of(st.floats(-2, 12), st.integers(0, 200)))
    battery = BatteryState(
        generated_at=now,
        valid_until=now + timedelta(minutes=5),
        observed_at=now - timedelta(seconds=age_s),
        soc_pct=draw(st.floats(0, 100)),
        grid_status=draw(st.sampled_from([GridStatus.ON_GRID] * 4 + [GridStatus.OFF_GRID, GridStatus.UNKNOWN])),
        storm_mode_active=draw(st.sampled_from([False, False, False, None, True])),
        config=draw(configs),
    )
    return replace(
        i,
        mode=draw(st.sampled_from([ExecutorMode.HOLD, ExecutorMode.FORCE_CHARGE])),
        override=None,
        leaving=None,
        clock_skew=None,
        battery=battery,
        baseline=draw(st.sampled_from([BASE, BASE, BASE, i.baseline])),
    )


@st.composite
def responses(draw: st.DrawFn) -> tuple[GridStatus, bool | None, float]:
    """What the write's response shows of the grid, and how long after it the next decision comes (s)."""
    grid = draw(st.sampled_from([GridStatus.ON_GRID, GridStatus.OFF_GRID, GridStatus.UNKNOWN]))
    return grid, draw(st.sampled_from([False, None, True])), draw(st.floats(0, 120))


def forcing_write(d) -> bool:
    return d.change is not None and d.action in (Action.CHARGE, Action.HOLD)


def check(i: DecisionInputs, response: tuple[GridStatus, bool | None, float] | None = None) -> None:
    d = decide(i, CFG)
    if forcing_write(d):  # only on a fresh read that showed the grid up and no storm watch
        assert i.battery is not None
        assert (i.now - i.battery.observed_at).total_seconds() <= CFG.fresh_read.total_seconds(), d
        assert i.battery.grid_status != GridStatus.OFF_GRID and not i.battery.storm_mode_active, d
    if d.needs_read:
        assert d.change is None and d.deferred  # nothing sent until the executor has read again
        if i.budget_available < 2:
            assert any(r.rule == "fresh_read" and "do not both fit" in r.detail for r in d.rules), d
    if response is not None and d.change is not None and i.battery is not None:
        after_write(i, d, response)
    soc = i.battery.soc_pct if i.battery is not None else 0.0
    charges = d.action == Action.CHARGE
    grid_charging_sent = d.change is not None and may_grid_charge(d.change, soc)
    price = rules.current_price(i.now, i.current_rate, i.rates)
    limit = rules.price_limit_gbp(CFG, i.planner_max_price_gbp)
    forbidden = {
        "peak": rules.in_peak(i.now, CFG),
        "no price": price is None,
        "above limit": price is not None and price > limit,
        "off grid": i.battery is not None
        and (i.battery.grid_status != GridStatus.ON_GRID or bool(i.battery.storm_mode_active)),
        "no battery state": i.battery is None,
        "stale battery": i.battery is not None and abs((i.now - i.battery.observed_at).total_seconds()) > 180,
        "leaving": i.leaving is not None or i.mode == ExecutorMode.OFF,
        "clock skew": i.clock_skew is not None and abs(i.clock_skew) > CFG.max_clock_skew,
    }
    override_on = i.override is not None and i.now < i.override.until
    if i.mode == ExecutorMode.AUTO and not override_on:
        forbidden["plan expired or missing"] = i.plan is None or not i.plan.is_valid(i.now)
    why = [k for k, v in forbidden.items() if v]
    if why:
        assert not charges, (why, d)
        enables = d.change is not None and (d.change.grid_charging or d.change.operational_mode == "backup")
        # Handing back the user's own configuration is never forbidden, even one that grid-charges by itself.
        assert not (grid_charging_sent and enables) or d.action == Action.SELF_USE, (why, d)
    if i.battery is not None and (i.battery.grid_status == GridStatus.OFF_GRID or i.battery.storm_mode_active):
        assert d.action is None and d.change is None  # stand aside: touch nothing
    if forbidden["clock skew"]:
        assert d.action not in (Action.CHARGE, Action.HOLD), d  # nothing forced on a clock that may be hours off
    if d.change is not None and d.change.backup_reserve_pct is not None:
        assert not 81 <= d.change.backup_reserve_pct <= 99
    if d.change is not None and d.change.backup_reserve_pct is not None and why:
        assert d.change.backup_reserve_pct <= max(i.baseline.backup_reserve_pct, soc), (why, d)  # none raised
    if rules.restorable_reserve(i.baseline.backup_reserve_pct) is False:
        assert d.action not in (Action.CHARGE, Action.HOLD), d  # nothing forced that cannot be handed back


def after_write(i: DecisionInputs, d, response: tuple[GridStatus, bool | None, float]) -> None:
    """The write is answered with ``response``'s grid state: never ``applied`` when it shows the grid down or storm
    watch, and the next decision on that response sends nothing at all (whatever the plan wants)."""
    grid, storm, later_s = response
    assert i.battery is not None and d.change is not None
    shown = i.battery.config.model_copy(update=d.change.model_dump(exclude_none=True))
    answered = i.battery.model_copy(
        update={"grid_status": grid, "storm_mode_active": storm, "config": shown, "observed_at": i.now}
    )
    outcome, reason = write_outcome(d.change, answered)
    down = grid == GridStatus.OFF_GRID or bool(storm)
    assert (outcome == "grid_down_after_write") == down, (outcome, grid, storm)
    assert outcome == "applied" or reason
    if down:
        forced = i.forced_active or forcing_write(d)  # the journal keeps a forcing write as possibly in force
        following = replace(
            i, now=i.now + timedelta(seconds=later_s), battery=answered, forced_active=forced, leaving=None
        )
        again = decide(following, CFG)
        assert again.change is None and again.action is None, again  # stand aside: nothing sent


@given(st.one_of(scenarios(), forcing_scenarios()), responses())
def test_no_forbidden_grid_charging(i: DecisionInputs, response) -> None:
    check(i, response)


@pytest.mark.slow
@settings(max_examples=10_000)
@given(st.one_of(scenarios(), forcing_scenarios()), responses())
def test_no_forbidden_grid_charging_10k(i: DecisionInputs, response) -> None:
    check(i, response)
