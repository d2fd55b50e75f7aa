"""The planner's model as a linear programme, solved with HiGHS (``highspy``): a bound to check the DP against.

Same physics as the DP (``battery.py``) but continuous: the battery may discharge part of a deficit and charge
any amount and may export PV that it has room for; importing while exporting PV and charging while discharging
in one slot are limited to their convex hulls (imp/g_max + exp/surplus <= 1, c/c_max + d/d_max <= 1). No real
Powerwall mode does these things, so its optimum is a slightly optimistic bound, never a plan.
The charge cap is exact without PV; with PV the SOC bound is the full capacity.

``exact=True`` adds the binaries that take those freedoms away (self-use covers the whole deficit or stops at the
reserve; no charging while discharging; PV charges before it is exported): a mixed-integer programme of the DP's
own model over continuous SOC, the optimum the DP is checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

import highspy
import numpy as np

from services.planner.battery import BatteryModel, Limits
from services.planner.dp import Horizon

N_VARS = 5  # per slot: import, export, charge (AC in), discharge (AC out), SOC at the slot's end


@dataclass(frozen=True)
class LpResult:
    cost_gbp: float  # import cost - export earnings + wear (without the terminal credit)
    objective_gbp: float  # cost - terminal value
    soc_kwh: np.ndarray
    grid_import_kwh: np.ndarray
    grid_export_kwh: np.ndarray


def solve_lp(
    h: Horizon,
    soc0_kwh: float,
    m: BatteryModel,
    lim: Limits,
    end_value_gbp_per_kwh: float = 0.0,
    pv_first: bool = False,
    time_limit_s: float | None = None,
    exact: bool = False,
) -> LpResult:
    """Minimise money over ``h`` from ``soc0_kwh``, crediting energy left at the end at a linear value.

    ``pv_first`` makes it a mixed-integer programme that keeps the one rule of the real battery the LP relaxes most:
    a PV surplus charges the battery before anything is exported, so PV beyond the charge power is the only export
    until the battery is full (a binary per surplus slot). Every schedule the DP can follow satisfies it, so the
    optimum is still a bound, and a much tighter one with PV. With a time limit the MIP's dual bound is reported
    (still a valid bound). ``exact`` (implies ``pv_first``): the DP's model exactly, see the module text."""
    t_len = len(h.price)
    ec, ed, w = m.eta_charge, m.eta_discharge, m.wear_gbp_per_kwh
    net = h.load - h.pv
    surplus = np.maximum(-net, 0.0)
    deficit = np.maximum(net, 0.0)
    n = N_VARS * t_len
    cost = np.zeros(n)
    lo = np.zeros(n)
    hi = np.zeros(n)
    cost[0::5] = h.price
    cost[1::5] = -h.export_price
    cost[2::5] = w * ec
    cost[3::5] = w / ed
    cost[5 * (t_len - 1) + 4] = -end_value_gbp_per_kwh
    # In a PV-surplus slot the house needs nothing from the grid: only grid charging imports, so without it the
    # import is 0 (else the LP could store and export the same PV and buy the difference: charging in a slot where
    # charging is forbidden).
    hi[0::5] = np.where((surplus > 0) & ~h.charge_ok, 0.0, highspy.kHighsInf)
    hi[1::5] = surplus
    hi[2::5] = np.minimum(m.charge_kwh, surplus + np.where(h.charge_ok, m.grid_charge_kwh, 0.0))
    hi[3::5] = np.minimum(deficit, m.discharge_kwh)
    lo[4::5] = min(lim.min_kwh, soc0_kwh)
    # Grid charging stops at the charge cap; only PV can fill beyond it. Without PV that is the bound max(cap, s0);
    # with PV the bound is the capacity (a relaxation: grid energy could then end up above the cap).
    hi[4::5] = m.capacity_kwh if surplus.any() else min(max(lim.charge_cap_kwh, soc0_kwh), m.capacity_kwh)

    # Rows: 2t = energy balance at the meter, 2t+1 = SOC continuity.
    t = np.arange(t_len)
    bal, cont = 2 * t, 2 * t + 1
    col = N_VARS * t
    last = t[:-1]
    coo = [
        (col, bal, np.ones(t_len)),  # import
        (col + 1, bal, -np.ones(t_len)),  # export
        (col + 2, bal, -np.ones(t_len)),  # charge draws from the meter ...
        (col + 2, cont, np.full(t_len, -ec)),  # ... and stores ec of it
        (col + 3, bal, np.ones(t_len)),  # discharge feeds the meter ...
        (col + 3, cont, np.full(t_len, 1.0 / ed)),  # ... and takes 1/ed from store
        (col + 4, cont, np.ones(t_len)),  # SOC at the end of slot t
        (N_VARS * last + 4, cont[1:], -np.ones(t_len - 1)),  # ... is the start of slot t+1
    ]
    # A real battery either charges or discharges in a slot: c/c_max + d/d_max <= 1 holds for every real schedule
    # and stops the LP from burning energy through the losses at negative prices (rows 2T + t).
    both = (hi[2::5] > 0) & (hi[3::5] > 0)
    tb = t[both]
    coo += [
        (col[both] + 2, 2 * t_len + tb, 1.0 / hi[2::5][both]),
        (col[both] + 3, 2 * t_len + tb, 1.0 / hi[3::5][both]),
    ]
    # Importing (to grid-charge) while exporting PV: a real battery stores the PV first, so imp/g_max + exp/sur <= 1
    # holds for every real schedule (rows 3T + t).
    pvs = (surplus > 0) & h.charge_ok
    tp = t[pvs]
    coo += [
        (col[pvs], 3 * t_len + tp, np.full(tp.size, 1.0 / m.grid_charge_kwh)),
        (col[pvs] + 1, 3 * t_len + tp, 1.0 / surplus[pvs]),
    ]
    n_rows = 4 * t_len
    rlo_extra: list[np.ndarray] = []
    rhi_extra: list[np.ndarray] = []
    n_bin = 0  # binary columns, after the continuous ones: cost 0, bounds [0, 1]
    if exact:
        # The DP's self-use exactly: in a deficit slot the battery either covers the whole deficit (up to its
        # discharge power) or stops at the reserve (y: discharging, u: reserve reached), and never charges while
        # it discharges. Binaries per deficit slot, rows: d <= D*y, d >= D*(y - u), SOC <= reserve + M*(1 - u),
        # u <= y, c <= c_max*(1 - y).
        td = t[hi[3::5] > 0]
        k = td.size
        dmax_t = hi[3::5][td]
        cmax_t = hi[2::5][td]
        big = m.capacity_kwh
        y, u = n + np.arange(k), n + k + np.arange(k)
        n_bin += 2 * k
        r = n_rows + np.arange(k)
        coo += [
            (col[td] + 3, r, np.ones(k)),
            (y, r, -dmax_t),
            (col[td] + 3, r + k, np.ones(k)),
            (y, r + k, -dmax_t),
            (u, r + k, dmax_t),
            (col[td] + 4, r + 2 * k, np.ones(k)),
            (u, r + 2 * k, np.full(k, big)),
            (u, r + 3 * k, np.ones(k)),
            (y, r + 3 * k, -np.ones(k)),
            (col[td] + 2, r + 4 * k, np.ones(k)),
            (y, r + 4 * k, cmax_t),
        ]
        neg = np.full(k, -highspy.kHighsInf)
        rlo_extra += [neg, np.zeros(k), neg, neg, neg]
        rhi_extra += [np.zeros(k), np.full(k, highspy.kHighsInf), np.full(k, lim.min_kwh + big), np.zeros(k), cmax_t]
        n_rows += 5 * k
    if (pv_first or exact) and surplus.any():
        # Binary z per surplus slot: export <= max(surplus - charge power, 0) + surplus * z, SOC >= full * z.
        ts = t[surplus >= 0.01]  # tiny surpluses stay relaxed: their 1/surplus-sized rows upset the MIP numerics
        k = ts.size
        zcol = n + n_bin + np.arange(k)
        n_bin += k
        full = m.capacity_kwh - 1e-6
        r_exp = n_rows + np.arange(k)
        r_full = n_rows + k + np.arange(k)
        coo += [
            (col[ts] + 1, r_exp, np.ones(k)),
            (zcol, r_exp, -surplus[ts]),
            (col[ts] + 4, r_full, np.ones(k)),
            (zcol, r_full, np.full(k, -full)),
        ]
        rlo_extra += [np.full(k, -highspy.kHighsInf), np.zeros(k)]
        rhi_extra += [np.maximum(surplus[ts] - m.charge_kwh, 0.0), np.full(k, highspy.kHighsInf)]
        n_rows += 2 * k
    integrality = None
    if n_bin:
        cost = np.concatenate([cost, np.zeros(n_bin)])
        lo = np.concatenate([lo, np.zeros(n_bin)])
        hi = np.concatenate([hi, np.ones(n_bin)])
        integrality = np.concatenate([np.zeros(n, dtype=int), np.ones(n_bin, dtype=int)])
        n += n_bin
    c_idx = np.concatenate([c for c, _, _ in coo])
    r_idx = np.concatenate([r for _, r, _ in coo])
    vals = np.concatenate([v for _, _, v in coo])
    order = np.lexsort((r_idx, c_idx))
    starts = np.concatenate([[0], np.cumsum(np.bincount(c_idx, minlength=n))])
    index = r_idx[order]
    value = vals[order]
    rlo = np.zeros(4 * t_len)
    rlo[bal] = net
    rlo[1] = soc0_kwh
    rhi = rlo.copy()
    rlo[2 * t_len :] = -highspy.kHighsInf
    rhi[2 * t_len :] = 1.0
    rlo = np.concatenate([rlo, *rlo_extra])
    rhi = np.concatenate([rhi, *rhi_extra])
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.num_row_ = n_rows
    lp.col_cost_ = cost
    lp.col_lower_ = lo
    lp.col_upper_ = hi
    lp.row_lower_ = rlo
    lp.row_upper_ = rhi
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.array(value)
    if integrality is not None:
        lp.integrality_ = [highspy.HighsVarType(int(v)) for v in integrality]
    solver = highspy.Highs()
    solver.setOptionValue("output_flag", False)
    if time_limit_s is not None:
        solver.setOptionValue("time_limit", float(time_limit_s))
    solver.passModel(lp)
    solver.run()
    status = solver.getModelStatus()
    timed_out = status == highspy.HighsModelStatus.kTimeLimit and integrality is not None
    if status != highspy.HighsModelStatus.kOptimal and not timed_out:
        raise RuntimeError(f"LP not solved: {solver.modelStatusToString(status)}")
    x = np.array(solver.getSolution().col_value)
    soc = x[4 : 5 * t_len : 5]
    objective = float(cost @ x)
    if integrality is not None:
        objective = min(objective, float(solver.getInfo().mip_dual_bound))  # a bound even when stopped early
    objective += end_value_gbp_per_kwh * lim.min_kwh  # the DP credits energy above the reserve
    return LpResult(
        cost_gbp=objective + end_value_gbp_per_kwh * (float(soc[-1]) - lim.min_kwh),
        objective_gbp=objective,
        soc_kwh=soc,
        grid_import_kwh=x[0 : 5 * t_len : 5],
        grid_export_kwh=x[1 : 5 * t_len : 5],
    )
