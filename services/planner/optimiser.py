"""``plan(...) -> Plan``: the pure planning function (no I/O, no clock: ``now`` is an argument).

Turns the bus messages into per-slot arrays, applies the hard rules, runs the DP (``decide``) and explains each
slot. Without usable prices or battery state it returns a ``degraded`` plan of ``self_use`` with the reason; it
never guesses. Missing forecasts have documented fallbacks (PV 0, a flat default load), named in the plan.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from services.planner.battery import CHARGE, HOLD, BatteryModel, limits_for
from services.planner.comparison import EndCredit, compare
from services.planner.comparison import note as comparison_note
from services.planner.decide import Tail, charge_allowed, decide, estimate_value, tail_value
from services.planner.fixed import fixed_slots
from services.planner.horizon import (
    DEFAULT_LOAD_KWH,
    SLOTS_PER_DAY,
    TAIL_END_SHARE,
    EndValue,
    fill_gaps,
    linear_end_value,
    same_time_mean,
)
from shared.models import (
    Action,
    BatteryState,
    EndValueMethod,
    EnergyForecast,
    Plan,
    PlanInputs,
    PlannerSettings,
    PlanSlot,
    PriceEstimate,
    RateSeries,
    Reason,
    SessionList,
    WindowList,
)
from shared.peak import PeakWindow
from shared.slots import LONDON, SLOT, slot_start

ACTIONS = {0: Action.SELF_USE, HOLD: Action.HOLD, CHARGE: Action.CHARGE}


@dataclass(frozen=True)
class PlannerConfig:
    """Planner knobs that are not bus settings (the hardware, the horizon, the lease)."""

    model: BatteryModel = field(default_factory=BatteryModel)
    max_slots: int = 96  # the published horizon (48 h)
    tail_slots: int = SLOTS_PER_DAY  # forecast slots used to value the energy left at the horizon's end
    end_value: EndValue = "estimate"
    lease: timedelta = timedelta(minutes=90)  # the executor drops a plan this long after it was made
    default_load_kwh: float = DEFAULT_LOAD_KWH  # per half-hour, when there is no load forecast
    degraded_slots: int = SLOTS_PER_DAY
    tz: ZoneInfo = LONDON  # for the peak window


def plan(
    prices: RateSeries | None,
    pv_forecast: EnergyForecast | None,
    load_forecast: EnergyForecast | None,
    battery_state: BatteryState | None,
    settings: PlannerSettings,
    now: datetime,
    *,
    export_prices: RateSeries | None = None,
    price_history: Mapping[datetime, float] | None = None,
    price_estimate: PriceEstimate | None = None,
    config: PlannerConfig | None = None,
    windows: WindowList | None = None,
    sessions: SessionList | None = None,
) -> Plan:
    """The cheapest schedule from ``now`` given what is known. Energy beyond the known prices is valued from
    ``price_estimate`` (the pricing service's estimate, end value ``estimate``) or else from ``price_history`` (UTC
    slot start -> GBP/kWh of past days). An estimate only ever values that energy: no slot is planned on it.
    Manual ``windows`` and Octopus ``sessions`` fix the slots they cover; the plan is made around them
    (``fixed.py``)."""
    cfg = config or PlannerConfig()
    now_slot = slot_start(now)
    inputs = PlanInputs(
        rates_generated_at=prices.generated_at if prices else None,
        export_rates_generated_at=export_prices.generated_at if export_prices else None,
        pv_generated_at=pv_forecast.generated_at if pv_forecast else None,
        load_generated_at=load_forecast.generated_at if load_forecast else None,
        battery_observed_at=battery_state.observed_at if battery_state else None,
        soc_pct=battery_state.soc_pct if battery_state else None,
    )

    rules = {
        "peak_start_local": settings.peak_start_local,
        "peak_end_local": settings.peak_end_local,
        "max_charge_price_gbp": settings.max_charge_price_gbp,
    }
    problem = _unusable(prices, battery_state, now, now_slot, cfg)
    if problem is not None:
        reason, detail = problem
        made = _degraded(now, now_slot, reason, detail, inputs, battery_state, cfg)
    else:
        assert prices is not None and battery_state is not None
        try:
            made = _optimal(
                prices,
                pv_forecast,
                load_forecast,
                battery_state,
                settings,
                now,
                export_prices,
                price_history,
                price_estimate,
                cfg,
                inputs,
                windows,
                sessions,
            )
        except (ArithmeticError, ValueError) as exc:  # numbers the model cannot carry (pydantic errors: ValueError)
            detail = f"planning failed on these inputs ({type(exc).__name__}): self-use until they change"
            made = _degraded(now, now_slot, Reason.NO_INPUTS, detail, inputs, battery_state, cfg)
    return made.model_copy(update=rules)


def _optimal(
    prices: RateSeries,
    pv_forecast: EnergyForecast | None,
    load_forecast: EnergyForecast | None,
    battery_state: BatteryState,
    settings: PlannerSettings,
    now: datetime,
    export_prices: RateSeries | None,
    price_history: Mapping[datetime, float] | None,
    price_estimate: PriceEstimate | None,
    cfg: PlannerConfig,
    inputs: PlanInputs,
    windows: WindowList | None = None,
    sessions: SessionList | None = None,
) -> Plan:
    m = cfg.model
    now_slot = slot_start(now)
    known = {r.start: r.value_inc_vat for r in prices.rates if r.start >= now_slot}
    last = max(known)
    n = min(int((last - now_slot) / SLOT) + 1, cfg.max_slots)
    starts = [now_slot + k * SLOT for k in range(n)]
    notes: list[str] = []
    price = np.array([known.get(s, np.nan) for s in starts])
    export = _export_prices(export_prices, starts, now, m)
    load, pv = _energy(load_forecast, pv_forecast, starts, now, cfg, notes)
    window = PeakWindow.parse(settings.peak_start_local, settings.peak_end_local, cfg.tz)
    peak = window.mask(starts)
    lim = limits_for(m, settings)
    soc0 = m.capacity_kwh * battery_state.soc_pct / 100.0

    history = dict(price_history or {})
    history.update({r.start: r.value_inc_vat for r in prices.rates})
    horizon_end = starts[-1] + SLOT
    past_axis = [horizon_end - k * SLOT for k in range(8 * SLOTS_PER_DAY, 0, -1)]
    past = np.array([history.get(s, np.nan) for s in past_axis])
    tail = None
    terminal = None
    end_value = 0.0
    method: EndValueMethod = "zero"  # the valuation actually used (a fallback says so in the plan's reason)
    if cfg.end_value in ("forecast", "scenarios", "estimate") and cfg.tail_slots > 0:
        t_starts = [horizon_end + k * SLOT for k in range(cfg.tail_slots)]
        t_load, t_pv = _energy(load_forecast, pv_forecast, t_starts, now, cfg, [])
        t_export = _export_prices(export_prices, t_starts, now, m)
        t_peak = window.mask(t_starts)
        why_not = None
        if cfg.end_value == "estimate":
            end_price = TAIL_END_SHARE * linear_end_value(past, m.eta_discharge)
            terminal, why_not = estimate_value(
                price_estimate, t_starts, now, history, t_export, t_load, t_pv, t_peak, m, lim,
                settings.max_charge_price_gbp, end_price,
            )  # fmt: skip
        if terminal is not None:
            missing, method = False, "estimate"
        elif cfg.end_value in ("scenarios", "estimate"):
            if why_not:
                notes.append(f"{why_not}: energy beyond the known prices valued from the last 7 days' prices")
            terminal = tail_value(past, t_export, t_load, t_pv, t_peak, m, lim, settings.max_charge_price_gbp)
            missing = terminal is None
            method = "zero" if missing else "scenarios"
        else:
            tail = Tail(same_time_mean(past, cfg.tail_slots), t_export, t_load, t_pv, t_peak)
            end_value = TAIL_END_SHARE * linear_end_value(past, m.eta_discharge)
            missing = not np.isfinite(tail.price).any()
            method = "zero" if missing else "forecast"
        if missing:
            notes.append("no price history: energy left at the horizon's end valued at 0")
    elif cfg.end_value == "linear":
        end_value = linear_end_value(past, m.eta_discharge)
        method = "linear" if end_value else "zero"

    fixed = fixed_slots(starts, charge_allowed(price, peak, settings.max_charge_price_gbp), m, now, windows, sessions)
    d = decide(
        price, export, load, pv, peak, soc0, m, lim, settings.max_charge_price_gbp, tail, end_value, terminal, fixed
    )
    sol = d.solution
    if fixed.any:  # the plan's money leaves out a session's reward (the DP weighs it; no one pays it)
        sol = replace(sol, cost_gbp=sol.cost_gbp - fixed.price_adjust * sol.grid_import_kwh)
    slots = []
    soc_prev = soc0
    for k, s in enumerate(starts):
        a = int(sol.action[k])
        p = None if not np.isfinite(price[k]) else float(price[k])
        reason, detail = fixed.reasons[k] or _explain(
            a, p, bool(peak[k]), load[k], pv[k], soc_prev, float(sol.soc_kwh[k]), settings, m
        )
        soc_pct = _pct(sol.soc_kwh[k], m)
        slots.append(
            PlanSlot(
                start=s,
                end=s + SLOT,
                action=ACTIONS[a],
                reason=reason,
                reason_detail=detail,
                target_soc_pct=soc_pct if a == CHARGE else (_pct(soc_prev, m) if a == HOLD else None),
                expected_soc_pct=soc_pct,
                value_inc_vat=p,
                export_value=float(export[k]),
                pv_kwh=round(float(pv[k]), 4),
                load_kwh=round(float(load[k]), 4),
                grid_import_kwh=round(float(sol.grid_import_kwh[k]), 4),
                grid_export_kwh=round(float(sol.grid_export_kwh[k]), 4),
                cost_gbp=round(float(sol.cost_gbp[k]), 4),
            )
        )
        soc_prev = float(sol.soc_kwh[k])
    money_price = d.cost_price - fixed.price_adjust if fixed.any else d.cost_price
    credit = EndCredit(d.end_credit, m.soc_step_kwh)
    end_kwh = float(sol.soc_kwh[-1])
    expected = round(float(sol.cost_gbp.sum()), 4)
    comparison = compare(
        expected, end_kwh, money_price, price, export, load, pv, peak, soc0, m, lim, settings.max_charge_price_gbp,
        credit,
    )  # fmt: skip
    per_kwh = credit.per_kwh(end_kwh, lim.min_kwh)
    return Plan(
        generated_at=now,
        valid_until=min(now + cfg.lease, horizon_end),
        plan_id=_plan_id(now, inputs, sol.action),
        status="ok",
        reason="; ".join(notes) or None,
        inputs=inputs,
        slots=slots,
        expected_cost_gbp=expected,
        # Money alone, each strategy simulated once (in ``compare``): the field older readers know.
        baseline_costs_gbp={k: o.cost_gbp for k, o in comparison.items() if k != "plan"},
        end_value_gbp=round(d.end_value_gbp, 4),
        end_soc_pct=_pct(end_kwh, m),
        end_value_method=method,
        end_value_gbp_per_kwh=round(per_kwh, 4),
        comparable_cost_gbp=comparison["plan"].comparable_cost_gbp,
        comparison=comparison,
        comparison_note=comparison_note(method, per_kwh, _pct(end_kwh, m)),
    )


def _unusable(
    prices: RateSeries | None, battery: BatteryState | None, now: datetime, now_slot: datetime, cfg: PlannerConfig
) -> tuple[Reason, str] | None:
    if prices is None:
        return Reason.NO_INPUTS, "no import prices received"
    if not prices.is_valid(now):
        return Reason.STALE_INPUTS, f"import prices expired at {prices.valid_until.isoformat()}"
    if not any(r.start >= now_slot for r in prices.rates):
        return Reason.NO_INPUTS, "no import price for the current or any later slot"
    if battery is None:
        return Reason.NO_INPUTS, "no battery state received"
    if not battery.is_valid(now):
        return Reason.STALE_INPUTS, f"battery state is stale (observed at {battery.observed_at.isoformat()})"
    return None


def _degraded(
    now: datetime,
    now_slot: datetime,
    reason: Reason,
    detail: str,
    inputs: PlanInputs,
    battery: BatteryState | None,
    cfg: PlannerConfig,
) -> Plan:
    soc = battery.soc_pct if battery is not None else 0.0
    slots = [
        PlanSlot(
            start=now_slot + k * SLOT,
            end=now_slot + (k + 1) * SLOT,
            action=Action.SELF_USE,
            reason=reason,
            reason_detail=detail,
            expected_soc_pct=soc,
        )
        for k in range(cfg.degraded_slots)
    ]
    return Plan(
        generated_at=now,
        valid_until=now + cfg.lease,
        plan_id=_plan_id(now, inputs, np.zeros(0)),
        status="degraded",
        reason=detail,
        inputs=inputs,
        slots=slots,
    )


def _export_prices(export: RateSeries | None, starts: list[datetime], now: datetime, m: BatteryModel) -> np.ndarray:
    fixed = np.full(len(starts), m.export_price_gbp)
    if export is None or not export.is_valid(now):
        return fixed
    known = {r.start: r.value_inc_vat for r in export.rates}
    return np.array([known.get(s, m.export_price_gbp) for s in starts])


def _energy(
    load_fc: EnergyForecast | None,
    pv_fc: EnergyForecast | None,
    starts: list[datetime],
    now: datetime,
    cfg: PlannerConfig,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    def series(fc: EnergyForecast | None, default: float, what: str) -> np.ndarray:
        if fc is None or not fc.is_valid(now):
            notes.append(f"{what} forecast {'missing' if fc is None else 'expired'}: using {default} kWh per slot")
            return np.full(len(starts), default)
        known = {s.start: s.energy_kwh for s in fc.slots if s.energy_kwh is not None}
        vals = np.array([known.get(s, np.nan) for s in starts])
        gaps = int(np.sum(~np.isfinite(vals)))
        if gaps:
            notes.append(f"{what} forecast has {gaps} missing slots: filled with {default} kWh")
        return fill_gaps(vals, default)

    return series(load_fc, cfg.default_load_kwh, "load"), series(pv_fc, 0.0, "pv")


def _explain(
    a: int,
    price: float | None,
    peak: bool,
    load: float,
    pv: float,
    soc_before: float,
    soc_after: float,
    settings: PlannerSettings,
    m: BatteryModel,
) -> tuple[Reason, str | None]:
    p = "unknown" if price is None else f"{price * 100:.2f}p"
    if a == CHARGE:
        r = Reason.NEGATIVE_PRICE if price is not None and price < 0 else Reason.CHEAPEST_NEEDED
        return r, f"price {p}: charge to {_pct(soc_after, m):.0f}%"
    if a == HOLD:
        return Reason.HOLD_FOR_LATER, f"price {p}: keep the battery for dearer slots later"
    if price is None:
        return Reason.NO_PRICE, "no price for this slot: no charging"
    if pv >= load:
        if soc_after >= m.capacity_kwh - 1e-6:
            return Reason.BATTERY_FULL, f"price {p}: battery full, PV surplus exported"
        return Reason.SOLAR_COVERS, f"price {p}: PV covers the load"
    if peak:
        return Reason.PEAK_BLOCKED, f"price {p}: peak window, no grid charging"
    if price > settings.max_charge_price_gbp:
        return Reason.PRICE_ABOVE_LIMIT, f"price {p} above the {settings.max_charge_price_gbp * 100:.1f}p limit"
    if soc_before <= settings.min_soc_pct / 100.0 * m.capacity_kwh + 0.05:
        return Reason.SELF_USE, f"price {p}: battery at its reserve, the house runs from the grid"
    return Reason.SELF_USE, f"price {p}: the battery serves the house"


def _pct(kwh: float, m: BatteryModel) -> float:
    return round(min(max(float(kwh) / m.capacity_kwh * 100.0, 0.0), 100.0), 2)


def _plan_id(now: datetime, inputs: PlanInputs, actions: np.ndarray) -> str:
    h = hashlib.sha1(now.isoformat().encode() + inputs.model_dump_json().encode() + actions.tobytes())
    return h.hexdigest()[:12]
