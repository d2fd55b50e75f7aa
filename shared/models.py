"""Every message on the bus, as pydantic v2 models: the only definition of the payloads.

Longer than 400 lines: the whole message contract reads top to bottom in one file, in sections by concept
(prices, forecasts, battery, plan, executor, commands); each model is small.

Conventions (docs/architecture.md, "Messages"): aware datetimes sent in UTC with ``Z``; units in field names
(``_kwh``, ``_w``, ``_pct``, ``_gbp``). Two price fields keep their published names without a suffix, both GBP/kWh:
``value_inc_vat`` (the shape of Home Assistant's Octopus integration; Octopus's own API sends pence under that name,
converted at the edge) and ``PlanSlot.export_value``. Battery power positive =
discharging, grid power positive = importing; slots are half-open ``[start, end)`` of 30 minutes keyed by their
UTC start. Data that can go stale carries ``valid_until``; consumers treat expired data as missing.
Unknown fields are ignored so that an older consumer can read a newer producer's message.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"  # a local wall-clock time
SLOT = timedelta(minutes=30)
MAX_SLOTS = 2000  # ~6 weeks of half-hours: far beyond any horizon we publish; caps hostile payloads


# Instants outside this range are never real for a home battery; they are hostile or broken input, and they break
# downstream arithmetic and storage (year 1 or 9999 crashed stores and slot maths in the reliability fuzzing).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _to_utc(value: datetime) -> datetime:
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        raise ValueError("time is out of range once converted to UTC") from None
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"time {value.isoformat()} is outside {EARLIEST.year}-{LATEST.year}")
    return value


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""An aware datetime, normalised to UTC (serialised with ``Z``). Naive datetimes are rejected."""


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Finite = Annotated[float, AfterValidator(_finite)]
Percent = Annotated[float, Field(ge=0, le=100), AfterValidator(_finite)]


class Message(BaseModel):
    """Base of every JSON message."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: int = SCHEMA_VERSION
    generated_at: UtcDatetime

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=False).encode()


class Expiring(Message):
    """A message whose content goes stale at ``valid_until``."""

    valid_until: UtcDatetime

    def is_valid(self, now: datetime) -> bool:
        return now < self.valid_until


class _Slot(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    start: UtcDatetime
    end: UtcDatetime

    @model_validator(mode="after")
    def _half_hour(self) -> _Slot:
        if self.end - self.start != SLOT:
            raise ValueError("a slot is exactly 30 minutes (end - start)")
        if self.start.minute % 30 or self.start.second or self.start.microsecond:
            raise ValueError("a slot starts on :00 or :30")
        return self


def _sorted_unique(slots: list[Any]) -> list[Any]:
    starts = [s.start for s in slots]
    if len(set(starts)) != len(starts):
        raise ValueError("duplicate slot start")
    if starts != sorted(starts):
        raise ValueError("slots must be sorted by start")
    return slots


# --------------------------------------------------------------------------------------------- prices


class Rate(_Slot):
    """One half-hour price, the shape of the Home Assistant Octopus integration's rates."""

    # GBP/kWh, VAT included. Agile is capped at 1 GBP; +-10 leaves room for any tariff and keeps the planner's
    # sums finite (a fuzzed 1e300 price overflowed its baseline costs).
    value_inc_vat: Annotated[float, Field(ge=-10, le=10), AfterValidator(_finite)]


class RateSeries(Expiring):
    """``pricing/import/rates`` and ``pricing/export/rates``: every known slot; gaps are missing slots."""

    tariff_code: str
    direction: Literal["import", "export"] = "import"
    unit: Literal["GBP/kWh"] = "GBP/kWh"
    source: str = "octopus"  # "octopus" when fetched, "store" when republished from disk at start
    fetched_at: UtcDatetime | None = None
    rates: Annotated[list[Rate], Field(max_length=MAX_SLOTS)]

    _check = field_validator("rates")(_sorted_unique)

    def price_at(self, slot_start: datetime) -> float | None:
        for rate in self.rates:
            if rate.start == slot_start:
                return rate.value_inc_vat
        return None


