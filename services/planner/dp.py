"""Exact dynamic programme over a discretised SOC grid (numpy, vectorised over states).

State: stored energy on a grid of ``soc_step_kwh``. Per slot and state three kinds of move exist:
``self_use`` (full discharge into the deficit, or PV charging), ``hold`` (no discharge, PV still charges) and
``charge`` (hold plus k grid steps, k = 1..K). A move's money depends only on the slot and on the SOC change, so
per slot a small table ``cost[delta]`` is built, and the charge moves of every state are read through one strided
view of the next slot's value function (a band of K reachable states). The backward pass is a handful of numpy
calls per slot; the forward pass follows the stored argmin from the starting state.

Ties are broken deterministically by the order of the candidates: self-use, then hold, then the smallest charge.
So among equal-cost plans the planner prefers not to charge and charges as little as it can; with identical
inputs a replan yields identical actions.
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
    soc_kwh: np.ndarray  # stored energy at the end of each slot (grid values)
    grid_import_kwh: np.ndarray
    grid_export_kwh: np.ndarray
    cost_gbp: np.ndarray  # import cost minus export earnings (wear excluded)
    wear_gbp: float
    value_to_go: np.ndarray  # expected cost-to-go from the start of each slot along the path (incl. terminal)
    terminal_value_gbp: float  # value credited for the energy left at the end


def terminal_linear(m: BatteryModel, lim: Limits, value_gbp_per_kwh: float) -> np.ndarray:
    """A terminal value function (as a cost, so negative) crediting each stored kWh above the reserve."""
    q = m.soc_step_kwh
    n = int(round(m.capacity_kwh / q)) + 1
    soc = np.arange(n) * q
    return -value_gbp_per_kwh * (soc - lim.min_kwh)


def solve(
    h: Horizon,
    soc0_kwh: float,
    m: BatteryModel,
    lim: Limits,
    terminal: np.ndarray | None = None,
    keep_values: bool = False,
) -> Solution:
    """The cheapest sequence of actions over ``h`` from ``soc0_kwh`` (terminal: cost per grid state, or 0)."""
    q = m.soc_step_kwh
    n_states = int(round(m.capacity_kwh / q)) + 1
    top = n_states - 1
    t_len = len(h.price)
    ec, ed = m.eta_charge, m.eta_discharge
    min_i = int(np.ceil(lim.min_kwh / q - 1e-9))
    cap_i = min(int(np.floor(lim.charge_cap_kwh / q + 1e-9)), top)
    k_grid = int(np.floor(m.grid_charge_kwh * ec / q + 1e-9))  # grid-charge steps per slot
    up_max = int(np.floor(m.charge_kwh * ec / q + 1e-9))  # all charging, PV + grid
    dn_max = int(np.floor(m.discharge_kwh / ed / q + 1e-9))

    net = h.load - h.pv
    deficit = np.maximum(net, 0.0)
    surplus = np.maximum(-net, 0.0)
    need = np.minimum(np.rint(deficit / ed / q), dn_max).astype(np.int64)  # self-use discharge steps
    pv_up = np.minimum(np.rint(surplus * ec / q), up_max).astype(np.int64)  # PV charging steps

    # Self-use and hold are costed with their real (continuous) energy flows; only the next state is snapped to
    # the grid (rounded to nearest, so the SOC error has no bias). Charge moves add exact grid steps.
    states = np.arange(n_states)
    soc = states * q
    p, e, w = h.price[:, None], h.export_price[:, None], m.wear_gbp_per_kwh
    pv_in = np.minimum(np.minimum(surplus, m.charge_kwh)[:, None], ((top - states) * q / ec)[None, :])  # AC kWh
    hold_d = np.rint(pv_in * ec / q).astype(np.int64)
    hold_cost = p * deficit[:, None] - e * (surplus[:, None] - pv_in) + w * pv_in * ec
    dc = np.minimum(np.minimum(deficit, m.discharge_kwh)[:, None] / ed, np.maximum(soc - lim.min_kwh, 0.0)[None, :])
    down = np.maximum(-np.rint(dc / q).astype(np.int64), np.minimum(min_i - states, 0)[None, :])  # never below reserve
    su_d = np.where(deficit[:, None] > 0, down, hold_d)
    su_cost = np.where(deficit[:, None] > 0, p * (deficit[:, None] - dc * ed) + w * dc, hold_cost)
    two_next = np.stack([su_d, hold_d], axis=2) + states[None, :, None]
    two_cost = np.stack([su_cost, hold_cost], axis=2)

    # Charge band: k = 1..K grid steps on top of the PV charging (which is then never clipped by a full battery).
    ks = np.arange(1, k_grid + 1)
    base = h.price * deficit - h.export_price * (surplus - np.minimum(surplus, m.charge_kwh))
    base += w * np.minimum(surplus, m.charge_kwh) * ec
    band_cost = base[:, None] + (h.price[:, None] / ec + w) * ks[None, :] * q
    band_cost = np.where(pv_up[:, None] + ks[None, :] <= up_max, band_cost, INF)
    band_cost[~h.charge_ok] = INF
    any_band = np.isfinite(band_cost).any(axis=1)

    value = np.zeros(n_states) if terminal is None else np.asarray(terminal, dtype=float).copy()
    # V for the band, padded with +inf so states beyond the charge cap (or full) are unreachable by charging.
    width = n_states + up_max + k_grid + 2
    vband = np.full(width, INF)
    win = as_strided(vband, shape=(width - k_grid + 1, k_grid), strides=(vband.strides[0], vband.strides[0]))
    n_cand = 2 + k_grid
    qbuf = np.empty((n_states, n_cand))
    qflat = qbuf.reshape(-1)
    base2 = states * n_cand
    choice = np.empty((t_len, n_states), dtype=np.int16)
    values = np.empty((t_len + 1, n_states)) if keep_values else None
    if values is not None:
        values[t_len] = value
    for t in range(t_len - 1, -1, -1):
        np.add(two_cost[t], value[two_next[t]], out=qbuf[:, :2])
        if any_band[t]:
            vband[: cap_i + 1] = value[: cap_i + 1]
            p = int(pv_up[t]) + 1
            np.add(win[p : p + n_states], band_cost[t], out=qbuf[:, 2:])
            c = qbuf.argmin(axis=1)
        else:
            c = qbuf[:, :2].argmin(axis=1)
        value = qflat[base2 + c]
        choice[t] = c
        if values is not None:
            values[t] = value

    # Forward pass along the chosen moves.
    i = min(max(int(round(soc0_kwh / q)), 0), top)
    act = np.empty(t_len, dtype=np.int8)
    soc_idx = np.empty(t_len, dtype=np.int64)
    dsel = np.empty(t_len, dtype=np.int64)
    for t in range(t_len):
        c = int(choice[t, i])
        if c == 0:
            d = int(su_d[t, i])
            a = SELF_USE
        elif c == 1:
            d = int(hold_d[t, i])
            a = HOLD
        else:
            d = int(pv_up[t]) + c - 1
            a = CHARGE
        act[t] = a
        dsel[t] = d
        i += d
        soc_idx[t] = i
    # Money along the path, with the same flows as the backward pass.
    start_idx = np.r_[min(max(int(round(soc0_kwh / q)), 0), top), soc_idx[:-1]]
    rows = np.arange(t_len)
    cost = np.where(act == SELF_USE, su_cost[rows, start_idx], hold_cost[rows, start_idx])
    k_sel = np.where(act == CHARGE, dsel - pv_up, 0)
    cost = cost + np.where(act == CHARGE, band_cost[rows, np.maximum(k_sel - 1, 0)] - hold_cost[rows, start_idx], 0)
    extra = np.where(act == CHARGE, k_sel * q / ec, 0.0)
    pv_sel = np.where(deficit > 0, 0.0, pv_in[rows, start_idx])
    dc_sel = np.where((act == SELF_USE) & (deficit > 0), dc[rows, start_idx], 0.0)
    imp = deficit - dc_sel * ed + extra
    exp_ = surplus - pv_sel
    g = imp - exp_
    imp, exp_ = np.maximum(g, 0.0), np.maximum(-g, 0.0)
    wear = float(w * (np.abs(dsel).sum() * q))
    cost = cost - w * (np.where(act == SELF_USE, dc_sel, 0.0) + pv_sel * ec + extra * ec)
    term = 0.0 if terminal is None else float(-np.asarray(terminal)[soc_idx[-1]]) if t_len else 0.0
    # A self-use slot that charges from PV is labelled self-use; a hold with nothing to hold is self-use too.
    act = np.where((act == HOLD) & (deficit <= 0), SELF_USE, act).astype(np.int8)
    vtg = np.empty(0) if values is None else values[rows, start_idx]
    return Solution(
        action=act,
        soc_kwh=soc_idx * q,
        grid_import_kwh=imp,
        grid_export_kwh=exp_,
        cost_gbp=cost,
        wear_gbp=wear,
        value_to_go=vtg,
        terminal_value_gbp=term,
    )
