"""The executor's safety rules, each a named pure check that may block or change a proposal (docs/architecture.md).

The executor trusts nothing upstream: whatever the plan, the mode or an override asks, ``decide.decide`` runs these
in this order and each says what it did in the decision (a ``RuleOutcome``):

1. ``leaving``       SIGTERM or mode ``off``: the baseline when a state of ours is active, else stand aside;
   (a manual window, when one asked, is named first: ``windows.window_outcome``)
2. ``off_grid``      grid down, islanded or storm watch (``grid_unsafe``): stand aside, touch nothing;
3. ``stale_inputs``  battery state too old, or (for the plan) no plan, an expired one or no slot now: baseline;
4. ``clock_skew``    this host's clock and NetZero's disagree (peak, slots, leases misread): no charge or hold;
5. ``baseline``      the user's own configuration cannot be restored exactly (a reserve of 81–99 %): no charge
                     or hold, unless the user accepted the nearest restorable reserve (80 %);
6. ``saving_session`` never grid-charge or hold in an Octopus Saving Session (and ``peak_lead`` before it);
7. ``peak_window``   never grid-charge in the local peak: ours, the planner's setting or the plan's (and for
                     ``peak_lead`` before it);
8. ``price_limit``   never grid-charge when the price now is unknown or above the lowest limit (ours, the
                     planner's, the plan's), or when the next slot's known price is (near a slot's end);
9. ``bounds``        target SOC within limits, charge → hold once reached;
   then on the configuration about to be sent:
10. ``reserve_bounds`` never a reserve of 81–99 % (``translate.coerced_reserve``), reported as ``bounds``;
11. ``budget``       no write without a request token (NetZero's own 429 wait or 403 back-off named first), and
                     no re-send before the mismatch backoff ends;
12. ``fresh_read``   a charge or hold is sent only within ``fresh_read`` of a read that showed the grid up (and
                     the write's own response is read the same way: ``decide.write_outcome``).

An override, the mode, a manual window or a free-electricity session is a proposal like the plan's
(``decide.requested``) and passes the same rules; dry-run decides the same and writes nothing (the executor).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from services.executor.translate import coerced_reserve, safe_reserve
from shared.models import (
    Action,
    BatteryState,
    CurrentRate,
    GridStatus,
    Plan,
    PlanSlot,
    PowerwallConfig,
    RateSeries,
    SessionList,
)
from shared.models import RuleOutcome as Outcome
from shared.peak import PeakWindow, with_lead
from shared.prices import price_now
from shared.slots import slot_start

PASS = "pass"


@dataclass(frozen=True)
class RuleConfig:
    tz: ZoneInfo
    peak_start: time = time(16)
    peak_end: time = time(19)
    peak_lead: timedelta = timedelta(minutes=5)
    max_price_gbp: float = 0.20
    min_target_soc_pct: float = 10.0
    max_target_soc_pct: float = 100.0
    battery_max_age: timedelta = timedelta(minutes=3)
    max_clock_skew: timedelta = timedelta(minutes=1)
    # The oldest read a charge or hold may be sent on. One decision's GET and POST are apart by the decision and
    # the journal's fsync (milliseconds; a second or two on a slow SD card), so 5 s lets a decision use its own
    # read and never one from an earlier decision (those are 30 s and more apart, or woken early by an input,
    # when the executor reads again first). A change after the read shows in the write's response.
    fresh_read: timedelta = timedelta(seconds=5)
    accept_nearest_reserve: bool = False  # the user accepts 80 % back after forcing, for their own 81–99 %

    @property
    def peak(self) -> PeakWindow:
        return PeakWindow(self.peak_start, self.peak_end, self.tz)


@dataclass(frozen=True)
class Proposal:
    """What the executor intends so far. ``action=None`` means stand aside: send nothing at all."""

    action: Action | None
    target_soc_pct: float | None = None
    source: Literal["plan", "override", "mode", "window", "session", "leaving", "none"] = "plan"
    slot: PlanSlot | None = None

    def to(self, action: Action | None) -> Proposal:
        return replace(self, action=action)


def _out(rule: str, verdict: str, detail: str = "") -> Outcome:
    return Outcome(rule=rule, verdict=verdict, detail=detail)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------- rule 1


def plan_peak(plan: Plan | None, cfg: RuleConfig) -> PeakWindow | None:
    """The peak window the plan was made with, when it records one (the planner's setting may differ from ours)."""
    if plan is None or plan.peak_start_local is None or plan.peak_end_local is None:
        return None
    return PeakWindow.parse(plan.peak_start_local, plan.peak_end_local, cfg.tz)


def _windows(cfg: RuleConfig, plan: Plan | None, planner: PeakWindow | None) -> list[tuple[PeakWindow, str]]:
    """Our own peak window, and the planner's (its ``planner/peak_*_local`` setting) and the plan's when they
    differ, each with whose it is: charging is kept out of all, so a change of any only makes the rule stricter."""
    out = [(cfg.peak, "")]
    for window, whose in (
        (planner, " (the planner's peak window)"),
        (plan_peak(plan, cfg), " (the plan's peak window)"),
    ):
        if window is not None and all(window != w for w, _ in out):
            out.append((window, whose))
    return out


def in_peak(now: datetime, cfg: RuleConfig, plan: Plan | None = None, planner: PeakWindow | None = None) -> bool:
    """In our peak window, the planner's or the plan's, or within ``peak_lead`` of one's start."""
    return any(w.contains(now, cfg.peak_lead) for w, _ in _windows(cfg, plan, planner))


def next_peak_start(
    now: datetime, cfg: RuleConfig, plan: Plan | None = None, planner: PeakWindow | None = None
) -> datetime:
    return min(w.next_start(now) for w, _ in _windows(cfg, plan, planner))


def peak_window(
    p: Proposal, now: datetime, cfg: RuleConfig, plan: Plan | None = None, planner: PeakWindow | None = None
) -> tuple[Proposal, Outcome]:
    """Our own window always holds; the planner's and the one the plan was made with too (the strictest wins)."""
    if p.action == Action.CHARGE:
        for w, whose in _windows(cfg, plan, planner):
            if w.contains(now, cfg.peak_lead):
                return p.to(Action.SELF_USE), _out("peak_window", "blocked", f"no grid charging {w}{whose}")
    return p, _out("peak_window", PASS)


def saving_session(
    p: Proposal, now: datetime, sessions: SessionList | None, cfg: RuleConfig
) -> tuple[Proposal, Outcome]:
    """Octopus pays for importing less in a Saving Session: never grid-charge (nor hold, which buys the house's
    load) in one, whatever asks (plan, override, window, mode); stopping ``peak_lead`` early, like the peak."""
    if sessions is None:
        return p, _out("saving_session", PASS)
    s = with_lead(now, cfg.peak_lead, lambda t: sessions.at(t, "saving"))
    if s is None:
        return p, _out("saving_session", PASS)
    until = f"{s.end.astimezone(cfg.tz):%H:%M}"
    if p.action in (Action.CHARGE, Action.HOLD):
        return p.to(Action.SELF_USE), _out(
            "saving_session",
            "blocked",
            f"Octopus Saving Session {s.code} until {until}: no {p.action.value}, nothing bought",
        )
    return p, _out("saving_session", PASS, f"Octopus Saving Session {s.code} until {until}")


# ----------------------------------------------------------------------------------------------- rule 2


def current_price(now: datetime, current: CurrentRate | None, rates: RateSeries | None) -> float | None:
    """The pricing service's price for the slot containing ``now``; None when it is unknown or expired."""
    return price_now(now, current, rates)


def price_limit_gbp(cfg: RuleConfig, planner_max: float | None, plan: Plan | None = None) -> float:
    """The executor's own limit, or the planner's (its setting, or the one the plan was made with) if lower."""
    theirs = [x for x in (planner_max, plan.max_charge_price_gbp if plan is not None else None) if x is not None]
    return min([cfg.max_price_gbp, *theirs])


def next_price(now: datetime, rates: RateSeries | None, lead: timedelta) -> float | None:
    """The next slot's published price when ``now`` is within ``lead`` of the slot's end (else None)."""
    end = slot_start(now) + timedelta(minutes=30)
    if rates is None or end - now > lead or not rates.is_valid(now):
        return None
    return rates.price_at(end)


def price_limit(
    p: Proposal, now: datetime, price: float | None, limit: float, upcoming: float | None = None
) -> tuple[Proposal, Outcome]:
    """``upcoming``: the next slot's price near a slot's end; a known dear next slot stops the charge early, as
    the gateway applies a stop late (an unknown one does not, or every slot would end with a stop and a start)."""
    if p.action != Action.CHARGE:
        return p, _out("price_limit", PASS)
    if price is None:
        return p.to(Action.SELF_USE), _out("price_limit", "blocked", "price for now unknown: no grid charging")
    if price > limit:
        return p.to(Action.SELF_USE), _out(
            "price_limit", "blocked", f"price {price * 100:.2f}p/kWh above limit {limit * 100:.2f}p/kWh"
        )
    if upcoming is not None and upcoming > limit:
        return p.to(Action.SELF_USE), _out(
            "price_limit", "blocked", f"next slot's price {upcoming * 100:.2f}p/kWh above limit: stopping early"
        )
    return p, _out("price_limit", PASS, f"price {price * 100:.2f}p/kWh ≤ {limit * 100:.2f}p/kWh")


# ----------------------------------------------------------------------------------------------- rule 3


class GridReading(Protocol):
    grid_status: GridStatus
    storm_mode_active: bool | None


def grid_unsafe(reading: GridReading) -> str | None:
    """Why the Powerwall must not be touched now (grid down, islanded, storm watch), or None. The executor's rule,
    the response to its writes, its hand-back before exit and the watchdog's restore all ask this."""
    if reading.grid_status == GridStatus.OFF_GRID:
        return "grid down or islanded"
    if reading.storm_mode_active:
        return "storm watch active"
    return None


def off_grid(p: Proposal, battery: BatteryState | None) -> tuple[Proposal, Outcome]:
    if battery is None:
        return p, _out("off_grid", PASS, "grid state unknown (no battery state)")
    if (why := grid_unsafe(battery)) is not None:
        return p.to(None), _out("off_grid", "stand_aside", f"{why}: touching nothing")
    if battery.grid_status == GridStatus.UNKNOWN and p.action == Action.CHARGE:
        return p.to(Action.SELF_USE), _out("off_grid", "blocked", "grid status unknown: no grid charging")
    return p, _out("off_grid", PASS)


# ----------------------------------------------------------------------------------------------- rule 4


def stale_inputs(
    p: Proposal, now: datetime, plan: Plan | None, battery: BatteryState | None, cfg: RuleConfig
) -> tuple[Proposal, Outcome]:
    if p.action is None:
        return p, _out("stale_inputs", PASS)
    if (
        battery is None
        or now - battery.observed_at > cfg.battery_max_age
        or now < battery.observed_at - cfg.battery_max_age
    ):
        age = "none" if battery is None else f"{(now - battery.observed_at).total_seconds():.0f}s old"
        return p.to(Action.SELF_USE), _out("stale_inputs", "changed", f"battery state stale ({age}): baseline")
    if p.source == "plan":
        if plan is None:
            return p.to(Action.SELF_USE), _out("stale_inputs", "changed", "no plan: baseline")
        if not plan.is_valid(now):
            return p.to(Action.SELF_USE), _out(
                "stale_inputs", "changed", f"plan {plan.plan_id} expired at {plan.valid_until.isoformat()}: baseline"
            )
        if p.slot is None:
            return p.to(Action.SELF_USE), _out("stale_inputs", "changed", "the plan has no slot for now: baseline")
    return p, _out("stale_inputs", PASS)


def clock_off(skew: timedelta | None, cfg: RuleConfig) -> bool:
    """This host's clock is known to be off NetZero's by more than the limit."""
    return skew is not None and abs(skew) > cfg.max_clock_skew


def clock_skew(p: Proposal, skew: timedelta | None, cfg: RuleConfig) -> tuple[Proposal, Outcome]:
    """A Pi without a real-time clock boots in the past until NTP syncs; a wrong time zone or a stepped clock does
    the same. The peak window, the plan's slots and every lease are read on this clock, so while it disagrees
    with NetZero's (``skew`` = this host's time minus theirs) nothing is forced: the baseline, which is safe at
    any hour. Unknown skew (no ``Date`` from NetZero yet) passes."""
    if p.action not in (Action.CHARGE, Action.HOLD) or not clock_off(skew, cfg):
        return p, _out("clock_skew", PASS)
    assert skew is not None
    side = "ahead of" if skew > timedelta(0) else "behind"
    detail = f"this host's clock is {abs(skew.total_seconds()):.0f} s {side} NetZero's: no {p.action.value}; check NTP"
    return p.to(Action.SELF_USE), _out("clock_skew", "blocked", detail)


def restorable_reserve(pct: int | None) -> bool:
    """NetZero stores a reserve of 81–99 % as 80 %: such a reserve, once changed, cannot be put back."""
    return pct is None or not coerced_reserve(pct)


def baseline(p: Proposal, base: PowerwallConfig, cfg: RuleConfig) -> tuple[Proposal, Outcome]:
    """Nothing is forced that could not be handed back exactly: with the user's own reserve at 81–99 % a charge
    or hold stays off, unless they accepted 80 % back (``accept_nearest_reserve``). 100 % is never the "nearest"
    value taken: a reserve of 100 % makes the Powerwall charge from the grid at any price."""
    if p.action not in (Action.CHARGE, Action.HOLD) or restorable_reserve(base.backup_reserve_pct):
        return p, _out("baseline", PASS)
    pct = base.backup_reserve_pct
    if cfg.accept_nearest_reserve:
        return p, _out("baseline", PASS, f"your reserve {pct}% will be handed back as 80% (accepted in the settings)")
    return p.to(Action.SELF_USE), _out("baseline", "blocked", unrestorable_text(pct))


def unrestorable_text(pct: int | None) -> str:
    return (
        f"your own backup reserve of {pct}% cannot be restored through NetZero (it stores 81-99% as 80%), so "
        "batsched charges and holds nothing; set 80% or 100% in the Tesla app, or set "
        "BATSCHED_BASELINE_ACCEPT_NEAREST_RESERVE=true to get 80% back after each charge or hold"
    )


# ----------------------------------------------------------------------------------------------- rule 5


def bounds(p: Proposal, battery: BatteryState | None, cfg: RuleConfig) -> tuple[Proposal, Outcome]:
    if p.action != Action.CHARGE:
        return p, _out("bounds", PASS)
    target = p.target_soc_pct if p.target_soc_pct is not None else cfg.max_target_soc_pct
    clamped = min(max(target, cfg.min_target_soc_pct), cfg.max_target_soc_pct)
    notes = []
    if clamped != target:
        notes.append(f"target {target:g}% clamped to {clamped:g}%")
    p = replace(p, target_soc_pct=clamped)
    if battery is not None and battery.soc_pct >= clamped:
        notes.append(f"SOC {battery.soc_pct:.1f}% ≥ target {clamped:g}%: hold")
        return p.to(Action.HOLD), _out("bounds", "changed", "; ".join(notes))
    return p, _out("bounds", "changed" if notes else PASS, "; ".join(notes))


def reserve_bounds(change: PowerwallConfig | None) -> tuple[PowerwallConfig | None, Outcome]:
    """Last check on what is about to be sent: never a reserve of 81–99 % (Tesla would store 80 %)."""
    if change is not None and change.backup_reserve_pct is not None and coerced_reserve(change.backup_reserve_pct):
        fixed = replace_config(change, backup_reserve_pct=safe_reserve(change.backup_reserve_pct))
        return fixed, _out("bounds", "changed", f"reserve {change.backup_reserve_pct}% → 80% (81–99 are coerced)")
    return change, _out("bounds", PASS, "reserve within 0–80 or 100")


def replace_config(config: PowerwallConfig, **fields: object) -> PowerwallConfig:
    return config.model_copy(update=fields)


# ----------------------------------------------------------------------------------------------- rule 6


def budget(
    change: PowerwallConfig | None,
    now: datetime,
    available: int,
    retry_change: PowerwallConfig | None,
    retry_not_before: datetime | None,
    why_none: str | None = None,
) -> tuple[bool, Outcome]:
    """Whether the write may go now. ``why_none``: why no request may be made (NetZero's 429 wait, a 403
    back-off, our own budget), from the client; said when ``available`` is 0."""
    if change is None:
        return True, _out("budget", PASS, "no write needed")
    if available < 1:  # first: NetZero's own wait (429) or refusal (403) is the reason, not our retry's back-off
        return False, _out("budget", "blocked", f"{why_none or 'no NetZero request may be made now'}: deferred")
    if retry_change == change and retry_not_before is not None and now < retry_not_before:
        return False, _out(
            "budget", "blocked", f"the last try failed or did not apply: next after {retry_not_before.isoformat()}"
        )
    return True, _out("budget", PASS)


def fresh_read(
    forcing_write: bool, now: datetime, battery: BatteryState | None, cfg: RuleConfig, available: int
) -> tuple[bool, Outcome]:
    """A charge or hold is sent only on a read at most ``cfg.fresh_read`` old (grid status and storm watch are
    checked on it by ``off_grid``). False: read again first; with fewer than two requests left a fresh read and
    the write do not both fit, and the write waits."""
    if not forcing_write:
        return True, _out("fresh_read", PASS)
    age = (now - battery.observed_at).total_seconds() if battery is not None else None
    limit = cfg.fresh_read.total_seconds()
    if age is not None and age <= limit:
        return True, _out("fresh_read", PASS, f"read {max(age, 0.0):.0f}s old")
    old = "no read" if age is None else f"the last read is {age:.0f}s old"
    if available >= 2:
        return False, _out("fresh_read", "blocked", f"{old}: reading again before a charge or hold is sent")
    return False, _out(
        "fresh_read",
        "blocked",
        f"{old} and a charge or hold needs one at most {limit:.0f}s old; a fresh read and the write do not both "
        f"fit in the request budget ({available} left now): the write waits",
    )


# ----------------------------------------------------------------------------------------------- rule 7


def leaving(p: Proposal, forced_active: bool, why: str) -> tuple[Proposal, Outcome]:
    if forced_active:
        return Proposal(Action.SELF_USE, source="leaving"), _out("leaving", "changed", f"{why}: restore baseline")
    return Proposal(None, source="leaving"), _out("leaving", "stand_aside", f"{why}: nothing of ours to undo")