class CurrentRate(Expiring):
    """``pricing/import/current``: the price of the slot in progress, or ``known=False`` when there is none.

    A missing price is never published as 0: ``value_inc_vat`` is null and ``known`` is false.
    """

    tariff_code: str
    slot_start: UtcDatetime
    slot_end: UtcDatetime
    known: bool
    value_inc_vat: Finite | None = None
    unit: Literal["GBP/kWh"] = "GBP/kWh"
    # The cheapest published slot from the current one on (for Home Assistant); None when no price is known.
    next_cheapest_start: UtcDatetime | None = None
    next_cheapest_value_inc_vat: Finite | None = None

    @model_validator(mode="after")
    def _known_has_value(self) -> CurrentRate:
        if self.known != (self.value_inc_vat is not None):
            raise ValueError("known is true exactly when value_inc_vat is set")
        return self


class PricingAlert(Message):
    """``pricing/alert``: publication problems a person should know about (retained; cleared when resolved)."""

    code: Literal["ok", "prices_late", "fetch_failing", "validation_failed", "store_failing"]
    message: str
    since: UtcDatetime | None = None


PriceValue = Annotated[float, Field(ge=-10, le=10), AfterValidator(_finite)]  # GBP/kWh, ``Rate.value_inc_vat``'s bounds


class EstimateSlot(_Slot):
    """One half-hour of a price estimate: the median and a band about 80 % of real prices fall in."""

    median_gbp: PriceValue
    low_gbp: PriceValue
    high_gbp: PriceValue

    @model_validator(mode="after")
    def _ordered(self) -> EstimateSlot:
        if not self.low_gbp <= self.median_gbp <= self.high_gbp:
            raise ValueError("low_gbp <= median_gbp <= high_gbp")
        return self


class PriceEstimate(Expiring):
    """``pricing/import/estimate``: what the prices after the published ones may be. **Not a price**: nothing
    charges on it (the executor never reads it); the planner uses it only to value energy kept beyond the known
    prices, and the dashboard and Home Assistant show it as an estimate.

    ``slots`` run from ``published_until`` (the end of the last published slot) for 24-96 hours. ``scenarios_gbp``
    are equally likely price paths over the same slots (one value per slot each, GBP/kWh): real days' shapes, so
    each keeps a day's spread, which a per-slot median smooths away."""

    is_estimate: Literal[True] = True
    tariff_code: str
    direction: Literal["import", "export"] = "import"
    unit: Literal["GBP/kWh"] = "GBP/kWh"
    method: str  # e.g. "analog-v1", "agilepredict+analog-v1"
    source: Literal["learned", "agilepredict"] = "learned"
    learned_from: str  # the history (and external forecast) it was made from, in words
    published_until: UtcDatetime
    slots: Annotated[list[EstimateSlot], Field(min_length=1, max_length=MAX_SLOTS)]
    scenarios_gbp: Annotated[list[list[PriceValue]], Field(min_length=1, max_length=50)]

    _check = field_validator("slots")(_sorted_unique)

    @model_validator(mode="after")
    def _paths_fit(self) -> PriceEstimate:
        if any(len(path) != len(self.slots) for path in self.scenarios_gbp):
            raise ValueError("every scenario has one value per slot")
        if self.slots[0].start < self.published_until:
            raise ValueError("an estimate starts at or after the end of the published prices")
        return self


# --------------------------------------------------------------------------------------------- forecasts


class SlotEnergy(_Slot):
    # None = gap, not zero. 100 kWh in a half-hour (200 kW) is beyond any home: larger is a bad message.
    energy_kwh: Annotated[float, Field(ge=0, le=100), AfterValidator(_finite)] | None


class EnergyForecast(Expiring):
    """Per-slot energy forecast. ``forecast/pv`` and ``forecast/load``."""

    kind: Literal["pv", "load"]
    source: str  # e.g. "open-meteo", "history", "default-profile"
    model: str  # e.g. "gti-temp-v1", "weekday-blend-v1"
    slots: Annotated[list[SlotEnergy], Field(max_length=MAX_SLOTS)]

    _check = field_validator("slots")(_sorted_unique)

    def energy_at(self, slot_start: datetime) -> float | None:
        for slot in self.slots:
            if slot.start == slot_start:
                return slot.energy_kwh
        return None


class PvToday(Message):
    """``forecast/pv/today``: the local day's forecast PV energy, for Home Assistant."""

    date: date
    energy_kwh: Annotated[float, Field(ge=0)]


# --------------------------------------------------------------------------------------------- battery


