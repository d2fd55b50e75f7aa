"""The DP against the LP of the same model (HiGHS), on random and on real plan inputs."""

from __future__ import annotations

import numpy as np

from services.planner.battery import BatteryModel, Limits
from services.planner.dp import Horizon, solve
from services.planner.lp import solve_lp
from tools.bench_planner import agreement


def test_dp_is_within_half_a_percent_of_the_lp_on_most_inputs_and_never_beats_it() -> None:
    rand, real = agreement(30, 30, seed=5)
    both = np.concatenate([rand, real])
    print(f"DP excess over LP, % of no-battery cost: median {np.median(both):.3f}, max {both.max():.3f}")
    assert both.min() > -0.01, "the DP beat the LP: the two models differ"
    assert np.median(both) <= 0.1
    assert np.percentile(both, 90) <= 0.5


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
