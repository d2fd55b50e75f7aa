"""The executor's pure decision: (plan, prices, battery state, mode, override, time) → what to send, and why.

No I/O, no clock: the executor gathers ``DecisionInputs`` and acts on the returned ``Decision``. The property
tests drive this function directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from services.executor import rules
from services.executor.rules import Proposal, RuleConfig
from services.executor.translate import desired_config, diff
from services.executor.windows import window_outcome
from shared.models import (
    Action,
    BatteryState,
    CurrentRate,
    ExecutorMode,
    ManualWindow,
    Plan,
    PowerwallConfig,
    RateSeries,
    RuleOutcome,
    SessionList,
)
from shared.peak import PeakWindow
from shared.slots import slot_end


@dataclass(frozen=True)
class Override:
    action: Action
    until: datetime
    target_soc_pct: float | None = None
    request_id: str = ""


@dataclass(frozen=True)
class DecisionInputs:
    now: datetime
    mode: ExecutorMode
    baseline: PowerwallConfig
    plan: Plan | None = None
    current_rate: CurrentRate | None = None
    rates: RateSeries | None = None
    planner_max_price_gbp: float | None = None
    battery: BatteryState | None = None
    forced_active: bool = False
    override: Override | None = None
    mode_until: datetime | None = None  # lease of a manual force_charge / hold mode
    leaving: str | None = None  # why we are handing back control (SIGTERM, dry-run on), if we are
    budget_available: int = 4
    retry_change: PowerwallConfig | None = None
    retry_not_before: datetime | None = None
    charge_method: Literal["backup", "reserve"] = "backup"
    lease_margin: timedelta = timedelta(minutes=2)
    clock_skew: timedelta | None = None  # this host's clock minus NetZero's, as last measured (None: unknown)
    why_no_request: str | None = None  # why ``budget_available`` is 0 (NetZero's 429 wait, a 403 back-off, …)
    planner_peak: PeakWindow | None = None  # the planner's published peak window (charging kept out of it too)
    window: ManualWindow | None = None  # the manual window covering ``now`` (windows.py), if any
    sessions: SessionList | None = None  # Octopus Saving Sessions and free-electricity sessions (pricing/sessions)


@dataclass(frozen=True)
class Decision:
    requested_action: Action | None
    action: Action | None  # None = stand aside
    source: str
    rules: list[RuleOutcome] = field(default_factory=list)
    target_soc_pct: float | None = None
    desired: PowerwallConfig | None = None
    change: PowerwallConfig | None = None  # what to send (only differing fields); None = no write
    deferred: bool = False
    lease_until: datetime | None = None  # for a forced state (charge/hold)
    plan_id: str | None = None
    slot_start: datetime | None = None
    price_gbp: float | None = None
    needs_read: bool = False  # a charge or hold waits for a fresh read (``rules.fresh_read``)

    @property
    def forcing(self) -> bool:
        return self.action in (Action.CHARGE, Action.HOLD)


def requested(i: DecisionInputs) -> Proposal:
    """What the plan, the mode or an override asks for, before any rule."""
    if i.override is not None and i.now < i.override.until:
        return Proposal(i.override.action, i.override.target_soc_pct, source="override")
    if i.mode == ExecutorMode.FORCE_CHARGE:
        return Proposal(Action.CHARGE, None, source="mode")
    if i.mode == ExecutorMode.HOLD:
        return Proposal(Action.HOLD, None, source="mode")
    if i.window is not None and i.window.covers(i.now):
        return Proposal(Action(i.window.action), i.window.target_soc_pct, source="window")
    if i.sessions is not None and i.sessions.at(i.now, "free") is not None:  # import is free: charge to full
        return Proposal(Action.CHARGE, 100.0, source="session")
    slot = i.plan.slot_at(i.now) if i.plan is not None else None
    if slot is None:
        return Proposal(Action.SELF_USE, None, source="plan", slot=None)
    return Proposal(slot.action, slot.target_soc_pct, source="plan", slot=slot)


def _lease(i: DecisionInputs, p: Proposal, cfg: RuleConfig) -> datetime | None:
    if p.action not in (Action.CHARGE, Action.HOLD):
        return None
    lease = slot_end(i.now) + i.lease_margin
    if p.source == "plan" and i.plan is not None:
        lease = min(lease, i.plan.valid_until)
    if p.source == "override" and i.override is not None:
        lease = min(lease, i.override.until)
    if p.source == "mode" and i.mode_until is not None:
        lease = min(lease, i.mode_until)
    if p.source == "window" and i.window is not None:
        lease = min(lease, i.window.end)
    free = i.sessions.at(i.now, "free") if i.sessions is not None and p.source == "session" else None
    if free is not None:
        lease = min(lease, free.end)
    if p.action == Action.CHARGE:
        lease = min(lease, rules.next_peak_start(i.now, cfg, i.plan, i.planner_peak) - cfg.peak_lead)
    return max(lease, i.now)


def decide(i: DecisionInputs, cfg: RuleConfig) -> Decision:
    outcomes: list[RuleOutcome] = []
    if i.mode == ExecutorMode.OFF or i.leaving:
        p, o = rules.leaving(Proposal(None), i.forced_active, i.leaving or "mode off")
        outcomes.append(o)
        asked = p.action
    else:
        p = requested(i)
        asked = p.action
        if p.source == "window" and i.window is not None:
            outcomes.append(window_outcome(i.window, cfg.tz))

    p, o = rules.off_grid(p, i.battery)
    outcomes.append(o)
    p, o = rules.stale_inputs(p, i.now, i.plan, i.battery, cfg)
    outcomes.append(o)
    p, o = rules.clock_skew(p, i.clock_skew, cfg)
    outcomes.append(o)
    p, o = rules.baseline(p, i.baseline, cfg)
    outcomes.append(o)
    p, o = rules.saving_session(p, i.now, i.sessions, cfg)
    outcomes.append(o)
    p, o = rules.peak_window(p, i.now, cfg, i.plan, i.planner_peak)
    outcomes.append(o)
    price = rules.current_price(i.now, i.current_rate, i.rates)
    upcoming = rules.next_price(i.now, i.rates, cfg.peak_lead)
    p, o = rules.price_limit(p, i.now, price, rules.price_limit_gbp(cfg, i.planner_max_price_gbp, i.plan), upcoming)
    outcomes.append(o)
    p, o = rules.bounds(p, i.battery, cfg)
    outcomes.append(o)

    plan_id = i.plan.plan_id if i.plan is not None and p.source == "plan" else None
    slot = p.slot.start if p.slot is not None else None
    base = Decision(
        asked, p.action, p.source, outcomes, p.target_soc_pct, plan_id=plan_id, slot_start=slot, price_gbp=price
    )
    if p.action is None:
        return base

    desired = desired_config(p.action, i.baseline, p.target_soc_pct, i.charge_method)
    stale = any(o.rule == "stale_inputs" and "battery" in o.detail for o in outcomes)
    observed = i.battery.config if i.battery is not None and not stale else None  # unknown: send it all
    change = diff(desired, observed)
    if p.action == Action.SELF_USE and not i.forced_active:
        change = None  # nothing of ours to undo: the user's own changes are left alone
    change, o = rules.reserve_bounds(change)
    outcomes.append(o)
    ok, o = rules.budget(change, i.now, i.budget_available, i.retry_change, i.retry_not_before, i.why_no_request)
    outcomes.append(o)
    forcing_write = ok and change is not None and p.action in (Action.CHARGE, Action.HOLD)
    fresh, o = rules.fresh_read(forcing_write, i.now, i.battery, cfg, i.budget_available)
    outcomes.append(o)
    ok = ok and fresh
    return Decision(
        asked,
        p.action,
        p.source,
        outcomes,
        p.target_soc_pct,
        desired=desired,
        change=change if ok else None,
        deferred=not ok,
        lease_until=_lease(i, p, cfg),
        plan_id=plan_id,
        slot_start=slot,
        price_gbp=price,
        needs_read=not fresh,
    )


WriteOutcome = Literal["applied", "mismatch", "grid_down_after_write"]


def write_outcome(sent: PowerwallConfig, response: BatteryState) -> tuple[WriteOutcome, str | None]:
    """What a write's response (the read-back) says happened: ``grid_down_after_write`` when it shows the site
    off-grid, islanded or in storm watch, whatever it shows of the configuration (what was sent may be in force,
    or land once the grid is back), else ``applied`` or ``mismatch``; and the reason."""
    down = rules.grid_unsafe(response)
    if down:
        return "grid_down_after_write", (
            f"the write's response shows {down}: what was sent may be in force, and nothing more is sent until a "
            "read shows the grid back"
        )
    if diff(sent, response.config) is None:
        return "applied", None
    return "mismatch", f"read-back differs from what was sent (sent {sent.model_dump(exclude_none=True)})"