class GridStatus(StrEnum):
    ON_GRID = "on_grid"
    OFF_GRID = "off_grid"
    UNKNOWN = "unknown"


class PowerwallConfig(BaseModel):
    """The writable part of the NetZero configuration, in our units. ``None`` = not set / not known."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    operational_mode: Literal["autonomous", "self_consumption", "backup"] | None = None
    backup_reserve_pct: Annotated[int, Field(ge=0, le=100)] | None = None
    grid_charging: bool | None = None
    energy_exports: Literal["pv_only", "battery_ok", "never"] | None = None


class BatteryState(Expiring):
    """``battery/state``: what the Powerwall reported, published by the executor (the only NetZero poller).

    ``valid_until`` = ``observed_at`` + 5 minutes.
    """

    observed_at: UtcDatetime
    soc_pct: Percent
    capacity_kwh: Annotated[float, Field(gt=0)] | None = None
    battery_power_w: Finite | None = None  # + discharging, - charging
    grid_power_w: Finite | None = None  # + importing, - exporting
    solar_power_w: Finite | None = None
    load_power_w: Finite | None = None
    grid_status: GridStatus = GridStatus.UNKNOWN
    storm_mode_active: bool | None = None
    config: PowerwallConfig = PowerwallConfig()
    source: str = "netzero"


# --------------------------------------------------------------------------------------------- plan


class Action(StrEnum):
    SELF_USE = "self_use"  # normal Powerwall behaviour
    CHARGE = "charge"  # grid-charge towards target_soc_pct
    HOLD = "hold"  # keep the SOC; the house runs from the grid


class Reason(StrEnum):
    """Why a slot has its action. The planner may add detail in ``reason_detail``."""

    CHEAPEST_NEEDED = "cheapest_needed"
    NEGATIVE_PRICE = "negative_price"
    SOLAR_COVERS = "solar_covers"
    PEAK_BLOCKED = "peak_blocked"
    PRICE_ABOVE_LIMIT = "price_above_limit"
    NO_PRICE = "no_price"
    HOLD_FOR_LATER = "hold_for_later"
    BATTERY_FULL = "battery_full"
    SELF_USE = "self_use"
    NO_INPUTS = "no_inputs"
    STALE_INPUTS = "stale_inputs"
    OVERRIDE = "override"
    MANUAL_WINDOW = "manual_window"  # a person fixed this slot (executor/windows)
    SAVING_SESSION = "saving_session"  # Octopus pays for importing less: the battery covers the house
    FREE_SESSION = "free_session"  # Octopus import is free: charge to full


class PlanSlot(_Slot):
    action: Action
    reason: Reason
    reason_detail: str | None = None
    target_soc_pct: Percent | None = None  # for charge (and hold: the SOC to keep)
    expected_soc_pct: Percent  # at the end of the slot
    value_inc_vat: Finite | None = None  # import price used, GBP/kWh (None = unknown)
    export_value: Finite | None = None  # export price used, GBP/kWh
    pv_kwh: Annotated[float, Field(ge=0)] = 0.0
    load_kwh: Annotated[float, Field(ge=0)] = 0.0
    grid_import_kwh: Annotated[float, Field(ge=0)] = 0.0
    grid_export_kwh: Annotated[float, Field(ge=0)] = 0.0
    cost_gbp: Finite = 0.0  # import cost minus export earnings in this slot


class PlanInputs(BaseModel):
    """The inputs a plan was made from (their ``generated_at`` / observation times)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    rates_generated_at: UtcDatetime | None = None
    export_rates_generated_at: UtcDatetime | None = None
    pv_generated_at: UtcDatetime | None = None
    load_generated_at: UtcDatetime | None = None
    battery_observed_at: UtcDatetime | None = None
    soc_pct: Percent | None = None


EndValueMethod = Literal["zero", "linear", "forecast", "scenarios", "estimate"]


