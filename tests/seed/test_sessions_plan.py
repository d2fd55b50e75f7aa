"""Octopus sessions in the plan and the executor: a Saving Session is gone into as full as is worth it and nothing
is bought in it (the executor's ``saving_session`` rule); a free-electricity session charges to full; on clock
change days too; and a failing GraphQL API changes neither plans nor safety."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.dashboard import extras_view
from services.dashboard.live import Entry
from services.executor.decide import DecisionInputs, Override, decide
from services.executor.rules import RuleConfig
from services.planner.optimiser import plan
from shared.models import (
    Action,
    BatteryState,
    ExecutorMode,
    GridStatus,
    ManualWindow,
    OctopusSession,
    PlannerSettings,
    PowerwallConfig,
    Reason,
    SessionList,
)
from shared.slots import SLOT, local_day_slots, local_wall_time
from tests.executor.support import current_rate, make_plan, utc
from tests.planner.helpers import battery, forecast, rates

LONDON = ZoneInfo("Europe/London")
CFG = RuleConfig(tz=LONDON)
BASE = PowerwallConfig(operational_mode="self_consumption", backup_reserve_pct=20, grid_charging=False)


def session(kind: str, start: datetime, hours: float, points: int | None = None, code: str = "EV-1") -> OctopusSession:
    return OctopusSession(
        kind=kind, code=code, start=start, end=start + timedelta(hours=hours),  # type: ignore[arg-type]
        reward_octopoints_per_kwh=points, reward_gbp_per_kwh=None if points is None else points / 800,
    )  # fmt: skip


def listed(now: datetime, *items: OctopusSession, status: str = "ok") -> SessionList:
    return SessionList(
        generated_at=now, status=status, sessions=list(items), error="HTTP 500" if status != "ok" else None
    )  # type: ignore[arg-type]


def flat(kind: str, now: datetime, kwh: float, n: int = 96):
    return forecast(kind, now, [kwh] * n)


# ------------------------------------------------------------------ the plan


def evening(now: datetime, cheap: float = 0.12, dear: float = 0.25) -> list[float]:
    """From 10:00 UTC: cheap until 14:00, then dear; 24 h of prices."""
    return [cheap] * 8 + [dear] * 40


def test_the_plan_goes_into_a_saving_session_full_and_buys_nothing_in_it() -> None:
    now = utc(2024, 1, 22, 10, 0)
    s = session("saving", utc(2024, 1, 22, 15, 0), 1.0, points=1600)  # £2/kWh, 15:00-16:00 (before the peak)
    prices = rates(now, [0.20] * 8 + [0.21] * 40)  # charging at 20p for 21p is not worth it: unless a session pays
    args = (prices, flat("pv", now, 0.0), flat("load", now, 1.2), battery(now, 20.0), PlannerSettings(), now)
    without = plan(*args)
    with_it = plan(*args, sessions=listed(now, s))
    inside = [x for x in with_it.slots if s.start <= x.start < s.end]
    assert [x.action for x in inside] == [Action.SELF_USE, Action.SELF_USE]
    assert all(x.reason == Reason.SAVING_SESSION for x in inside)
    assert sum(x.grid_import_kwh for x in inside) == pytest.approx(0.0, abs=1e-6)  # nothing bought in it
    charged = sum(x.grid_import_kwh for x in with_it.slots if x.start < s.start and x.action == Action.CHARGE)
    charged_before = sum(x.grid_import_kwh for x in without.slots if x.start < s.start and x.action == Action.CHARGE)
    assert charged_before == 0 and charged > 2.0  # it filled up for the session (at least its two slots' load)
    # the reported cost is money (the reward is a weight for the plan, not a price anybody pays)
    assert with_it.expected_cost_gbp == pytest.approx(sum(x.cost_gbp for x in with_it.slots), abs=1e-3)
    assert with_it.expected_cost_gbp < without.expected_cost_gbp + 1.0


def test_a_small_reward_is_not_worth_dear_energy() -> None:
    now = utc(2024, 1, 22, 10, 0)
    s = session("saving", utc(2024, 1, 22, 15, 0), 1.0, points=8)  # 1p/kWh: not worth charging at 30p for
    prices = rates(now, [0.30] * 48)
    p = plan(prices, flat("pv", now, 0.0), flat("load", now, 1.2), battery(now, 20.0), PlannerSettings(), now,
             sessions=listed(now, s))  # fmt: skip
    assert not [x for x in p.slots if x.action == Action.CHARGE]
    inside = [x for x in p.slots if s.start <= x.start < s.end]
    assert {x.action for x in inside} == {Action.SELF_USE}  # still nothing charged or held in it


def test_a_free_session_charges_to_full() -> None:
    now = utc(2024, 1, 22, 10, 0)
    f = session("free", utc(2024, 1, 22, 12, 0), 4.0)
    p = plan(rates(now, [0.18] * 48), flat("pv", now, 0.0), flat("load", now, 0.3), battery(now, 30.0),
             PlannerSettings(target_soc_cap_pct=80), now, sessions=listed(now, f))  # fmt: skip
    inside = [x for x in p.slots if f.start <= x.start < f.end]
    assert inside[0].action == Action.CHARGE and {x.reason for x in inside} == {Reason.FREE_SESSION}
    assert {x.action for x in inside} <= {Action.CHARGE, Action.HOLD}  # full: held there, as the executor does
    assert inside[-1].expected_soc_pct == pytest.approx(100.0, abs=0.5)  # to full, past the usual 80 % cap
    assert all(x.cost_gbp == pytest.approx(0.0, abs=1e-9) for x in inside)  # import is free


def test_a_free_session_in_the_peak_is_not_charged() -> None:
    now = utc(2024, 1, 22, 10, 0)
    f = session("free", utc(2024, 1, 22, 16, 0), 1.0)
    p = plan(rates(now, [0.18] * 48), flat("pv", now, 0.0), flat("load", now, 0.3), battery(now, 30.0),
             PlannerSettings(), now, sessions=listed(now, f))  # fmt: skip
    inside = [x for x in p.slots if f.start <= x.start < f.end]
    assert Action.CHARGE not in {x.action for x in inside}
    assert all("safety rule" in (x.reason_detail or "") for x in inside)


@pytest.mark.parametrize("day", [(2024, 3, 31), (2024, 10, 27)])  # 46- and 50-slot days
def test_sessions_on_clock_change_days(day: tuple[int, int, int]) -> None:
    from datetime import date, time

    d = date(*day)
    now = local_wall_time(d, time(6), LONDON)
    starts = local_day_slots(d, LONDON)
    s = session("saving", local_wall_time(d, time(19), LONDON), 1.0, points=2400)  # 19:00-20:00 local
    prices = rates(now, [0.10] * 12 + [0.28] * 60)
    p = plan(prices, flat("pv", now, 0.0), flat("load", now, 1.0), battery(now, 20.0), PlannerSettings(), now,
             sessions=listed(now, s))  # fmt: skip
    inside = [x for x in p.slots if s.start <= x.start < s.end]
    assert len(inside) == 2 and all(x.start.astimezone(LONDON).hour == 19 for x in inside)
    assert sum(x.grid_import_kwh for x in inside) == pytest.approx(0.0, abs=1e-6)
    assert len(starts) in (46, 50)
    free = session("free", local_wall_time(d, time(1), LONDON) + timedelta(days=1), 1.0)
    later = plan(prices, flat("pv", now, 0.0), flat("load", now, 1.0), battery(now, 20.0),
                 PlannerSettings(max_charge_price_gbp=0.30), now, sessions=listed(now, free))  # fmt: skip
    assert {x.action for x in later.slots if free.start <= x.start < free.end} == {Action.CHARGE}


def test_a_failing_graphql_api_changes_neither_the_plan_nor_the_alert_is_missed() -> None:
    now = utc(2024, 1, 22, 10, 0)
    s = session("saving", utc(2024, 1, 22, 15, 0), 1.0, points=1600)
    args = (rates(now, evening(now)), flat("pv", now, 0.0), flat("load", now, 1.2), battery(now, 20.0),
            PlannerSettings(), now)  # fmt: skip
    ok = plan(*args, sessions=listed(now, s))
    failing = plan(*args, sessions=listed(now, s, status="failing"))  # the sessions last known are used
    assert [x.action for x in failing.slots] == [x.action for x in ok.slots] and failing.status == "ok"
    nothing = plan(*args, sessions=SessionList(generated_at=now, status="failing", error="HTTP 500"))
    assert [x.action for x in nothing.slots] == [x.action for x in plan(*args).slots]  # as without sessions
    entries = {"pricing/sessions": Entry(listed(now, s, status="failing").to_json(), now, True)}
    [warning] = extras_view.warnings(entries, now, LONDON)
    assert "cannot be read" in warning and "HTTP 500" in warning and "unaffected" in warning


# ------------------------------------------------------------------ the executor


def inputs(now: datetime, sessions: SessionList | None, action: Action = Action.CHARGE, **kw) -> DecisionInputs:
    state = BatteryState(generated_at=now, observed_at=now, valid_until=now + timedelta(minutes=5), soc_pct=40.0,
                         grid_status=GridStatus.ON_GRID, config=BASE)  # fmt: skip
    slot = now.replace(minute=0 if now.minute < 30 else 30, second=0)
    p = make_plan(now, slot, 4, charge=[slot] if action == Action.CHARGE else [],
                  hold=[slot] if action == Action.HOLD else [])  # fmt: skip
    return DecisionInputs(now=now, mode=ExecutorMode.AUTO, baseline=BASE, plan=p, battery=state,
                          current_rate=current_rate(now, slot, 0.08), sessions=sessions, **kw)  # fmt: skip


def test_the_executor_never_grid_charges_or_holds_in_a_saving_session() -> None:
    now = utc(2024, 1, 22, 15, 10)
    s = listed(now, session("saving", utc(2024, 1, 22, 15, 0), 1.0, points=1600, code="EV-9"))
    for action in (Action.CHARGE, Action.HOLD):
        d = decide(inputs(now, s, action), CFG)
        [rule] = [r for r in d.rules if r.rule == "saving_session"]
        assert d.action == Action.SELF_USE and rule.verdict == "blocked" and "EV-9" in rule.detail
    override = decide(inputs(now, s, Action.SELF_USE, override=Override(Action.CHARGE, now + SLOT)), CFG)
    assert override.action == Action.SELF_USE
    w = ManualWindow(window_id=3, start=utc(2024, 1, 22, 15), end=utc(2024, 1, 22, 16), action="charge")
    window = decide(inputs(now, s, Action.SELF_USE, window=w), CFG)
    assert window.action == Action.SELF_USE and window.requested_action == Action.CHARGE
    forced = decide(replace(inputs(now, s, Action.SELF_USE), mode=ExecutorMode.FORCE_CHARGE), CFG)
    assert forced.action == Action.SELF_USE
    # five minutes before it starts (the gateway lags) the charge stops too
    early = decide(inputs(utc(2024, 1, 22, 14, 56), s), CFG)
    assert early.action == Action.SELF_USE
    # a failing list still carries the sessions last known: the rule still holds
    failing = listed(now, *s.sessions, status="failing")
    assert decide(inputs(now, failing), CFG).action == Action.SELF_USE
    # no sessions known: the plan as usual
    assert decide(inputs(now, None), CFG).action == Action.CHARGE


def test_the_executor_charges_to_full_in_a_free_session_within_the_rules() -> None:
    now = utc(2024, 1, 22, 12, 10)
    f = listed(now, session("free", utc(2024, 1, 22, 12, 0), 1.0, code="FREE-1"))
    d = decide(inputs(now, f, Action.SELF_USE), CFG)
    assert d.source == "session" and d.action == Action.CHARGE and d.target_soc_pct == 100.0
    assert d.lease_until is not None and d.lease_until <= utc(2024, 1, 22, 13, 0)
    capped = decide(inputs(now, f, Action.SELF_USE), RuleConfig(tz=LONDON, max_target_soc_pct=95))
    assert capped.target_soc_pct == 95.0  # the SOC limit is a safety value: clamped, and the decision says so
    peak_now = utc(2024, 1, 22, 16, 10)
    in_peak = listed(peak_now, session("free", utc(2024, 1, 22, 16, 0), 1.0))
    assert decide(inputs(peak_now, in_peak, Action.SELF_USE), CFG).action == Action.SELF_USE
    dst = utc(2024, 10, 27, 1, 20)  # 01:20 GMT after the autumn change; the session is 01:00-02:00 UTC
    late = listed(dst, session("free", utc(2024, 10, 27, 1, 0), 1.0))
    assert decide(inputs(dst, late, Action.SELF_USE), CFG).action == Action.CHARGE
