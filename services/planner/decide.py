"""The numeric heart shared by ``plan()`` (the service) and the replay (benchmark, backtest): arrays in, actions out.

Hard rules are applied here, before the optimiser sees the slots: no grid charging in the peak window, above the
maximum charge price, or where the price is unknown (a missing price is never read as 0; for costing such a slot
an estimate is used, but it can never be a charging slot).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from services.planner.battery import BatteryModel, Limits
from services.planner.dp import Horizon, Solution, grid_states, solve, terminal_linear, value_function
from services.planner.fixed import Fixed
from services.planner.horizon import SLOTS_PER_DAY, TAIL_END_SHARE, estimate_paths, fill_gaps
from shared.models import PriceEstimate


@dataclass(frozen=True)
class Tail:
    """Forecast slots appended after the known prices, only to value the energy left at the horizon's end."""

    price: np.ndarray  # forecast import price (NaN = no forecast: no charging there)
    export_price: np.ndarray
    load: np.ndarray
    pv: np.ndarray
    peak: np.ndarray


@dataclass(frozen=True)
class Decision:
    solution: Solution  # over the known slots only
    charge_ok: np.ndarray  # per known slot, after the hard rules
    end_value_gbp: float  # value credited for the energy left at the end of the known slots
    # The same valuation for any SOC: GBP credited per grid state of stored energy (0 at the reserve), so that
    # other strategies' end energy is valued as the plan's was (``comparison.py``). Zeros with no end value.
    end_credit: np.ndarray
    cost_price: np.ndarray  # the import price each known slot was costed at (estimates where unknown)


def charge_allowed(price: np.ndarray, peak: np.ndarray, max_price: float) -> np.ndarray:
    """The hard rules: a known price, outside the peak window, not above the limit."""
    known = np.isfinite(price)
    return known & ~peak & (np.where(known, price, np.inf) <= max_price)


def decide(
    price: np.ndarray,
    export_price: np.ndarray,
    load: np.ndarray,
    pv: np.ndarray,
    peak: np.ndarray,
    soc0_kwh: float,
    model: BatteryModel,
    limits: Limits,
    max_charge_price: float,
    tail: Tail | None = None,
    end_value_gbp_per_kwh: float = 0.0,
    terminal: np.ndarray | None = None,
    fixed: Fixed | None = None,
) -> Decision:
    """Plan the known slots. The energy left at their end is valued by (first that applies) a ``tail`` of forecast
    slots solved with them, a ``terminal`` value function (cost per grid state), or a linear value per kWh.
    ``fixed``: known slots whose move is not chosen (manual windows, Octopus sessions; see ``fixed.py``)."""
    n_known = len(price)
    ok = charge_allowed(price, peak, max_charge_price)
    fallback = np.nanmean(tail.price) if tail is not None and np.isfinite(tail.price).any() else np.nan
    cost_price = fill_gaps(price, fallback)
    mode = cap = None
    if fixed is not None and fixed.any:
        cost_price = np.where(fixed.money_price_zero, 0.0, cost_price) + fixed.price_adjust
        mode, cap = fixed.mode, fixed.cap_kwh
    if tail is not None and len(tail.price):
        t_ok = charge_allowed(tail.price, tail.peak, max_charge_price)
        h = Horizon(
            price=np.concatenate([cost_price, fill_gaps(tail.price, cost_price.mean())]),
            export_price=np.concatenate([export_price, tail.export_price]),
            load=np.concatenate([load, tail.load]),
            pv=np.concatenate([pv, tail.pv]),
            charge_ok=np.concatenate([ok, t_ok]),
            fixed=None if mode is None else np.concatenate([mode, np.zeros(len(tail.price), np.int8)]),
            fixed_cap_kwh=None if cap is None else np.concatenate([cap, np.zeros(len(tail.price))]),
        )
    else:
        h = Horizon(cost_price, export_price, load, pv, ok, mode, cap)
    if terminal is None and end_value_gbp_per_kwh:
        terminal = terminal_linear(model, limits, end_value_gbp_per_kwh)
    sol = solve(h, soc0_kwh, model, limits, terminal)
    tail_cost = float(sol.cost_gbp[n_known:].sum())
    if tail is not None and len(tail.price):  # the tail's cost-to-go from each state is what the end energy saves
        tail_h = Horizon(
            h.price[n_known:], h.export_price[n_known:], h.load[n_known:], h.pv[n_known:], h.charge_ok[n_known:]
        )
        cost_to_go = value_function(tail_h, model, limits, terminal)
    elif terminal is not None:
        cost_to_go = np.asarray(terminal, dtype=float)
    else:
        cost_to_go = np.zeros(grid_states(model))
    grid = np.arange(len(cost_to_go)) * model.soc_step_kwh
    end_credit = float(np.interp(limits.min_kwh, grid, cost_to_go)) - cost_to_go
    known = Solution(
        action=sol.action[:n_known],
        soc_kwh=sol.soc_kwh[:n_known],
        grid_import_kwh=sol.grid_import_kwh[:n_known],
        grid_export_kwh=sol.grid_export_kwh[:n_known],
        cost_gbp=sol.cost_gbp[:n_known],
        wear_gbp=sol.wear_gbp,
        terminal_value_gbp=sol.terminal_value_gbp,
    )
    return Decision(known, ok, sol.terminal_value_gbp - tail_cost, end_credit, np.asarray(h.price[:n_known]))