class StrategyOutcome(BaseModel):
    """One strategy over a plan's slots (``Plan.comparison``), with the energy it leaves in the battery valued the
    same way for every strategy: by the plan's own value of stored energy at the horizon's end (its cost-to-go
    curve). ``no_battery`` keeps the energy the battery has now (as if it were not used): no change.

    ``comparable_cost_gbp = cost_gbp - stored_change_value_gbp``; ``saving_gbp`` is this strategy's comparable cost
    minus the plan's (what the plan saves against it: never negative for a correct plan, except where a person
    fixed slots by hand)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    cost_gbp: Finite  # money paid over the slots (imports minus exports)
    end_soc_pct: Percent  # SOC at the horizon's end
    end_value_gbp: Finite  # the energy above the reserve at the end, valued by the plan's end value
    stored_change_value_gbp: Finite  # end value minus the same valuation of the energy there now
    comparable_cost_gbp: Finite
    saving_gbp: Finite  # comparable cost minus the plan's (0 for the plan itself)


class Plan(Expiring):
    """``planner/plan``: the schedule. ``valid_until`` is a lease the executor enforces."""

    plan_id: str
    status: Literal["ok", "degraded"] = "ok"  # degraded: made without usable inputs, all self_use
    reason: str | None = None  # why degraded
    inputs: PlanInputs = PlanInputs()
    slots: Annotated[list[PlanSlot], Field(max_length=MAX_SLOTS)]
    expected_cost_gbp: Finite = 0.0
    # no_battery, self_use, seed_rule: money alone (``comparison[name].cost_gbp``), without the end energy's value
    baseline_costs_gbp: dict[str, Finite] = Field(default_factory=dict)
    end_value_gbp: Finite = 0.0  # value credited for the energy left at the horizon's end
    end_soc_pct: Percent | None = None  # the SOC the plan leaves at the horizon's end
    end_value_method: EndValueMethod | None = None  # how that energy was valued (``comparison``'s note says more)
    end_value_gbp_per_kwh: Finite | None = None  # the plan's end value per stored kWh above the reserve (a mean)
    comparable_cost_gbp: Finite | None = None  # expected cost minus the value of the change in stored energy
    # plan, no_battery, self_use, seed_rule: each strategy over the same slots, its end energy valued alike
    comparison: dict[str, StrategyOutcome] = Field(default_factory=dict)
    comparison_note: str | None = None  # one line: how the energy left at the end was valued
    # The rules it was made with (None in a plan from before they were recorded): the executor enforces them too.
    peak_start_local: Annotated[str, Field(pattern=HHMM)] | None = None
    peak_end_local: Annotated[str, Field(pattern=HHMM)] | None = None
    max_charge_price_gbp: Annotated[float, Field(ge=-1, le=2), AfterValidator(_finite)] | None = None  # GBP/kWh

    _check = field_validator("slots")(_sorted_unique)

    def slot_at(self, t: datetime) -> PlanSlot | None:
        for slot in self.slots:
            if slot.start <= t < slot.end:
                return slot
        return None


class PlanNow(Expiring):
    """``planner/plan/current``: the slot in progress (for Home Assistant and Node-RED)."""

    plan_id: str
    slot: PlanSlot | None
    next_charge_start: UtcDatetime | None = None


class PlannerSettings(BaseModel):
    """Planner settings that a person can change on the bus (``planner/<name>`` and ``planner/<name>/set``)."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    min_soc_pct: Annotated[float, Field(ge=0, le=100)] = 10.0
    max_charge_price_gbp: Annotated[float, Field(ge=-1, le=2)] = 0.20  # GBP/kWh
    target_soc_cap_pct: Annotated[float, Field(ge=0, le=100)] = 100.0
    peak_start_local: Annotated[str, Field(pattern=HHMM)] = "16:00"
    peak_end_local: Annotated[str, Field(pattern=HHMM)] = "19:00"


# --------------------------------------------------------------------------------------------- executor


class ExecutorMode(StrEnum):
    AUTO = "auto"
    FORCE_CHARGE = "force_charge"
    HOLD = "hold"
    OFF = "off"


