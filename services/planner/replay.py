"""Replay a period half-hour by half-hour: plan with what was knowable, act one slot, apply the real load and PV.

The one replay engine of ``make bench-planner``, ``batsched backtest`` and ``batsched compare-tariffs``. Prices
become visible as Octopus publishes them: for Agile (and Tracker) before 16:00 local the known prices end at 23:00
local today, from 16:00 at 23:00 local tomorrow; a tariff known in advance (Go, Flux, Cosy, fixed) is seen as the
pricing service publishes it, up to local midnight after tomorrow (``World.known_end``). Forecasts are either
perfect (the real load and PV) or the planner's own (the same half-hour over recent days, from the past only).
The money is always counted on what really happened (``battery.step_slot``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from services.planner.baselines import seed_rule_charge_slots
from services.planner.battery import CHARGE, SELF_USE, BatteryModel, Limits, limits_for, step_slot
from services.planner.decide import Tail, decide, estimate_value, tail_value
from services.planner.horizon import (
    DEFAULT_LOAD_KWH,
    SLOTS_PER_DAY,
    TAIL_END_SHARE,
    EndValue,
    fill_gaps,
    linear_end_value,
    same_time_mean,
)
from services.pricing.estimate import EstimateParams, estimate, to_message
from shared.models import PlannerSettings, PriceEstimate
from shared.peak import PeakWindow
from shared.slots import LONDON

PUBLISH_HOUR_LOCAL = 16
# Days of prices before a replayed period: the price estimate's learning window (``EstimateParams.window_days``)
# and a margin. The benchmark and the backtest both give a replay this much history.
HISTORY_DAYS = EstimateParams.window_days + 10
Forecasts = Literal["perfect", "own"]


@dataclass(frozen=True)
class World:
    """What really happened, on a regular half-hourly UTC axis; the replay covers ``[start, stop)``."""

    slots: pd.DatetimeIndex
    price: np.ndarray  # import GBP/kWh (NaN where Octopus published nothing)
    export_price: np.ndarray
    load: np.ndarray  # kWh
    pv: np.ndarray  # kWh
    start: int
    stop: int
    known_end: np.ndarray | None = None  # per slot: the first slot not yet known then (default: Agile's timetable)

    def known(self) -> np.ndarray:
        return self.known_end if self.known_end is not None else published_end(self.slots)


def known_ahead_end(slots: pd.DatetimeIndex) -> np.ndarray:
    """For a tariff known in advance: at each slot, the index of local midnight after tomorrow (the pricing
    service's window)."""
    day = slots.tz_convert(LONDON).tz_localize(None).normalize()
    end = pd.DatetimeIndex(day + pd.Timedelta(days=2)).tz_localize(LONDON, ambiguous=True, nonexistent="shift_forward")
    return slots.searchsorted(end.tz_convert("UTC"))


def published_end(slots: pd.DatetimeIndex) -> np.ndarray:
    """For each slot start, the index of the first slot whose price was not yet published at that instant."""
    local = slots.tz_convert(LONDON)
    day = local.tz_localize(None).normalize()
    ahead = np.where(local.hour >= PUBLISH_HOUR_LOCAL, 1, 0)
    end_naive = day + pd.to_timedelta(ahead, unit="D") + pd.Timedelta(hours=23)
    end = pd.DatetimeIndex(end_naive).tz_localize(LONDON, ambiguous=True, nonexistent="shift_forward")
    return slots.searchsorted(end.tz_convert("UTC"))


def peak_mask(slots: pd.DatetimeIndex, settings: PlannerSettings) -> np.ndarray:
    """Slots that overlap the local peak window (``shared.peak``, as the planner service uses it)."""
    window = PeakWindow.parse(settings.peak_start_local, settings.peak_end_local, LONDON)
    return window.mask(list(slots.to_pydatetime()))


@dataclass
class ReplayResult:
    cost_gbp: float
    import_kwh: float
    export_kwh: float
    seconds: float
    plan_seconds: list[float] = field(default_factory=list)
    charge_slots: int = 0


Policy = Callable[[int, float], tuple[int, float]]  # (slot index, SOC kWh) -> (action, target SOC kWh)


class Batsched:
    """The planner as a replay policy: replan every slot from what is knowable then."""

    def __init__(
        self,
        world: World,
        model: BatteryModel,
        settings: PlannerSettings,
        forecasts: Forecasts = "perfect",
        end_value: EndValue = "estimate",
        max_slots: int = 96,
        tail_slots: int = SLOTS_PER_DAY,
        prices_known: Literal["published", "all"] = "published",
        price_days: int = 7,
        tail_end_value: bool = True,
        price_quantile: float | None = None,
        end_share: float = TAIL_END_SHARE,
        decay: float = 1.0,
        anchor: float = 1.0,
        estimate_params: EstimateParams = EstimateParams(),  # noqa: B008 - frozen
    ) -> None:
        self.w, self.m, self.s = world, model, settings
        self.lim = limits_for(model, settings)
        self.forecasts, self.end_value = forecasts, end_value
        self.max_slots, self.tail_slots, self.price_days = max_slots, tail_slots, price_days
        self.tail_end_value, self.price_quantile, self.end_share = tail_end_value, price_quantile, end_share
        self.decay, self.anchor = decay, anchor
        self.estimate_params = estimate_params
        self.known_end = world.known()
        if prices_known == "all":  # a diagnostic: what knowing every price in advance would be worth
            self.known_end = np.full(len(world.slots), len(world.slots))
        self.peak = peak_mask(world.slots, settings)
        self.plan_seconds: list[float] = []
        self.tail_seconds: list[float] = []
        self._tail_key = -1
        self._tail_value: np.ndarray | None = None

    def _energy(self, i: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        w = self.w
        if self.forecasts == "perfect":
            return w.load[i : i + n], w.pv[i : i + n]
        load = same_time_mean(w.load[max(0, i - 7 * SLOTS_PER_DAY) : i], n, days=7)
        pv = same_time_mean(w.pv[max(0, i - 3 * SLOTS_PER_DAY) : i], n, days=3)
        return fill_gaps(load, DEFAULT_LOAD_KWH), fill_gaps(pv, 0.0)

    def inputs(self, i: int) -> dict:
        """The arguments of ``decide`` for a plan made at slot ``i`` (empty when no price is known)."""
        w = self.w
        ke = min(int(self.known_end[i]), len(w.price))
        n = min(ke - i, self.max_slots)
        if n <= 0:
            return {}
        n_tail = self.tail_slots if self.end_value == "forecast" else 0  # "scenarios" values the tail apart
        n_tail = min(n_tail, len(w.price) - i - n)
        load, pv = self._energy(i, n + n_tail)
        past = w.price[max(0, ke - 8 * SLOTS_PER_DAY) : ke]
        args: dict = dict(
            price=w.price[i : i + n],
            export_price=w.export_price[i : i + n],
            load=load[:n],
            pv=pv[:n],
            peak=self.peak[i : i + n],
            soc0_kwh=0.0,
            model=self.m,
            limits=self.lim,
            max_charge_price=self.s.max_charge_price_gbp,
        )
        if n_tail > 0:
            a, b = i + n, i + n + n_tail
            fc = same_time_mean(past, b - ke, days=self.price_days, quantile=self.price_quantile)
            tail_price = w.price[a:b].copy()
            tail_price[max(ke - a, 0) :] = fc[max(a - ke, 0) :]
            args["tail"] = Tail(tail_price, w.export_price[a:b], load[n:], pv[n:], self.peak[a:b])
            if self.tail_end_value:
                args["end_value_gbp_per_kwh"] = TAIL_END_SHARE * linear_end_value(past, self.m.eta_discharge)
        elif self.end_value == "linear":
            args["end_value_gbp_per_kwh"] = linear_end_value(past, self.m.eta_discharge)
        elif self.end_value in ("scenarios", "estimate"):
            if self._tail_key != ke:  # the tail's value changes only when new prices are published
                t0 = time.perf_counter()
                value = self._estimate_values(i, ke, past) if self.end_value == "estimate" else None
                self._tail_value = value if value is not None else self._scenario_values(i, ke, past)
                self.tail_seconds.append(time.perf_counter() - t0)
                self._tail_key = ke
            args["terminal"] = self._tail_value
        return args

    def price_estimate(self, ke: int) -> PriceEstimate | None:
        """The pricing service's estimate right after the prices up to slot ``ke`` were published: the same
        estimator and message, from the prices before ``ke`` only (walk-forward; no cold-start library, which
        would hold the replayed period itself)."""
        w = self.w
        lo = max(0, ke - (self.estimate_params.window_days + 3) * SLOTS_PER_DAY)
        until = w.slots[ke].to_pydatetime()
        est = estimate(w.slots[lo:ke], w.price[lo:ke], until, 48, LONDON, self.estimate_params)
        return to_message(est, "replay", until, until) if est is not None else None

    def _estimate_values(self, i: int, ke: int, past: np.ndarray) -> np.ndarray | None:
        w = self.w
        n_t = min(self.tail_slots, len(w.price) - ke)
        if n_t <= 0:
            return None
        starts = list(w.slots[ke : ke + n_t].to_pydatetime())
        load, pv = self._energy(i, ke - i + n_t)
        sl = slice(ke, ke + n_t)
        end = self.end_share * linear_end_value(past, self.m.eta_discharge)
        value, _ = estimate_value(
            self.price_estimate(ke), starts, w.slots[i].to_pydatetime(), {}, w.export_price[sl], load[ke - i :],
            pv[ke - i :], self.peak[sl], self.m, self.lim, self.s.max_charge_price_gbp, end,
        )  # fmt: skip
        return value

    def _scenario_values(self, i: int, ke: int, past: np.ndarray) -> np.ndarray | None:
        w = self.w
        n_t = min(self.tail_slots, len(w.price) - ke)
        if n_t <= 0:
            return None
        load, pv = self._energy(i, ke - i + n_t)
        return tail_value(
            past,
            w.export_price[ke : ke + n_t],
            load[ke - i :],
            pv[ke - i :],
            self.peak[ke : ke + n_t],
            self.m,
            self.lim,
            self.s.max_charge_price_gbp,
            self.price_days,
            self.end_share,
            self.decay,
            self.anchor,
        )

    def __call__(self, i: int, soc: float) -> tuple[int, float]:
        args = self.inputs(i)
        if not args:
            return SELF_USE, soc
        args["soc0_kwh"] = soc
        t0 = time.perf_counter()
        d = decide(**args)
        self.plan_seconds.append(time.perf_counter() - t0)
        return int(d.solution.action[0]), float(d.solution.soc_kwh[0])


class SeedRule:
    """The seed app's rule as a replay policy (with perfect load/PV forecasts: generous to it)."""

    def __init__(self, world: World, model: BatteryModel, settings: PlannerSettings) -> None:
        self.w, self.m, self.s = world, model, settings
        self.lim = limits_for(model, settings)
        self.known_end = world.known()
        self.peak = peak_mask(world.slots, settings)

    def __call__(self, i: int, soc: float) -> tuple[int, float]:
        n = min(int(self.known_end[i]), len(self.w.price)) - i
        if n <= 0:
            return SELF_USE, soc
        w = self.w
        sl = slice(i, i + n)
        mask = seed_rule_charge_slots(
            w.price[sl], w.load[sl], w.pv[sl], self.peak[sl], soc, self.m, self.lim, self.s.max_charge_price_gbp
        )
        return (CHARGE, self.lim.charge_cap_kwh) if mask[0] else (SELF_USE, soc)


def self_use_policy(_i: int, soc: float) -> tuple[int, float]:
    return SELF_USE, soc


def replay(world: World, policy: Policy, model: BatteryModel, limits: Limits, soc0_kwh: float) -> ReplayResult:
    """Run ``policy`` over the world's period; the money is what the real slot cost."""
    t0 = time.perf_counter()
    soc = soc0_kwh
    cost = imp_total = exp_total = 0.0
    charges = 0
    price = np.nan_to_num(world.price, nan=0.0)  # a real bill always has a price; NaN only hides it from plans
    for i in range(world.start, world.stop):
        action, target = policy(i, soc)
        charges += action == CHARGE
        soc, imp, exp_ = step_slot(model, limits, soc, action, target, world.load[i], world.pv[i])
        cost += price[i] * imp - world.export_price[i] * exp_
        imp_total += imp
        exp_total += exp_
    seconds = time.perf_counter() - t0
    plan_seconds = list(getattr(policy, "plan_seconds", []))
    return ReplayResult(cost, imp_total, exp_total, seconds, plan_seconds, int(charges))