def scenario_value(
    paths: np.ndarray,
    export_price: np.ndarray,
    load: np.ndarray,
    pv: np.ndarray,
    peak: np.ndarray,
    model: BatteryModel,
    limits: Limits,
    max_charge_price: float,
    end_gbp_per_kwh: float,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """The value of stored energy at the end of the known prices, as a cost per grid state (0 at the reserve): the
    (weighted) mean over price ``paths`` (scenarios × slots after the known ones, finite) of the optimal cost-to-go
    over those slots with this load and PV; energy still left after them is credited at ``end_gbp_per_kwh``.

    Averaging value functions rather than prices keeps each path's spread (cheap nights, dear evenings), which a
    mean price curve smooths away."""
    end = terminal_linear(model, limits, end_gbp_per_kwh)
    values = [
        value_function(
            Horizon(price, export_price, load, pv, charge_allowed(price, peak, max_charge_price)), model, limits, end
        )
        for price in paths
    ]
    v = np.average(values, axis=0, weights=weights)
    grid = np.arange(len(v)) * model.soc_step_kwh
    return v - float(np.interp(limits.min_kwh, grid, v))


def estimate_value(
    estimate: PriceEstimate | None,
    starts: Sequence[datetime],
    now: datetime,
    known: Mapping[datetime, float],
    export_price: np.ndarray,
    load: np.ndarray,
    pv: np.ndarray,
    peak: np.ndarray,
    model: BatteryModel,
    limits: Limits,
    max_charge_price: float,
    end_gbp_per_kwh: float,
) -> tuple[np.ndarray | None, str | None]:
    """``scenario_value`` over the price estimate's paths on the slots ``starts`` after the known prices (arrays
    per slot of ``starts``), as the service and the replay both value energy; ``(None, why)`` when the estimate
    cannot be used."""
    paths, why = estimate_paths(estimate, starts, now, known)
    if paths is None:
        return None, why
    k = paths.shape[1]
    return scenario_value(
        paths, export_price[:k], load[:k], pv[:k], peak[:k], model, limits, max_charge_price, end_gbp_per_kwh
    ), None


def tail_value(
    past_prices: np.ndarray,
    export_price: np.ndarray,
    load: np.ndarray,
    pv: np.ndarray,
    peak: np.ndarray,
    model: BatteryModel,
    limits: Limits,
    max_charge_price: float,
    days: int = 7,
    end_share: float = TAIL_END_SHARE,
    decay: float = 1.0,
    anchor: float = 1.0,
) -> np.ndarray | None:
    """``scenario_value`` with the last ``days`` days' prices as the paths (each a scenario for the slots after
    the known ones), for when there is no price estimate. Each scenario is moved to the level of the latest known
    day (``anchor`` = 1: fully), because tomorrow's level follows today's more than last week's. ``past_prices``
    ends where the known prices end (NaN = unknown)."""
    n = len(load)
    n_past = len(past_prices)
    mean = float(np.nanmean(past_prices)) if np.isfinite(past_prices).any() else np.nan
    if n == 0 or not np.isfinite(mean):
        return None
    paths, weights = [], []
    for d in range(1, days + 1):
        idx = n_past - d * SLOTS_PER_DAY + np.arange(n)
        if idx[0] < 0:
            break
        price = past_prices[np.minimum(idx, n_past - 1)]
        price = np.where(idx < n_past, price, np.nan)
        if not np.isfinite(price).any():
            continue
        price = fill_gaps(price, mean)
        if anchor:  # move each scenario's level part of the way to the latest known day's level
            latest = past_prices[-SLOTS_PER_DAY:]
            if np.isfinite(latest).any():
                price = price + anchor * (float(np.nanmean(latest)) - float(price.mean()))
        paths.append(price)
        weights.append(decay ** (d - 1))
    if not paths:
        return None
    end = end_share * max(mean, 0.0) * model.eta_discharge
    return scenario_value(
        np.array(paths), export_price, load, pv, peak, model, limits, max_charge_price, end, np.array(weights)
    )