class RuleOutcome(BaseModel):
    """One safety rule's verdict on a decision."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    rule: str  # e.g. "peak_window", "price_limit", "off_grid", "stale_inputs", "bounds", "budget", "leaving"
    verdict: Literal["pass", "blocked", "changed", "stand_aside"]
    detail: str = ""


class AppliedDecision(Message):
    """``executor/applied`` (not retained, one per decision): what was decided, sent and read back."""

    decision_id: str
    plan_id: str | None = None
    slot_start: UtcDatetime | None = None
    mode: ExecutorMode
    dry_run: bool
    requested_action: Action | None  # from the plan or the override, before the rules
    action: Action | None  # after the rules; None = stand aside (touch nothing)
    rules: list[RuleOutcome] = Field(default_factory=list)
    desired: PowerwallConfig | None = None
    sent: PowerwallConfig | None = None
    observed: PowerwallConfig | None = None
    # grid_down_after_write: the write's own response showed the site off-grid, islanded or in storm watch; what
    # was sent may be in force (the journal keeps it as ours) and nothing more is sent until a read shows the grid
    outcome: Literal[
        "applied", "unchanged", "dry_run", "stood_aside", "deferred", "failed", "mismatch", "grid_down_after_write"
    ]
    error: str | None = None
    soc_pct: Percent | None = None


class LastDecision(Message):
    """``executor/last_decision`` (retained): the latest decision in a few fields, for Home Assistant and glances
    (``executor/applied`` carries the whole decision, not retained). ``generated_at`` is when it was decided."""

    decision_id: str
    action: Action | None  # after the rules; None = stood aside (touched nothing)
    requested_action: Action | None = None  # from the plan or an override, before the rules
    outcome: str  # AppliedDecision.outcome
    mode: ExecutorMode
    dry_run: bool = False
    rule: str | None = None  # the rule that changed or blocked the request, if one did
    summary: Annotated[str, Field(max_length=200)]  # one plain line, e.g. "Charging the battery (applied)"
    soc_pct: Percent | None = None


class Heartbeat(Message):
    """``executor/heartbeat``: the executor is alive; ``forced`` says whether a forced state is active."""

    seq: int
    forced: bool
    lease_until: UtcDatetime | None = None


class ExecutorAlert(Message):
    """``executor/alert``: what keeps the executor from doing its job until a person acts (retained; ``ok`` when
    nothing does). ``code`` is the most pressing problem, ``message`` says why and what to do (every problem, when
    there are several); it is cleared by itself once the cause has gone (the next good answer from NetZero, a
    baseline that can be restored)."""

    code: Literal["ok", "netzero_refused", "baseline_unrestorable"]
    message: str
    since: UtcDatetime | None = None


class OverrideState(Message):
    """``executor/override`` (retained): the override in force now, or none (``action`` None). The executor
    publishes it when an override is accepted, cancelled or over, and on every (re)connect; an override is not
    kept across a restart, so a restarted executor says none. ``summary`` is one plain line in the system's zone."""

    action: Action | None = None  # None: no override in force
    until: UtcDatetime | None = None
    target_soc_pct: Percent | None = None
    request_id: str | None = None  # the command that set it
    summary: Annotated[str, Field(max_length=100)] = "None in force"  # e.g. "Charge until 05:30 (to 90 %)"

    @model_validator(mode="after")
    def _until_required(self) -> OverrideState:
        if self.action is not None and self.until is None:
            raise ValueError("an override in force has an end time (until)")
        return self


class WatchdogReport(Message):
    """``executor/watchdog``: what the watchdog saw and did."""

    state: Literal["watching", "restored", "restore_failed", "idle"]
    last_heartbeat_at: UtcDatetime | None = None
    detail: str = ""


