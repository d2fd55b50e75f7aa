"""What a household would pay without batsched, over the same slots and with the same physics.

- ``no_battery``: the house imports its deficit and exports its PV surplus;
- ``self_use``: the battery only ever runs in self-use (the Powerwall's default);
- ``seed_rule``: the seed app's rule: charge in the cheapest N known slots before the next peak, N from the energy
  needed to get through the peak, never in the peak, never above the price limit.
"""

from __future__ import annotations

import math

import numpy as np

from services.planner.battery import BatteryModel, Limits, step_slot


def no_battery_cost(price: np.ndarray, export_price: np.ndarray, load: np.ndarray, pv: np.ndarray) -> float:
    net = load - pv
    return float(np.sum(price * np.maximum(net, 0.0) - export_price * np.maximum(-net, 0.0)))


def seed_rule_charge_slots(
    price: np.ndarray,
    load: np.ndarray,
    pv: np.ndarray,
    peak: np.ndarray,
    soc_kwh: float,
    model: BatteryModel,
    limits: Limits,
    max_charge_price: float,
) -> np.ndarray:
    """Which of the given slots (from now) the seed rule charges in: a boolean mask."""
    charge = np.zeros(len(price), dtype=bool)
    if len(price) == 0 or peak[0]:
        return charge
    peak_idx = np.flatnonzero(peak)
    if peak_idx.size == 0:
        return charge
    p0 = int(peak_idx[0])
    after = np.flatnonzero(~peak[p0:])
    p1 = p0 + (int(after[0]) if after.size else len(price) - p0)
    need_dc = np.sum(np.maximum(load[:p1] - pv[:p1], 0.0)) / model.eta_discharge - (soc_kwh - limits.min_kwh)
    need_dc = min(need_dc, limits.charge_cap_kwh - soc_kwh)
    if need_dc <= 0:
        return charge
    n = math.ceil(need_dc / model.eta_charge / model.grid_charge_kwh)
    window = price[:p0]
    ok = np.flatnonzero(np.isfinite(window) & (np.where(np.isfinite(window), window, np.inf) <= max_charge_price))
    if ok.size == 0:
        return charge
    cheapest = ok[np.argsort(window[ok], kind="stable")[:n]]
    charge[cheapest] = True
    return charge


def simulate(
    actions: np.ndarray,
    price: np.ndarray,
    export_price: np.ndarray,
    load: np.ndarray,
    pv: np.ndarray,
    soc0_kwh: float,
    model: BatteryModel,
    limits: Limits,
) -> tuple[float, float]:
    """Money and final SOC when ``actions`` are applied (charge targets the charge cap)."""
    soc = soc0_kwh
    money = 0.0
    for t in range(len(price)):
        soc, imp, exp_ = step_slot(model, limits, soc, int(actions[t]), limits.charge_cap_kwh, load[t], pv[t])
        money += price[t] * imp - export_price[t] * exp_
    return money, soc
