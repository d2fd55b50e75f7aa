"""The DP against the LP of the same model (HiGHS), on random and on real plan inputs."""

from __future__ import annotations

import numpy as np

from services.planner.battery import BatteryModel, Limits
from services.planner.dp import Horizon, solve
from services.planner.lp import solve_lp
from tools.bench_planner import agreement


def test_dp_is_within_half_a_percent_of_the_exact_optimum_and_never_beats_it() -> None:
    rand, real = agreement(30, 30, seed=5)
    both = np.concatenate([rand, real])
    print(f"DP excess over the exact optimum, % of no-battery cost: median {np.median(both):.3f}, max {both.max():.3f}")
    assert both.min() > -0.01, "the DP beat the mixed-integer optimum of its own model: the two models differ"
    assert np.median(both) <= 0.1
    assert np.percentile(both, 95) <= 0.5


def test_finer_grid_agrees_on_every_sampled_input() -> None:
    rand, real = agreement(15, 15, seed=7, soc_step_kwh=0.05)
    both = np.concatenate([rand, real])
    assert both.min() > -0.01
    assert both.max() <= 0.5, f"DP at 0.05 kWh exceeds the exact optimum by {both.max():.3f} %"


def test_exact_model_takes_away_the_relaxations_the_battery_does_not_have() -> None:
    """At negative prices the relaxation burns energy by charging and discharging at once, and before a dear
    evening it covers part of a deficit from the battery; a Powerwall in self-use covers all of it (or stops at
    the reserve). The exact model does neither, and the DP meets it."""
    m = BatteryModel()
    lim = Limits(0.0, 13.5)
    price = np.array([-0.10] * 4 + [0.20, 0.20, 0.30, 0.30])
    load = np.array([0.3] * 4 + [0.6, 0.6, 0.6, 0.6])
    h = Horizon(price, np.zeros(8), load, np.zeros(8), np.ones(8, dtype=bool))
    relaxed = solve_lp(h, 13.0, m, lim)
    exact = solve_lp(h, 13.0, m, lim, exact=True)
    dp = solve(h, 13.0, m, lim)
    assert relaxed.objective_gbp < exact.objective_gbp - 1e-4
    assert abs(float(dp.cost_gbp.sum()) - exact.objective_gbp) <= 1e-3


def test_dp_charges_in_the_cheap_night_like_the_lp() -> None:
    m = BatteryModel()
    lim = Limits(1.35, 13.5)
    price = np.array([0.05] * 8 + [0.30] * 8)
    h = Horizon(price, np.zeros(16), np.ones(16), np.zeros(16), np.ones(16, dtype=bool))
    dp = solve(h, 1.35, m, lim)
    lp = solve_lp(h, 1.35, m, lim)
    assert dp.action[:8].tolist().count(2) >= 6 and not (dp.action[8:] == 2).any()
    assert dp.soc_kwh.min() >= 1.35 - 1e-9 and dp.soc_kwh.max() <= 13.5
    assert abs(dp.cost_gbp.sum() - lp.objective_gbp) <= 0.005 * float((price * h.load).sum())


def test_pv_first_bound_sits_between_the_lp_and_what_the_planner_achieves() -> None:
    """Midday PV beyond the house's needs, export at 15p, a cheap night and a dear evening: the LP would export
    the PV and refill the battery at night; a real battery stores the PV first. The MILP keeps that rule."""
    m = BatteryModel()
    lim = Limits(0.0, 13.5)
    t_len = 48
    price = np.full(t_len, 0.30)
    price[:12] = 0.05  # cheap night
    pv = np.zeros(t_len)
    pv[16:32] = 1.5  # 24 kWh of midday sun
    load = np.full(t_len, 0.3)
    h = Horizon(price, np.full(t_len, 0.15), load, pv, np.ones(t_len, dtype=bool))
    lp = solve_lp(h, 0.0, m, lim)
    milp = solve_lp(h, 0.0, m, lim, pv_first=True)
    dp = solve(h, 0.0, m, lim)
    dp_cost = float(dp.cost_gbp.sum())
    assert lp.cost_gbp < milp.cost_gbp - 0.05  # the relaxation is worth real money here
    assert milp.cost_gbp <= dp_cost + 1e-6  # and the MILP is still a bound on what the DP can do
    assert dp_cost - milp.cost_gbp <= 0.005 * float((price * load).sum())