class CostTotals(BaseModel):
    """Daily summaries added up over a period (this month, since install). Counterfactuals and savings are summed
    only over the days where they could be estimated (``days_compared``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    first_date: date | None = None
    last_date: date | None = None
    days: int = 0
    days_compared: int = 0
    actual_cost_gbp: Finite
    planned_cost_gbp: Finite | None = None
    no_battery_cost_gbp: Finite | None = None
    self_use_cost_gbp: Finite | None = None
    saved_vs_no_battery_gbp: Finite | None = None
    saved_vs_self_use_gbp: Finite | None = None


class DailySummary(Message):
    """``executor/daily_summary``: one local day's money, estimated from observations (not a bill).

    Published by the accounting job beside the executor (``services/accounting``) after each local midnight."""

    date: date
    actual_cost_gbp: Finite
    planned_cost_gbp: Finite | None = None
    no_battery_cost_gbp: Finite | None = None
    self_use_cost_gbp: Finite | None = None
    grid_import_kwh: Annotated[float, Field(ge=0)] = 0.0
    grid_export_kwh: Annotated[float, Field(ge=0)] = 0.0
    slots_observed: int = 0
    slots_expected: int = 48
    slots_unpriced: int = 0  # slots with energy but no known import price: left out of actual_cost_gbp
    slots_planned: int = 0  # slots a plan covered (planned_cost_gbp is their sum)
    soc_start_pct: Percent | None = None  # first observed SOC of the day: energy bought for another day shows here
    soc_end_pct: Percent | None = None  # last observed SOC of the day
    # Stored energy valued alike for batsched and the self-use counterfactual (see MoneyPeriod); None: not valued
    stored_value_gbp_per_kwh: Finite | None = None
    stored_value_source: Literal["plan", "day_prices"] | None = None  # the day's last plan, or its mean price
    stored_change_value_gbp: Finite | None = None  # (soc_end - soc_start) as kWh x the value per kWh
    self_use_end_soc_pct: Percent | None = None  # where the self-use counterfactual ended the day
    self_use_stored_change_value_gbp: Finite | None = None
    month: CostTotals | None = None  # this local month up to and including ``date``
    since_install: CostTotals | None = None  # every day in the accounting history up to ``date``


class MoneyPeriod(BaseModel):
    """One period's money (a day, a month, since install) in ``accounting/money``. Estimated from observations,
    not a bill. ``None`` where the observations cannot support a figure (no load/PV readings, no start SOC).

    Stored energy: at the end of a period batsched's battery and the self-use counterfactual's hold different
    amounts; that difference is valued per kWh (``MoneySummary.stored_value_note`` says how), so neither side is
    credited for draining the battery. The no-battery household has no battery: nothing stored changes."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    period: Literal["day", "month", "since_install"]
    label: str  # "2026-12-05", "2026-12", "since install"
    first_date: date | None = None
    last_date: date | None = None
    days: int = 0
    days_compared: int = 0  # days whose counterfactuals could be estimated (the comparisons sum over these)
    partial: bool = False  # today so far (not a closed day)
    actual_cost_gbp: Finite  # what the meter saw: imports minus exports
    stored_change_value_gbp: Finite | None = None  # value of the energy added to the battery (negative: drawn)
    actual_comparable_cost_gbp: Finite | None = None  # actual cost minus stored_change_value_gbp
    no_battery_cost_gbp: Finite | None = None
    self_use_cost_gbp: Finite | None = None  # battery left in self-use, from the same start
    self_use_comparable_cost_gbp: Finite | None = None  # self-use cost minus the value of its stored change
    saved_vs_no_battery_gbp: Finite | None = None  # no_battery - actual_comparable (over days_compared)
    saved_vs_self_use_gbp: Finite | None = None  # self_use_comparable - actual_comparable (over days_compared)
    grid_import_kwh: Annotated[float, Field(ge=0)] = 0.0
    grid_export_kwh: Annotated[float, Field(ge=0)] = 0.0


class MoneySummary(Message):
    """``accounting/money`` (retained): today so far, each recent day, each month and since install."""

    today: MoneyPeriod | None = None
    days: Annotated[list[MoneyPeriod], Field(max_length=400)] = Field(default_factory=list)  # oldest first
    months: Annotated[list[MoneyPeriod], Field(max_length=400)] = Field(default_factory=list)  # oldest first
    since_install: MoneyPeriod | None = None
    stored_value_note: str = ""  # one line: how stored energy was valued


# --------------------------------------------------------------------------------------------- manual windows

MAX_WINDOWS = 200  # pending windows at once; far beyond any real use, caps hostile input


