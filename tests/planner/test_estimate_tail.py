"""The planner values the energy it keeps beyond the known prices with the pricing service's estimate (end value
``estimate``, the default), never plans a slot on it, falls back to the last 7 days' prices without a usable one,
and the replay (benchmark, backtest) makes the same estimate from what was published before each plan only."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from services.planner.battery import limits_for
from services.planner.optimiser import PlannerConfig, plan
from services.planner.replay import Batsched, replay, self_use_policy
from shared.models import EstimateSlot, PlannerSettings, PriceEstimate
from tests.executor.support import sim_clock_env
from tests.planner.helpers import HALF, battery, forecast, rates, utc
from tests.support.probe import Probe

NOW = utc(2023, 6, 12, 9, 0)  # 10:00 BST; the peak window (16-19 local) is slots 12-17
KNOWN = [0.05] * 8 + [0.20] * 4 + [0.30] * 6 + [0.20] * 10  # 14 hours of published prices
END = NOW + len(KNOWN) * HALF
SETTINGS = PlannerSettings()


def estimate(value: float, start: datetime = END, n: int = 96, now: datetime = NOW, paths: int = 3) -> PriceEstimate:
    slots = [
        EstimateSlot(start=t, end=t + HALF, median_gbp=value, low_gbp=value, high_gbp=value)
        for t in (start + k * HALF for k in range(n))
    ]
    return PriceEstimate(
        generated_at=now,
        valid_until=start + n * HALF,
        tariff_code="E-1R-AGILE-24-10-01-J",
        method="test",
        learned_from="test",
        published_until=start,
        slots=slots,
        scenarios_gbp=[[value] * n for _ in range(paths)],
    )


def history() -> dict[datetime, float]:
    """A week of past prices (cheap nights, dear evenings) for the fallback."""
    start = NOW - timedelta(days=8)
    return {start + k * HALF: 0.10 + 0.15 * ((k % 48) in range(30, 38)) for k in range(8 * 48)}


def make_plan(est: PriceEstimate | None, config: PlannerConfig | None = None):
    return plan(
        rates(NOW, KNOWN, generated_at=NOW),
        None,
        forecast("load", NOW, [0.3] * 200, generated_at=NOW),
        battery(NOW, 20),
        SETTINGS,
        NOW,
        price_history=history(),
        price_estimate=est,
        config=config,
    )


def test_a_dear_estimate_keeps_more_energy_than_a_cheap_one_and_no_slot_is_planned_on_it() -> None:
    dear, cheap = make_plan(estimate(0.40)), make_plan(estimate(0.01))
    assert dear.status == cheap.status == "ok"
    assert dear.slots[-1].expected_soc_pct > cheap.slots[-1].expected_soc_pct + 10
    assert dear.end_value_gbp > cheap.end_value_gbp
    for p in (dear, cheap):
        assert len(p.slots) == len(KNOWN) and p.slots[-1].end == END  # the estimate adds no slot
        assert [s.value_inc_vat for s in p.slots] == KNOWN  # and no price
        assert "estimate" not in (p.reason or "")


def test_without_a_usable_estimate_the_plan_falls_back_to_the_last_days_and_says_why() -> None:
    fallback = make_plan(None, PlannerConfig(end_value="scenarios"))
    cases = [
        (None, "no price estimate"),
        (estimate(0.40, now=NOW - timedelta(days=3), start=NOW - timedelta(days=2)), "price estimate expired"),
        (estimate(0.40, start=END + 4 * HALF), "price estimate does not reach"),
    ]
    for est, why in cases:
        p = make_plan(est)
        assert p.status == "ok"
        assert f"{why}" in (p.reason or "") and "valued from the last 7 days' prices" in (p.reason or "")
        assert [s.action for s in p.slots] == [s.action for s in fallback.slots]
        assert p.end_value_gbp == fallback.end_value_gbp


def test_an_estimate_shorter_than_a_day_values_what_it_covers() -> None:
    short = make_plan(estimate(0.40, n=6))
    assert short.status == "ok" and "estimate" not in (short.reason or "")
    assert short.end_value_gbp > 0


# --------------------------------------------------------------------------------------------- replay


def week_world():
    import tools.bench_planner as bench

    return bench.build_world(bench.Scenario("week", "2023-02-06", "2023-02-13", 0.0, True))


def test_the_replay_estimates_from_what_was_published_before_each_plan() -> None:
    w = week_world()
    policy = Batsched(w, *_model_settings())
    ke = int(policy.known_end[w.start + 40])  # a plan after the day's publication
    est = policy.price_estimate(ke)
    assert est is not None and est.slots[0].start == w.slots[ke]
    assert len(est.slots) == 96 and len(est.scenarios_gbp) == 21
    absurd = w.price.copy()
    absurd[ke:] = 5.0  # the future, made absurd, changes nothing
    other = Batsched(dataclasses.replace(w, price=absurd), *_model_settings())
    assert other.price_estimate(ke) == est


def test_a_week_replayed_with_the_estimate_beats_self_use() -> None:
    w = week_world()
    model, settings = _model_settings()
    lim = limits_for(model, settings)
    policy = Batsched(w, model, settings, "perfect")
    assert policy.end_value == "estimate"
    got = replay(w, policy, model, lim, lim.min_kwh).cost_gbp
    base = replay(w, self_use_policy, model, lim, lim.min_kwh).cost_gbp
    assert got < base - 1.0
    assert len(policy.tail_seconds) >= 7  # one estimate per publication


def _model_settings():
    import tools.bench_planner as bench

    return bench.MODEL, bench.SETTINGS


# --------------------------------------------------------------------------------------------- service


def test_the_planner_service_uses_the_estimate_it_is_sent(spawn, probe: Probe) -> None:
    # On a clock of its own from NOW (at real speed): the prices line up with the peak as above, whenever this runs.
    clock, env = sim_clock_env(NOW + timedelta(minutes=5), 1.0)
    spawn("services.planner", env={"BATSCHED_PLANNER_DEBOUNCE_S": "0.2", **env}, name="planner")
    probe.wait_for("batsched/planner/status", lambda m: m.text == "online", timeout=20)
    now = clock.now()
    start = pd.Timestamp(now).floor("30min").to_pydatetime()
    prices = list(np.resize(KNOWN, 24))
    probe.publish("batsched/battery/state", battery(now, 30).model_dump_json(), retain=True)
    r = rates(start, prices, generated_at=now)
    probe.publish("batsched/pricing/import/rates", r.model_dump_json(), retain=True)
    first = probe.wait_json("batsched/planner/plan", lambda j: j["status"] == "ok", timeout=10)
    assert "no price estimate" in (first["reason"] or "")
    mark = probe.mark()
    est = estimate(0.35, start=start + len(prices) * HALF, now=now)
    probe.publish("batsched/pricing/import/estimate", est.model_dump_json(), retain=True)
    msg = probe.wait_json(
        "batsched/planner/plan", lambda j: "estimate" not in (j["reason"] or ""), timeout=10, after=mark
    )
    assert msg["status"] == "ok" and msg["end_value_gbp"] > 0
    assert msg["slots"][-1]["end"] == first["slots"][-1]["end"]  # no slot planned on the estimate
