"""The plan against the strategies a household could have had instead, valued fairly.

Each strategy (``baselines.py``: no battery, self-use, the seed app's rule) runs over the plan's slots with the same
physics, prices and forecasts. Money alone would be unfair: a plan that ends the horizon with the battery full
(because energy will be dear after it) would look dearer than self-use, which drained it. So the energy each one
leaves is valued the way the plan valued its own: by the planner's end value (``decide.Decision.end_credit``, its
cost-to-go at the horizon's end for every SOC, 0 at the reserve), and the value of the *change* in stored energy
is taken off its cost:

    comparable_cost = cost - (end_credit(end SOC) - end_credit(SOC now))

With no battery nothing stored changes. The plan minimises exactly ``cost - end_credit(end SOC)`` over every
schedule the battery can follow, self-use and the seed rule included, so against them its saving is never
negative (differences under ``NOISE_GBP`` are the DP grid's rounding and are shown as none), except where a person
fixed slots by hand (manual windows, sessions), which the strategies do not follow. Without a PV surplus "no
battery" is such a schedule too (hold throughout). With one it is not: the Powerwall stores PV before it exports
any, so where a stored kWh is worth less than its export price (a full battery, a sunny tomorrow) having the
battery costs money against not having it: a real, small loss of the hardware, shown as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from services.planner.baselines import no_battery_cost, seed_rule_charge_slots, simulate
from services.planner.battery import CHARGE, SELF_USE, BatteryModel, Limits
from shared.models import EndValueMethod, StrategyOutcome

STRATEGIES = ("plan", "no_battery", "self_use", "seed_rule")
# A saving smaller than this is the DP grid's rounding, not money: shown as none (never as "-£0.00").
NOISE_GBP = 0.005
METHOD_WORDS: dict[str, str] = {
    "estimate": "the price estimate after the known prices",
    "scenarios": "the last 7 days' prices as scenarios after the known prices",
    "forecast": "a day of forecast prices after the known prices",
    "linear": "the recent mean price",
    "zero": "nothing: no price history",
}


@dataclass(frozen=True)
class EndCredit:
    """The plan's value of stored energy at the horizon's end: GBP per grid state (0 at the reserve)."""

    credit: np.ndarray
    step_kwh: float

    def __call__(self, soc_kwh: float) -> float:
        grid = np.arange(len(self.credit)) * self.step_kwh
        return float(np.interp(soc_kwh, grid, self.credit))

    def per_kwh(self, soc_kwh: float, reserve_kwh: float) -> float:
        """The mean value of a stored kWh between the reserve and ``soc_kwh`` (the slope near the reserve when the
        battery ends there): a figure for people, not used in the comparison."""
        span = soc_kwh - reserve_kwh
        if span < 0.5:
            span = 0.5
            soc_kwh = reserve_kwh + span
        return (self(soc_kwh) - self(reserve_kwh)) / span


def outcome(cost: float, end_kwh: float, soc0_kwh: float, credit: EndCredit, capacity_kwh: float) -> dict:
    end_value = credit(end_kwh)
    change = end_value - credit(soc0_kwh)
    return {
        "cost_gbp": cost,
        "end_soc_pct": min(max(end_kwh / capacity_kwh * 100.0, 0.0), 100.0),
        "end_value_gbp": end_value,
        "stored_change_value_gbp": change,
        "comparable_cost_gbp": cost - change,
    }


def compare(
    plan_cost_gbp: float,
    plan_end_kwh: float,
    price: np.ndarray,
    charge_price: np.ndarray,
    export_price: np.ndarray,
    load: np.ndarray,
    pv: np.ndarray,
    peak: np.ndarray,
    soc0_kwh: float,
    model: BatteryModel,
    limits: Limits,
    max_charge_price: float,
    credit: EndCredit,
) -> dict[str, StrategyOutcome]:
    """Every strategy of ``STRATEGIES`` over the same slots. ``price``: the import price each slot is costed at
    (finite); ``charge_price``: the known prices the seed rule chooses from (NaN = unknown, never charged)."""
    cap = model.capacity_kwh
    raw = {"plan": outcome(plan_cost_gbp, plan_end_kwh, soc0_kwh, credit, cap)}
    raw["no_battery"] = outcome(no_battery_cost(price, export_price, load, pv), soc0_kwh, soc0_kwh, credit, cap)
    self_use = np.full(len(price), SELF_USE)
    raw["self_use"] = outcome(
        *simulate(self_use, price, export_price, load, pv, soc0_kwh, model, limits), soc0_kwh, credit, cap
    )
    seed_mask = seed_rule_charge_slots(charge_price, load, pv, peak, soc0_kwh, model, limits, max_charge_price)
    seed = np.where(seed_mask, CHARGE, SELF_USE)
    raw["seed_rule"] = outcome(
        *simulate(seed, price, export_price, load, pv, soc0_kwh, model, limits), soc0_kwh, credit, cap
    )
    plan_comparable = raw["plan"]["comparable_cost_gbp"]
    out = {}
    for name, r in raw.items():
        saving = r["comparable_cost_gbp"] - plan_comparable
        out[name] = StrategyOutcome(
            **{k: round(v, 2 if k == "end_soc_pct" else 4) for k, v in r.items()},
            saving_gbp=0.0 if abs(saving) < NOISE_GBP else round(saving, 4),
        )
    return out


def note(method: EndValueMethod, per_kwh_gbp: float, end_soc_pct: float) -> str:
    """One line for people: how the energy left at the horizon's end was valued."""
    return (
        f"Energy left at the end ({end_soc_pct:.0f}% in this plan) is valued alike for every strategy, as the plan "
        f"values it from {METHOD_WORDS[method]} (about {per_kwh_gbp * 100:.1f}p/kWh above the reserve); each cost "
        "is net of the value of the energy it stored or drew."
    )
