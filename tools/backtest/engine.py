"""The adapter between the backtest and the planner: every strategy runs through the planner's own replay,
policies, battery model and LP bound (``services.planner``); nothing here decides or models a battery.

The planner's ``replay`` returns totals; to draw per-slot charts the policy is wrapped in a recorder that notes the
(SOC, action, target) the replay asked for at each slot, and the slot's flows are re-derived with the planner's own
``step_slot``. The per-slot costs therefore add up to exactly the replay's totals (checked).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from services.executor import rules as executor_rules
from services.planner import replay as rp
from services.planner.baselines import no_battery_cost
from services.planner.battery import ACTION_NAMES, CHARGE, SELF_USE, BatteryModel, Limits, limits_for, step_slot
from services.planner.dp import Horizon
from services.planner.lp import solve_lp
from shared.models import Action, PlannerSettings
from shared.slots import LONDON, parse_hhmm
from tools.backtest.result import BacktestResult, StrategyRun

STRATEGIES = ("no_battery", "self_use", "seed_rule", "batsched", "bound")
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Scenario:
    """One backtest's inputs on a regular half-hourly UTC axis. ``[start, stop)`` is the reported period; slots
    after ``stop`` (if any) are only there so that plans near the end can see the next day's prices, as the live
    planner would."""

    slots: pd.DatetimeIndex
    price: np.ndarray
    load: np.ndarray
    pv: np.ndarray
    export_price: np.ndarray
    start: int
    stop: int
    known_end: np.ndarray | None = None  # when each price became known (default: Agile's timetable)

    def world(self) -> rp.World:
        return rp.World(
            self.slots, self.price, self.export_price, self.load, self.pv, self.start, self.stop, self.known_end
        )


class _Recorder:
    """Wraps a replay policy: remembers what it was asked and answered, and ticks the progress bar."""

    def __init__(self, policy: rp.Policy, tick: Progress | None) -> None:
        self.policy, self.tick = policy, tick
        self.steps: dict[int, tuple[float, int, float]] = {}

    @property
    def plan_seconds(self) -> list[float]:
        return list(getattr(self.policy, "plan_seconds", []))

    def __call__(self, i: int, soc: float) -> tuple[int, float]:
        action, target = self.policy(i, soc)
        self.steps[i] = (soc, action, target)
        if self.tick:
            self.tick(1)
        return action, target


class ExecutorRules:
    """Passes each slot's action through the executor's own safety rules (``services.executor.rules``: peak window,
    price limit), evaluated at the slot's start as the live executor would on the slot boundary. The planner
    already respects both, so in a faithful replay they block nothing; the count of blocked slots says so."""

    def __init__(self, policy: rp.Policy, sc: Scenario, settings: PlannerSettings) -> None:
        self.policy, self.sc = policy, sc
        self.cfg = executor_rules.RuleConfig(
            tz=LONDON,
            peak_start=parse_hhmm(settings.peak_start_local),
            peak_end=parse_hhmm(settings.peak_end_local),
            max_price_gbp=settings.max_charge_price_gbp,
        )
        self.limit = executor_rules.price_limit_gbp(self.cfg, settings.max_charge_price_gbp)
        self.blocked: dict[str, int] = {}

    @property
    def plan_seconds(self) -> list[float]:
        return list(getattr(self.policy, "plan_seconds", []))

    def __call__(self, i: int, soc: float) -> tuple[int, float]:
        action, target = self.policy(i, soc)
        if action != CHARGE:
            return action, target
        now = self.sc.slots[i].to_pydatetime()
        price = float(self.sc.price[i]) if np.isfinite(self.sc.price[i]) else None
        p = executor_rules.Proposal(Action.CHARGE)
        p, peak = executor_rules.peak_window(p, now, self.cfg)
        p, limit = executor_rules.price_limit(p, now, price, self.limit)
        if p.action == Action.CHARGE:
            return action, target
        rule = peak.rule if peak.verdict != "pass" else limit.rule
        self.blocked[rule] = self.blocked.get(rule, 0) + 1
        return SELF_USE, soc


def _run_policy(
    name: str,
    sc: Scenario,
    policy: rp.Policy,
    model: BatteryModel,
    limits: Limits,
    soc0_kwh: float,
    tick: Progress | None,
) -> tuple[StrategyRun, rp.ReplayResult]:
    rec = _Recorder(policy, tick)
    res = rp.replay(sc.world(), rec, model, limits, soc0_kwh)
    n = sc.stop - sc.start
    imp, exp_, soc_end = np.zeros(n), np.zeros(n), np.zeros(n)
    actions = np.empty(n, dtype=object)
    price = np.nan_to_num(sc.price, nan=0.0)
    for k, i in enumerate(range(sc.start, sc.stop)):
        soc, action, target = rec.steps[i]
        soc_end[k], imp[k], exp_[k] = step_slot(model, limits, soc, action, target, sc.load[i], sc.pv[i])
        actions[k] = ACTION_NAMES[action]
    sl = slice(sc.start, sc.stop)
    cost = price[sl] * imp - sc.export_price[sl] * exp_
    if not np.isclose(cost.sum(), res.cost_gbp, atol=1e-6):
        raise RuntimeError(f"{name}: per-slot costs {cost.sum():.6f} differ from the replay's {res.cost_gbp:.6f}")
    run = StrategyRun(name, imp, exp_, cost, soc_end / model.capacity_kwh * 100.0, actions)
    return run, res


def _no_battery(sc: Scenario) -> StrategyRun:
    sl = slice(sc.start, sc.stop)
    net = sc.load[sl] - sc.pv[sl]
    price = np.nan_to_num(sc.price[sl], nan=0.0)
    imp, exp_ = np.maximum(net, 0.0), np.maximum(-net, 0.0)
    run = StrategyRun("no_battery", imp, exp_, price * imp - sc.export_price[sl] * exp_)
    total = no_battery_cost(price, sc.export_price[sl], sc.load[sl], sc.pv[sl])
    if not np.isclose(run.total, total, atol=1e-6):
        raise RuntimeError("no-battery per-slot costs differ from the planner's baseline")
    return run


def _bound(
    sc: Scenario, model: BatteryModel, limits: Limits, soc0_kwh: float, settings: PlannerSettings
) -> StrategyRun:
    """The planner's LP with perfect foresight over the whole period (slightly optimistic: see
    ``services.planner.lp``). Set up as ``tools.bench_planner.lp_bound`` does: unknown prices at the period's mean,
    grid charging allowed outside the peak and up to the price limit."""
    sl = slice(sc.start, sc.stop)
    raw = sc.price[sl]
    price = np.nan_to_num(raw, nan=float(np.nanmean(raw)))
    peak = rp.peak_mask(sc.slots[sl], settings)
    h = Horizon(price, sc.export_price[sl], sc.load[sl], sc.pv[sl], ~peak & (price <= settings.max_charge_price_gbp))
    lp = solve_lp(h, soc0_kwh, model, limits)
    cost = h.price * lp.grid_import_kwh - h.export_price * lp.grid_export_kwh
    return StrategyRun(
        "bound",
        np.asarray(lp.grid_import_kwh),
        np.asarray(lp.grid_export_kwh),
        cost,
        np.asarray(lp.soc_kwh) / model.capacity_kwh * 100.0,
        total_gbp=float(lp.cost_gbp),
        note="linear programme with perfect foresight; slightly optimistic",
    )


def run_backtest(
    sc: Scenario,
    model: BatteryModel | None = None,
    settings: PlannerSettings | None = None,
    forecasts: rp.Forecasts = "perfect",
    soc0_pct: float | None = None,
    strategies: tuple[str, ...] = STRATEGIES,
    progress: Callable[[int, str], Progress] | None = None,
) -> BacktestResult:
    """Every strategy over the scenario. ``progress(total, label)`` returns a per-slot tick (a progress bar)."""
    model = model or BatteryModel()
    settings = settings or PlannerSettings()
    limits = limits_for(model, settings)
    soc0 = limits.min_kwh if soc0_pct is None else model.capacity_kwh * soc0_pct / 100.0
    n = sc.stop - sc.start
    policies: dict[str, Callable[[], rp.Policy]] = {
        "self_use": lambda: rp.self_use_policy,
        "seed_rule": lambda: rp.SeedRule(sc.world(), model, settings),
        "batsched": lambda: ExecutorRules(rp.Batsched(sc.world(), model, settings, forecasts=forecasts), sc, settings),
    }
    t0 = time.perf_counter()
    runs: dict[str, StrategyRun] = {}
    timings: dict[str, Any] = {}
    blocked: dict[str, int] = {}
    for name in strategies:
        t1 = time.perf_counter()
        if name == "no_battery":
            runs[name] = _no_battery(sc)
        elif name == "bound":
            tick = progress(n, "perfect-foresight bound (LP)") if progress else None
            runs[name] = _bound(sc, model, limits, soc0, settings)
            if tick:
                tick(n)
        else:
            tick = progress(n, name) if progress else None
            policy = policies[name]()
            runs[name], _ = _run_policy(name, sc, policy, model, limits, soc0, tick)
            if isinstance(policy, ExecutorRules):
                blocked = policy.blocked
        timings[name] = round(time.perf_counter() - t1, 2)
    sl = slice(sc.start, sc.stop)
    return BacktestResult(
        slots=sc.slots[sl],
        price=np.nan_to_num(sc.price[sl], nan=0.0),
        load=sc.load[sl],
        pv=sc.pv[sl],
        runs=runs,
        settings={
            "capacity_kwh": model.capacity_kwh,
            "grid_charge_kw": model.grid_charge_kw,
            "charge_kw": model.charge_kw,
            "discharge_kw": model.discharge_kw,
            "eta_charge": model.eta_charge,
            "eta_discharge": model.eta_discharge,
            "start_soc_pct": round(soc0 / model.capacity_kwh * 100, 1),
            "forecasts": forecasts,
            **settings.model_dump(),
            "executor_rules_blocked_slots": blocked,
            "seconds_per_strategy": timings,
        },
        elapsed_s=time.perf_counter() - t0,
    )
