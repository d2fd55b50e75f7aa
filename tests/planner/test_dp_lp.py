"""The DP against the LP of the same model (HiGHS), on random and on real plan inputs."""

from __future__ import annotations

import numpy as np
import pytest

from services.planner import dp_kernel
from services.planner.battery import BatteryModel, Limits
from services.planner.dp import Horizon, kernel_params, solve, terminal_linear, value_function
from services.planner.lp import solve_lp
from tools.bench_planner import agreement, random_inputs


def test_dp_is_within_half_a_percent_of_the_exact_optimum_on_every_input_and_never_beats_it() -> None:
    rand, real = agreement(30, 30, seed=5)
    both = np.concatenate([rand, real])
    print(f"DP excess over the exact optimum, % of no-battery cost: median {np.median(both):.3f}, max {both.max():.3f}")
    assert both.min() > -0.01, "the DP beat the mixed-integer optimum of its own model: the two models differ"
    assert np.median(both) <= 0.1
    assert both.max() <= 0.5, f"DP exceeds the exact optimum by {both.max():.3f} % of the no-battery cost"


def test_coarser_grid_is_close_on_most_inputs() -> None:
    """At 0.1 kWh the interpolation blurs the value function's kinks: close on most inputs, not on all (dp.py)."""
    rand, real = agreement(15, 15, seed=7, soc_step_kwh=0.1)
    both = np.concatenate([rand, real])
    assert both.min() > -0.01
    assert np.median(both) <= 0.1 and np.percentile(both, 90) <= 0.5


@pytest.mark.parametrize("seed", range(4))
def test_backward_pass_values_every_grid_state_by_the_forward_pass_rule(seed: int) -> None:
    """The backward pass finds the best charge with a monotone queue, the forward pass by trying every grid point:
    the two must price every grid state alike, or the plan follows values it would not have chosen."""
    rng = np.random.default_rng(seed)
    h, _, lim, end_value = random_inputs(rng)
    m = BatteryModel(soc_step_kwh=float(rng.choice([0.05, 0.1, 0.25])), wear_gbp_per_kwh=float(rng.choice([0, 0.02])))
    lim = Limits(lim.min_kwh, float(rng.uniform(lim.min_kwh, m.capacity_kwh)))  # a charge cap below full too
    values = value_function(h, m, lim, terminal_linear(m, lim, end_value))
    full = solve(h, 0.0, m, lim, terminal_linear(m, lim, end_value))
    assert full.action.size == len(h.price)
    n = len(values)
    par = kernel_params(m, lim)
    net = h.load - h.pv
    d, sur = np.maximum(net, 0.0), np.maximum(-net, 0.0)
    table = dp_kernel.backward(h.price, h.export_price, d, sur, h.charge_ok, terminal_linear(m, lim, end_value), par)
    assert np.allclose(table[0], values)
    for t in range(len(h.price)):
        by_rule = [
            dp_kernel._best(i * m.soc_step_kwh, h.price[t], h.export_price[t], d[t], sur[t], h.charge_ok[t],
                            table[t + 1], par)[0]
            for i in range(n)
        ]  # fmt: skip
        assert np.allclose(table[t], by_rule, rtol=0, atol=1e-9), f"slot {t}"


def test_the_kernel_runs_compiled() -> None:
    """Without numba the planner still plans, a hundred times slower: the installed product must not be that."""
    dp_kernel.warm_up()
    assert dp_kernel.COMPILED and dp_kernel.backward_fixed.signatures and dp_kernel.forward_fixed.signatures


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
