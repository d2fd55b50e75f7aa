"""Exact dynamic programme over a discretised SOC grid (numpy, vectorised over states).

State: stored energy on a grid of ``soc_step_kwh`` (0.1 kWh: 136 states for 13.5 kWh). Moves per slot and state:
``self_use`` (the deficit from the battery down to the reserve, or PV charging), ``hold`` (no discharge; PV still
charges), ``charge`` at the full grid-charge rate (up to the cap), and ``charge`` by k = 1..K whole grid steps.
Self-use, hold and full-rate charging move the SOC by their real (continuous) energy flows and the next slot's
value is interpolated linearly between grid points, so the grid's rounding cannot be exploited; the k-step
charges of every state are read through one strided view of the (shifted) next value function. The backward pass
is about eight numpy calls per slot on a 136 x 18 array; the forward pass starts from the real SOC, applies the
real physics and, in charge slots, picks the charge that lands on the best grid point.

Ties are broken deterministically by the order of the candidates: self-use, then hold, then charging (full rate,
then the smallest step first). So among equal-cost plans the planner prefers not to charge, and identical inputs
give identical actions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from services.planner.battery import CHARGE, HOLD, SELF_USE, BatteryModel, Limits

INF = np.inf


@dataclass(frozen=True)
class Horizon:
    """The numeric inputs of one plan, one entry per slot."""

    price: np.ndarray  # import GBP/kWh used for cost (finite everywhere; estimates where unknown)
    export_price: np.ndarray  # GBP/kWh earned per exported kWh
    load: np.ndarray  # kWh
    pv: np.ndarray  # kWh
    charge_ok: np.ndarray  # bool: grid charging allowed (known price, not peak, under the limit)


@dataclass(frozen=True)
class Solution:
    action: np.ndarray  # int8 per slot: SELF_USE / HOLD / CHARGE
    soc_kwh: np.ndarray  # expected stored energy at the end of each slot
    grid_import_kwh: np.ndarray
    grid_export_kwh: np.ndarray
    cost_gbp: np.ndarray  # import cost minus export earnings (wear excluded)
    wear_gbp: float
    terminal_value_gbp: float  # value credited for the energy left at the end


def terminal_linear(m: BatteryModel, lim: Limits, value_gbp_per_kwh: float) -> np.ndarray:
    """A terminal value function (as a cost, so negative) crediting each stored kWh above the reserve."""
    q = m.soc_step_kwh
    n = round(m.capacity_kwh / q) + 1
    soc = np.arange(n) * q
    return -value_gbp_per_kwh * (soc - lim.min_kwh)


def value_function(h: Horizon, m: BatteryModel, lim: Limits, terminal: np.ndarray | None = None) -> np.ndarray:
    """The optimal cost-to-go from the start of ``h`` for every grid state (the backward pass only)."""
    return _solve(h, 0.0, m, lim, terminal, values_only=True)  # type: ignore[return-value]


def solve(
    h: Horizon,
    soc0_kwh: float,
    m: BatteryModel,
    lim: Limits,
    terminal: np.ndarray | None = None,
) -> Solution:
    """The cheapest sequence of actions over ``h`` from ``soc0_kwh`` (terminal: cost per grid state, or 0)."""
    return _solve(h, soc0_kwh, m, lim, terminal)  # type: ignore[return-value]


def _solve(
    h: Horizon,
    soc0_kwh: float,
    m: BatteryModel,
    lim: Limits,
    terminal: np.ndarray | None = None,
    values_only: bool = False,
) -> Solution | np.ndarray:
    q = m.soc_step_kwh
    n_states = round(m.capacity_kwh / q) + 1
    top = n_states - 1
    full = top * q
    t_len = len(h.price)
    ec, ed, w = m.eta_charge, m.eta_discharge, m.wear_gbp_per_kwh
    capx = min(lim.charge_cap_kwh, full) / q  # the grid-charge cap in grid units (may be fractional)
    k_grid = int(np.floor(m.grid_charge_kwh * ec / q + 1e-9))  # grid-charge steps per slot

    net = h.load - h.pv
    deficit = np.maximum(net, 0.0)
    surplus = np.maximum(-net, 0.0)

    # Self-use and hold move the SOC by their real (continuous) flows; the value of the next state is interpolated
    # linearly between grid points, so the grid's rounding cannot be exploited. Charge moves add whole steps.
    states = np.arange(n_states)
    soc = states * q
    p, e = h.price[:, None], h.export_price[:, None]
    pv_in = np.minimum(np.minimum(surplus, m.charge_kwh)[:, None], ((full - soc) / ec)[None, :])  # AC kWh
    hold_next = soc[None, :] + pv_in * ec
    hold_cost = p * deficit[:, None] - e * (surplus[:, None] - pv_in) + w * pv_in * ec
    dc = np.minimum(np.minimum(deficit, m.discharge_kwh)[:, None] / ed, np.maximum(soc - lim.min_kwh, 0.0)[None, :])
    has_deficit = deficit[:, None] > 0
    su_next = np.where(has_deficit, soc[None, :] - dc, hold_next)
    su_cost = np.where(has_deficit, p * (deficit[:, None] - dc * ed) + w * dc, hold_cost)

    # Charge at the full grid-charge rate (up to the cap): continuous like self-use, so the grid's step does not
    # shave the charge rate. Then the band: k = 1..K whole steps on top of the (then never clipped) PV charging.
    pv_full = np.minimum(surplus, m.charge_kwh)
    after_pv = soc[None, :] + (pv_full * ec)[:, None]
    g_full = np.minimum(
        np.minimum(m.grid_charge_kwh, m.charge_kwh - pv_full)[:, None], (min(lim.charge_cap_kwh, full) - after_pv) / ec
    )
    full_ok = (g_full > 1e-9) & h.charge_ok[:, None]
    full_next = np.where(full_ok, after_pv + np.maximum(g_full, 0.0) * ec, soc[None, :])
    full_cost = (
        p * (deficit[:, None] + g_full) - e * (surplus - pv_full)[:, None] + w * (pv_full[:, None] + g_full) * ec
    )
    full_cost = np.where(full_ok, full_cost, INF)
    # Next positions in grid units (T, 3, N) and costs (T, N, 3). No clipping: every move stays within [0, full]
    # and np.interp holds the end values for a rounding error beyond.
    x3 = np.empty((t_len, 3, n_states))
    np.multiply(su_next, 1 / q, out=x3[:, 0])
    np.multiply(hold_next, 1 / q, out=x3[:, 1])
    np.multiply(full_next, 1 / q, out=x3[:, 2])
    c3 = np.empty((t_len, n_states, 3))
    c3[:, :, 0] = su_cost
    c3[:, :, 1] = hold_cost
    c3[:, :, 2] = full_cost

    pv_steps = pv_full * ec / q
    fl = np.floor(pv_steps + 1e-9).astype(np.int64)
    frac = np.maximum(pv_steps - fl, 0.0)
    ks = np.arange(1, k_grid + 1)
    base = h.price * deficit - h.export_price * (surplus - pv_full) + w * pv_full * ec
    band_cost = base[:, None] + (h.price[:, None] / ec + w) * ks[None, :] * q
    room_k = np.floor(m.charge_kwh * ec / q - pv_steps + 1e-9)  # total charge power left for grid steps
    band_cost = np.where(ks[None, :] <= room_k[:, None], band_cost, INF)
    band_cost[~h.charge_ok] = INF
    any_band = np.isfinite(band_cost).any(axis=1) | full_ok.any(axis=1)
    jmax = np.floor(capx - frac + 1e-9).astype(np.int64)  # last state j with j + frac within the cap

    value = np.zeros(n_states) if terminal is None else np.asarray(terminal, dtype=float).copy()
    width = n_states + int(fl.max(initial=0)) + k_grid + 2
    vband = np.full(width, INF)
    win = as_strided(vband, shape=(width - k_grid + 1, k_grid), strides=(vband.strides[0], vband.strides[0]))
    n_cand = 3 + k_grid
    qbuf = np.empty((n_states, n_cand))
    qflat = qbuf.reshape(-1)
    base_idx = states * n_cand
    choice = np.empty((t_len, n_states), dtype=np.int16)
    values = np.empty((t_len + 1, n_states))
    values[t_len] = value
    xs = states.astype(float)
    right_inf = INF
    cap_full = jmax >= top
    for t in range(t_len - 1, -1, -1):
        if any_band[t]:
            np.add(np.interp(x3[t], xs, value).T, c3[t], out=qbuf[:, :3])
            ft = frac[t]
            if ft > 0:
                vband[:n_states] = np.interp(xs + ft, xs, value, right=right_inf)
            else:
                vband[:n_states] = value
            if not cap_full[t]:
                vband[jmax[t] + 1 : n_states] = INF
            r = int(fl[t]) + 1
            np.add(win[r : r + n_states], band_cost[t], out=qbuf[:, 3:])
            c = qbuf.argmin(axis=1)
        else:
            np.add(np.interp(x3[t, :2], xs, value).T, c3[t, :, :2], out=qbuf[:, :2])
            c = qbuf[:, :2].argmin(axis=1)
        choice[t] = c
        value = qflat[base_idx + c]
        values[t] = value
    if values_only:
        return value

    # Forward pass from the real SOC with the real physics (as ``battery.step_slot``, inlined for speed), taking
    # each slot's move from the nearest grid state.
    cap = min(lim.charge_cap_kwh, full)
    lo = lim.min_kwh
    chg, dmax, gmax = m.charge_kwh, m.discharge_kwh, m.grid_charge_kwh
    defs, surs, prices = deficit.tolist(), surplus.tolist(), h.price.tolist()
    act = [0] * t_len
    socs = [0.0] * t_len
    grid = [0.0] * t_len
    s = min(max(float(soc0_kwh), 0.0), full)
    moved = 0.0
    for t in range(t_len):
        c = int(choice[t, min(int(s / q + 0.5), top)])
        d, sur = defs[t], surs[t]
        if c == 0 and d > 0:
            out = min(min(d, dmax) / ed, max(s - lo, 0.0))
            s_new, g, a = s - out, d - out * ed, SELF_USE
        else:
            pv = min(sur, chg, max(full - s, 0.0) / ec)
            s_new, g, a = s + pv * ec, d - (sur - pv), HOLD if d > 0 else SELF_USE
            if c >= 2:
                gc = _charge_amount(s_new, min(gmax, chg - pv), cap, values[t + 1], q, ec, prices[t], w)
                if gc > 1e-12:
                    s_new, g, a = s_new + gc * ec, g + gc, CHARGE
        act[t], socs[t], grid[t] = a, s_new, g
        moved += abs(s_new - s)
        s = s_new
    g_arr = np.array(grid)
    imp, exp_ = np.maximum(g_arr, 0.0), np.maximum(-g_arr, 0.0)
    act = np.array(act, dtype=np.int8)
    socs = np.array(socs)
    cost = h.price * imp - h.export_price * exp_
    term = 0.0
    if terminal is not None and t_len:
        term = -float(np.interp(s, soc, np.asarray(terminal, dtype=float)))
    return Solution(
        action=act,
        soc_kwh=socs,
        grid_import_kwh=imp,
        grid_export_kwh=exp_,
        cost_gbp=cost,
        wear_gbp=float(w * moved),
        terminal_value_gbp=term,
    )


def _charge_amount(
    s: float, g_max: float, cap: float, v_next: np.ndarray, q: float, ec: float, price: float, wear: float
) -> float:
    """The grid charge (AC kWh) from the real SOC ``s`` (after PV) that minimises money plus the interpolated value
    of the next state. With a piecewise-linear value the best target is a grid point or the rate limit, so only
    those are tried: the plan lands exactly where the DP wanted instead of up to a grid step beyond."""
    hi = min(s + g_max * ec, cap)
    if hi <= s:
        return 0.0
    per_kwh = price / ec + wear  # money per stored kWh added
    top = len(v_next) - 1

    def v_at(x: float) -> float:  # v_next interpolated at SOC x (scalar arithmetic: a plan calls this often)
        i = min(int(x / q), top - 1)
        return float(v_next[i] + (x / q - i) * (v_next[i + 1] - v_next[i]))

    best, best_x = v_at(s), s
    j0 = int(np.floor(s / q + 1e-9)) + 1
    j1 = int(np.floor(hi / q + 1e-9))
    for x in [j * q for j in range(j0, j1 + 1)] + [hi]:
        val = v_at(x) + per_kwh * (x - s)
        if val < best:  # strictly: among equal targets the smallest charge (none before some)
            best, best_x = val, x
    return (best_x - s) / ec