class ManualWindow(BaseModel):
    """A future period a person fixed by hand: grid-charge (towards ``target_soc_pct``) or hold, whatever the plan
    says. The executor still applies every safety rule to it; the planner plans around it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    window_id: Annotated[int, Field(ge=1)]
    start: UtcDatetime
    end: UtcDatetime
    action: Literal["charge", "hold"]
    target_soc_pct: Percent | None = None
    source: str = "mqtt"  # mqtt | dashboard | api | seed
    origin: str | None = None  # e.g. "seed schedule 42"
    created_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ManualWindow:
        if self.end <= self.start:
            raise ValueError("a window ends after it starts")
        return self

    def covers(self, t: datetime) -> bool:
        return self.start <= t < self.end


class WindowList(Message):
    """``executor/windows`` (retained): every pending window (not yet over), by start."""

    windows: Annotated[list[ManualWindow], Field(max_length=MAX_WINDOWS)]

    def at(self, t: datetime) -> ManualWindow | None:
        return next((w for w in self.windows if w.covers(t)), None)


class ImportedHistory(Message):
    """``executor/history/imported`` (retained): decisions imported from the original app's database, for the
    dashboard's history (they are in the executor's journal too)."""

    source: Literal["seed"] = "seed"
    imported_at: UtcDatetime
    total: int  # imported in the journal; ``decisions`` may hold only the newest when they do not fit a message
    decisions: list[AppliedDecision]


# --------------------------------------------------------------------------------------------- Octopus sessions


class OctopusSession(BaseModel):
    """One Octopus event the account takes part in: a Saving Session (paid to import less) or a free-electricity
    session (import is free)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: Literal["saving", "free"]
    code: str
    start: UtcDatetime
    end: UtcDatetime
    reward_octopoints_per_kwh: Annotated[int, Field(ge=0, le=100_000)] | None = None  # saving sessions
    reward_gbp_per_kwh: Annotated[float, Field(ge=0, le=100)] | None = None  # the same in money

    @model_validator(mode="after")
    def _ordered(self) -> OctopusSession:
        if self.end <= self.start:
            raise ValueError("a session ends after it starts")
        return self

    def covers(self, t: datetime) -> bool:
        return self.start <= t < self.end

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start < end and start < self.end


class SessionList(Message):
    """``pricing/sessions`` (retained): the account's joined Saving Sessions and its free-electricity sessions.

    ``status`` is ``failing`` while the GraphQL API cannot be read: the sessions last known are kept (``error``
    says why, ``since`` when it started); ``disabled`` without an account number and API key."""

    status: Literal["ok", "failing", "disabled"]
    error: str | None = None
    since: UtcDatetime | None = None
    fetched_at: UtcDatetime | None = None
    sessions: Annotated[list[OctopusSession], Field(max_length=500)] = Field(default_factory=list)

    def at(self, t: datetime, kind: str | None = None) -> OctopusSession | None:
        return next((s for s in self.sessions if s.covers(t) and (kind is None or s.kind == kind)), None)


# --------------------------------------------------------------------------------------------- bus health


class BusHealth(Message):
    """``<service>/health``: the service's bus client counters, so a message it could not take is never silent.

    ``dropped_overflow`` counts messages dropped because its inbox was full (a handler too slow for the traffic);
    ``dropped_invalid`` payloads that did not validate; ``handler_errors`` messages whose handler raised."""

    received: int = 0
    dropped_overflow: int = 0
    dropped_invalid: int = 0
    handler_errors: int = 0
    inbox_max: int = 0
    connects: int = 0


class FleetStats(Message):
    """``<fleet root>/fleet/<worker>/stats``: what one fleet planner process has done."""

    worker: str
    homes: int = 0
    homes_with_battery: int = 0
    planned: int = 0
    failed: int = 0
    mean_plan_ms: Finite | None = None


# --------------------------------------------------------------------------------------------- commands


def new_request_id() -> str:
    return uuid.uuid4().hex[:12]


class Command(BaseModel):
    """A command on ``…/cmd/<verb>`` (never retained). The reply goes to ``…/cmd/<verb>/result``."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    request_id: Annotated[str, Field(min_length=1, max_length=100)] = Field(default_factory=new_request_id)
    reason: str | None = None


class OverrideCommand(Command):
    """``executor/cmd/override``: force an action until a time (the same safety rules still apply)."""

    action: Action | None  # None cancels the override
    until: UtcDatetime | None = None
    target_soc_pct: Percent | None = None

    @model_validator(mode="after")
    def _until_required(self) -> OverrideCommand:
        if self.action is not None and self.until is None:
            raise ValueError("an override needs an end time (until)")
        return self


class WindowAddCommand(Command):
    """``executor/cmd/window_add``: add a manual window (refused with the reason when a safety rule forbids it)."""

    start: UtcDatetime
    end: UtcDatetime
    action: Literal["charge", "hold"] = "charge"
    target_soc_pct: Percent | None = None
    source: Annotated[str, Field(max_length=20)] = "mqtt"


class WindowDeleteCommand(Command):
    """``executor/cmd/window_delete``: delete a pending manual window by id."""

    window_id: Annotated[int, Field(ge=1)]


class CommandResult(Message):
    request_id: str
    status: Literal["ok", "error"]
    data: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
