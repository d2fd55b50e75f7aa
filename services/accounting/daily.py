"""One local day's money, from what was observed: a pure function (no bus, no clock, no database).

Integration rule (documented in docs/savings.md): each ``battery/state`` sample's power *holds* from its
``observed_at`` until the next sample, but for at most ``max_hold`` (default 10 minutes; a longer silence is a gap,
not a constant). The part of each hold that falls inside a half-hour slot is credited to that slot. Grid power is
split into import (positive part) and export (negative part) per sample *before* integrating, so a slot that both
imported and exported is not netted to zero. A slot counts as observed when at least half of it is covered.

Costs per slot: ``import_kwh × import price − export_kwh × export price``. A slot with energy but no known import
price is left out of the total and counted in ``slots_unpriced`` (a missing price is never read as 0); with no
export rates at all, exports earn nothing (no export tariff assumed).

Counterfactuals from the same observations: *no battery* pays for ``max(load − pv, 0)`` and sells the PV surplus;
*self-use* runs the planner's battery model (``services.planner.battery.step_slot``, in self-use) with the
observed capacity and the configured reserve, starting from the day's first observed SOC.

Stored energy: batsched's battery and the self-use counterfactual end the day holding different amounts (a
self-use battery drained in the evening paid less that day and has less for the next). Each side's change in
stored energy over the day is valued at one price per kWh (``StoredValue``: the planner's own end value from its
last plan of the day, as the plan comparison values it, else the day's mean import price after the discharge
loss) and taken off its cost, so neither is credited for draining the battery. No battery stores nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.planner.battery import SELF_USE, BatteryModel, Limits, step_slot
from shared.slots import LONDON, SLOT, local_day_slots, slot_start

MAX_HOLD = timedelta(minutes=10)
OBSERVED_FRACTION = 0.5


@dataclass(frozen=True)
class Sample:
    """One observation from ``battery/state`` (powers in W; None = not reported)."""

    at: datetime
    grid_w: float | None
    load_w: float | None = None
    pv_w: float | None = None
    soc_pct: float | None = None
    capacity_kwh: float | None = None


@dataclass(frozen=True)
class PlannedSlot:
    """One slot of a plan as it was seen on the bus (the plan's ``generated_at`` decides which plan counts)."""

    plan_generated_at: datetime
    start: datetime
    cost_gbp: float


@dataclass(frozen=True)
class StoredValue:
    """The price of a stored kWh at the day's end, and where it came from."""

    gbp_per_kwh: float
    source: str  # "plan" | "day_prices"


def day_price_value(import_prices: Mapping[datetime, float], eta_discharge: float) -> StoredValue | None:
    """The fallback: the day's mean known import price, after the discharge loss (the planner's ``linear``)."""
    known = [p for p in import_prices.values() if math.isfinite(p)]
    if not known:
        return None
    return StoredValue(max(sum(known) / len(known), 0.0) * eta_discharge, "day_prices")


@dataclass(frozen=True)
class BatteryParams:
    """The battery used for the self-use counterfactual; its physics is the planner's (``step_slot``)."""

    capacity_kwh: float = 13.5
    reserve_pct: float = 10.0

    def model(self) -> BatteryModel:
        return replace(BatteryModel(), capacity_kwh=self.capacity_kwh)

    def limits(self) -> Limits:
        return Limits(min_kwh=self.capacity_kwh * self.reserve_pct / 100.0, charge_cap_kwh=self.capacity_kwh)


@dataclass
class SlotFlows:
    start: datetime
    import_kwh: float = 0.0
    export_kwh: float = 0.0
    load_kwh: float = 0.0
    pv_kwh: float = 0.0
    covered_s: float = 0.0
    load_covered_s: float = 0.0

    @property
    def observed(self) -> bool:
        return self.covered_s >= OBSERVED_FRACTION * SLOT.total_seconds()


@dataclass
class DayAccount:
    """The day's figures; ``None`` where the observations cannot support a figure."""

    day: date
    actual_cost_gbp: float
    planned_cost_gbp: float | None
    no_battery_cost_gbp: float | None
    self_use_cost_gbp: float | None
    grid_import_kwh: float
    grid_export_kwh: float
    slots_observed: int
    slots_expected: int
    slots_unpriced: int
    slots_planned: int
    soc_start_pct: float | None = None
    soc_end_pct: float | None = None
    flows: list[SlotFlows] = field(default_factory=list)
    stored_value: StoredValue | None = None
    stored_change_value_gbp: float | None = None  # (soc_end - soc_start) x capacity x value
    self_use_end_soc_pct: float | None = None
    self_use_stored_change_value_gbp: float | None = None


def integrate(samples: Iterable[Sample], slots: Sequence[datetime], max_hold: timedelta = MAX_HOLD) -> list[SlotFlows]:
    """Energy per slot by the hold rule above. ``slots`` are UTC slot starts (contiguous or not)."""
    ordered = sorted((s for s in samples), key=lambda s: s.at)
    flows = {start: SlotFlows(start) for start in slots}
    if not flows:
        return []
    first, last = min(flows), max(flows) + SLOT
    for i, sample in enumerate(ordered):
        hold_end = sample.at + max_hold
        if i + 1 < len(ordered):
            hold_end = min(hold_end, ordered[i + 1].at)
        lo, hi = max(sample.at, first), min(hold_end, last)
        t = lo
        while t < hi:
            start = slot_start(t)
            piece_end = min(hi, start + SLOT)
            seconds = (piece_end - t).total_seconds()
            slot = flows.get(start)
            if slot is not None and seconds > 0:
                _credit(slot, sample, seconds)
            t = piece_end
    return [flows[s] for s in slots]


def _credit(slot: SlotFlows, sample: Sample, seconds: float) -> None:
    hours = seconds / 3600.0
    if sample.grid_w is not None and math.isfinite(sample.grid_w):
        slot.covered_s += seconds
        kwh = sample.grid_w * hours / 1000.0
        if kwh >= 0:
            slot.import_kwh += kwh
        else:
            slot.export_kwh -= kwh
    if sample.load_w is not None and math.isfinite(sample.load_w):
        slot.load_covered_s += seconds
        slot.load_kwh += max(sample.load_w, 0.0) * hours / 1000.0
        if sample.pv_w is not None and math.isfinite(sample.pv_w):
            slot.pv_kwh += max(sample.pv_w, 0.0) * hours / 1000.0


def self_use_grid(
    load_kwh: Sequence[float], pv_kwh: Sequence[float], start_soc_pct: float, battery: BatteryParams
) -> list[tuple[float, float]]:
    """(import, export) kWh per slot for a battery left in self-use, by the planner's own battery model: PV
    surplus charges it, it covers the load, never below the reserve."""
    return self_use_run(load_kwh, pv_kwh, start_soc_pct, battery)[0]


def self_use_run(
    load_kwh: Sequence[float], pv_kwh: Sequence[float], start_soc_pct: float, battery: BatteryParams
) -> tuple[list[tuple[float, float]], float]:
    """``self_use_grid`` and the SOC (%) the self-use battery ends with."""
    model, limits = battery.model(), battery.limits()
    soc = min(max(battery.capacity_kwh * start_soc_pct / 100.0, 0.0), battery.capacity_kwh)
    out = []
    for load, pv in zip(load_kwh, pv_kwh, strict=True):
        soc, imp, exp_ = step_slot(model, limits, soc, SELF_USE, soc, load, pv)
        out.append((imp, exp_))
    return out, soc / battery.capacity_kwh * 100.0


def _planned(slots: Sequence[datetime], planned: Iterable[PlannedSlot]) -> tuple[float | None, int]:
    """For each slot, the cost stated by the latest plan made at or before the slot's start (else the earliest
    plan that covers it, i.e. one made during the slot)."""
    by_slot: dict[datetime, list[PlannedSlot]] = {}
    for p in planned:
        by_slot.setdefault(p.start, []).append(p)
    total, count = 0.0, 0
    for start in slots:
        options = by_slot.get(start)
        if not options:
            continue
        before = [p for p in options if p.plan_generated_at <= start]
        chosen = (
            max(before, key=lambda p: p.plan_generated_at)
            if before
            else min(options, key=lambda p: p.plan_generated_at)
        )
        total += chosen.cost_gbp
        count += 1
    return (total if count else None), count


def account_day(
    day: date,
    samples: Iterable[Sample],
    import_prices: Mapping[datetime, float],
    export_prices: Mapping[datetime, float] | None = None,
    planned: Iterable[PlannedSlot] = (),
    battery: BatteryParams | None = None,
    tz: ZoneInfo = LONDON,
    max_hold: timedelta = MAX_HOLD,
    plan_value: StoredValue | None = None,
) -> DayAccount:
    """The local ``day``'s actual cost and its counterfactuals (see the module docstring for the rules)."""
    slots = local_day_slots(day, tz)
    samples = list(samples)
    flows = integrate(samples, slots, max_hold)
    exports = export_prices or {}

    actual, unpriced = 0.0, 0
    for f in flows:
        price = import_prices.get(f.start)
        if price is None:
            if f.import_kwh > 0 or f.export_kwh > 0:
                unpriced += 1
            continue
        actual += f.import_kwh * price - f.export_kwh * exports.get(f.start, 0.0)

    planned_cost, slots_planned = _planned(slots, planned)
    observed = [f for f in flows if f.observed]
    no_battery = self_use = self_use_end = None
    params = battery or BatteryParams()
    cap = next((s.capacity_kwh for s in samples if s.capacity_kwh), None)
    if cap:
        params = BatteryParams(cap, params.reserve_pct)
    loads_known = observed and all(f.load_covered_s >= f.covered_s for f in observed)
    priced = [f for f in observed if f.start in import_prices]
    if loads_known and priced:
        no_battery = sum(
            max(f.load_kwh - f.pv_kwh, 0.0) * import_prices[f.start]
            - max(f.pv_kwh - f.load_kwh, 0.0) * exports.get(f.start, 0.0)
            for f in priced
        )
        day_start = slots[0]
        first_soc = next(
            (s.soc_pct for s in sorted(samples, key=lambda s: s.at) if s.at >= day_start and s.soc_pct is not None),
            None,
        )
        if first_soc is not None:
            grid, self_use_end = self_use_run(
                [f.load_kwh for f in priced], [f.pv_kwh for f in priced], first_soc, params
            )
            self_use = sum(
                imp * import_prices[f.start] - exp * exports.get(f.start, 0.0)
                for f, (imp, exp) in zip(priced, grid, strict=True)
            )

    socs = [s.soc_pct for s in sorted(samples, key=lambda s: s.at) if slots[0] <= s.at and s.soc_pct is not None]
    value = plan_value or day_price_value(import_prices, params.model().eta_discharge)
    stored = su_stored = None
    if value is not None and socs:
        per_pct = params.capacity_kwh / 100.0 * value.gbp_per_kwh
        stored = (socs[-1] - socs[0]) * per_pct
        if self_use_end is not None:
            su_stored = (self_use_end - socs[0]) * per_pct
    return DayAccount(
        stored_value=value if socs else None,
        stored_change_value_gbp=stored,
        self_use_end_soc_pct=self_use_end,
        self_use_stored_change_value_gbp=su_stored,
        day=day,
        soc_start_pct=socs[0] if socs else None,
        soc_end_pct=socs[-1] if socs else None,
        actual_cost_gbp=actual,
        planned_cost_gbp=planned_cost,
        no_battery_cost_gbp=no_battery,
        self_use_cost_gbp=self_use,
        grid_import_kwh=sum(f.import_kwh for f in flows),
        grid_export_kwh=sum(f.export_kwh for f in flows),
        slots_observed=len(observed),
        slots_expected=len(slots),
        slots_unpriced=unpriced,
        slots_planned=slots_planned,
        flows=flows,
    )
