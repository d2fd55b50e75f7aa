"""The executor service: polls NetZero, decides (``decide.decide``), writes, reads back, journals, publishes.

Threads: bus handlers only record inputs and wake the decision loop (a price, limit or peak setting only when it
changes what would be decided); the loop (one thread) does all NetZero I/O under one lock, so the SIGTERM restore
never races a decision. Every forced state (charge, hold) is journalled with a lease before the command goes out,
renewed while the plan still wants it, and undone when it does not. While one may be active the loop also wakes
at the instants that can end it (plan expiry, slot end, the lease of a manual mode or override, the peak).

A charge or hold is sent only on a read at most ``fresh_read`` old (in practice the GET of the same decision) that
showed the grid up and no storm watch; the write's own response is read the same way, and one showing the grid
down or storm watch is recorded as ``grid_down_after_write``: the forced state stays in the journal as possibly
active and nothing more is sent until a read shows the grid back, when the decision on that read hands it back
or keeps it, per the plan.

The baseline (what ``self_use`` hands back) is the user's own configuration: the one found whenever nothing of
ours is on the Powerwall, whatever it is. One that NetZero cannot restore exactly (a reserve of 81–99 %) forces
nothing unless the user accepted 80 % back; ``executor/alert`` says so, and says when NetZero refuses the token.

When the journal cannot be written (disk full, read-only, I/O error) no forced state is taken or kept: a
forcing command is not sent, and a forced state already on the Powerwall is handed back to the baseline. That
restore is the one command sent without its row, because it is the safe direction: a journal that still says
"forced" only makes the watchdog or a restarted executor restore once more. The service stays online, one error
line says what is wrong, each decision on ``executor/applied`` carries the reason, and it all recovers by itself
once a write succeeds again. Settings changed meanwhile (mode, dry-run) apply at once and are saved then.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from services.executor import rules
from services.executor.config import ExecutorSettings
from services.executor.decide import Decision, DecisionInputs, Override, decide, write_outcome
from services.executor.journal import ForcedState, Journal, JournalError
from services.executor.netzero import BudgetExhausted, NetZeroClient, NetZeroError, SiteStatus
from services.executor.rules import RuleConfig, clock_off, grid_unsafe, restorable_reserve, unrestorable_text
from services.executor.translate import desired_config, diff, is_forced, restore_config, user_baseline
from services.executor.windows import WindowBoard
from shared.bus import Bus, CommandError
from shared.clock import Clock, WallClockSteps, wait_until
from shared.ha import entity
from shared.models import (
    Action,
    AppliedDecision,
    CurrentRate,
    ExecutorAlert,
    ExecutorMode,
    Heartbeat,
    OverrideCommand,
    Plan,
    PowerwallConfig,
    RateSeries,
    SessionList,
)
from shared.peak import PeakWindow
from shared.plain import bool_text, parse_bool
from shared.slots import parse_hhmm, slot_end

MAX_OVERRIDE = timedelta(hours=24)
UNCONFIRMED_FORGET_S = 900  # a command not applied after this long is taken as dropped by the gateway (monotonic)
FRESH_READ_S = 5.0  # the oldest read a charge or hold is sent on (see ``RuleConfig.fresh_read``)
ALERT_ORDER = ("netzero_refused", "baseline_unrestorable")  # the most pressing first


def rule_config(s: ExecutorSettings, clock_speed: float = 1.0) -> RuleConfig:
    """The rules' settings. On a simulated clock a request's latency is ``clock_speed`` times longer in clock
    seconds, and so is the error of a skew measured across it: the skew limit scales with it, and so does the
    age of a read taken in the same decision as its write."""
    return RuleConfig(
        tz=s.tz,
        peak_start=parse_hhmm(s.peak_start_local),
        peak_end=parse_hhmm(s.peak_end_local),
        peak_lead=timedelta(seconds=s.peak_lead_s),
        max_price_gbp=s.max_charge_price_gbp,
        min_target_soc_pct=s.min_target_soc_pct,
        max_target_soc_pct=s.max_target_soc_pct,
        battery_max_age=timedelta(seconds=s.battery_max_age_s),
        max_clock_skew=timedelta(seconds=s.max_clock_skew_s * clock_speed),
        fresh_read=timedelta(seconds=FRESH_READ_S * clock_speed),
        accept_nearest_reserve=s.baseline_accept_nearest_reserve,
    )


class JournalUnwritable(Exception):
    """A forcing decision whose lease could not be committed: nothing was sent."""


class Executor:
    def __init__(
        self,
        settings: ExecutorSettings,
        clock: Clock,
        bus: Bus,
        journal: Journal,
        client: NetZeroClient,
        log: Any,
        windows: WindowBoard | None = None,
    ) -> None:
        self.s = settings
        self.windows = windows  # manual windows (windows.py): one covering now is asked for like an override
        self.sessions: SessionList | None = None  # Octopus sessions (pricing/sessions), for decide
        self.clock = clock
        self.bus = bus
        self.topics = bus.topics
        self.journal = journal
        self.client = client
        self.log = log
        self.cfg = rule_config(settings, getattr(clock, "speed", 1.0))
        self._lock = threading.RLock()
        self.wake = threading.Event()
        # inputs
        self.plan: Plan | None = None
        self.current_rate: CurrentRate | None = None
        self.rates: RateSeries | None = None
        self.planner_max: float | None = None
        self.planner_peak_text: dict[str, str] = {}  # planner/peak_start_local, planner/peak_end_local
        self.status: SiteStatus | None = None
        self.decided_at: datetime | None = None  # the time the last decision was taken at
        self.last_action: Action | None = None  # what the last decision decided (an input wakes the loop on a change)
        self.budget_wait_s: float | None = None  # the last decision waits for requests: decide again after this
        # own state (persisted in the journal)
        self.mode = ExecutorMode(journal.get("mode") or ExecutorMode.AUTO)
        until = journal.get("mode_until")
        self.mode_until = datetime.fromisoformat(until) if until else None
        stored_dry = journal.get("dry_run")
        self.dry_run = parse_bool(stored_dry) if stored_dry else settings.dry_run
        self.baseline = journal.baseline()
        self.baseline_found: tuple[PowerwallConfig, datetime] | None = None  # what was read when captured, and when
        self.forced: ForcedState | None = journal.forced()
        self.override: Override | None = None
        self.reconciled = False
        self.retry_change: PowerwallConfig | None = None
        # Durations, so on the clock's monotonic time (a wall-clock step neither cuts nor stretches them).
        self.retry_due: float | None = None
        self.retry_first: float | None = None
        self.steps = WallClockSteps(clock)
        self.backoff_s = settings.retry_backoff_s
        self.seq = 0
        self.last_error: str | None = None
        self.clock_off = False  # this host's clock was last found off NetZero's (the skew alarm is raised)
        self.journal_error: str | None = None  # why the journal refuses writes, while it does
        self.unsaved: set[str] = set()  # "settings", "baseline": changed in memory, not yet in the journal
        self.alert: ExecutorAlert | None = None  # the last published on ``executor/alert``

    # ------------------------------------------------------------------ bus inputs (worker thread)

    def on_plan(self, plan: Plan | None) -> None:
        self.plan = plan
        self.wake.set()

    def on_current_rate(self, rate: CurrentRate | None) -> None:
        self.current_rate = rate
        self._wake_on_change()

    def on_rates(self, rates: RateSeries | None) -> None:
        self.rates = rates
        self._wake_on_change()

    def on_sessions(self, sessions: SessionList | None) -> None:
        self.sessions = sessions
        self.wake.set()

    def on_planner_max_price(self, text: str | None) -> None:
        if not text:
            self.planner_max = None
        else:
            try:
                value = float(text)
            except ValueError:
                self.log.warning("planner max price ignored: not a number", payload=text[:40])
                return
            self.planner_max = value if -1 <= value <= 2 else None
        self._wake_on_change()

    def on_planner_peak(self, name: str) -> Callable[[str | None], None]:
        """``planner/peak_start_local`` / ``peak_end_local``: charging is kept out of the planner's peak window
        as well as the executor's own (and the plan's), so a change there stops a charge at once."""

        def handle(text: str | None) -> None:
            if not text:
                self.planner_peak_text.pop(name, None)
            else:
                try:
                    parse_hhmm(text)
                except ValueError:
                    self.log.warning("planner peak setting ignored: not HH:MM", setting=name, payload=text[:20])
                    return
                self.planner_peak_text[name] = text
            self._wake_on_change()

        return handle

    @property
    def planner_peak(self) -> PeakWindow | None:
        start, end = self.planner_peak_text.get("peak_start_local"), self.planner_peak_text.get("peak_end_local")
        return PeakWindow.parse(start, end, self.cfg.tz) if start and end else None

    def _wake_on_change(self) -> None:
        """An input changed: decide at once when the decision would now differ (a charge the price, the limit or
        the peak forbids stops within a second, not at the next tick). Runs on the bus thread, without the lock:
        the decision is pure, on the inputs as they are."""
        try:
            would = decide(self._inputs(self.clock.now()), self.cfg).action
        except Exception:  # an input the rules cannot take yet: let the loop decide (and log it)
            self.wake.set()
            return
        if would != self.last_action:
            self.wake.set()

    def on_mode_set(self, text: str) -> None:
        try:
            mode = ExecutorMode(text.lower())
        except ValueError:
            self.publish_mode()  # answer with the unchanged state so a UI snaps back
            raise ValueError(f"unknown mode {text[:20]!r}: use {', '.join(m.value for m in ExecutorMode)}") from None
        with self._lock:
            self.mode = mode
            manual = mode in (ExecutorMode.FORCE_CHARGE, ExecutorMode.HOLD)
            self.mode_until = self.clock.now() + timedelta(seconds=self.s.manual_lease_s) if manual else None
            self._persist_settings()
        self.log.info("mode set", mode=mode.value, until=self.mode_until)
        self.publish_mode()
        self.wake.set()

    def on_dry_run_set(self, text: str) -> None:
        try:
            value = parse_bool(text)
        except ValueError:
            self.publish_dry_run()
            raise
        with self._lock:
            self.dry_run = value
            self._persist_settings()
        self.log.info("dry-run set", dry_run=value)
        self.publish_dry_run()
        self.wake.set()

    def on_override(self, cmd: OverrideCommand) -> dict[str, Any]:
        now = self.clock.now()
        if cmd.action is None:
            with self._lock:
                self.override = None
                self._save(lambda: self.journal.override(now, cmd.request_id, None, None, None, "cancelled"))
            self.wake.set()
            return {"override": None}
        assert cmd.until is not None
        action = cmd.action.value

        def note(status: str) -> bool:
            return self._save(
                lambda: self.journal.override(now, cmd.request_id, action, cmd.until, cmd.target_soc_pct, status)
            )

        if cmd.until <= now:
            note("refused")
            raise CommandError(f"override ends in the past ({cmd.until.isoformat()})")
        if cmd.until - now > MAX_OVERRIDE:
            note("refused")
            raise CommandError("an override may last at most 24 hours")
        with self._lock:
            self.override = Override(cmd.action, cmd.until, cmd.target_soc_pct, cmd.request_id)
            note("accepted")
        self.wake.set()
        return {"action": cmd.action.value, "until": cmd.until.isoformat(), "note": "the safety rules still apply"}

    def _persist_settings(self) -> None:
        """Save mode and dry-run; when the journal refuses, they still apply and are saved once it can write."""
        self.unsaved.add("settings")
        self._flush_unsaved()

    def _flush_unsaved(self) -> None:
        if not self.unsaved:
            return
        pending = set(self.unsaved)

        def write() -> None:
            if "settings" in pending:
                self.journal.put("mode", self.mode.value)
                self.journal.put("mode_until", self.mode_until.isoformat() if self.mode_until else None)
                self.journal.put("dry_run", bool_text(self.dry_run))
            if "baseline" in pending and self.baseline is not None and self.baseline_found is not None:
                found, at = self.baseline_found
                self.journal.store_baseline(self.baseline, found, at)

        if self._save(write):
            self.unsaved -= pending

    # ------------------------------------------------------------------ the journal refusing writes

    def _save(self, write: Callable[[], Any]) -> bool:
        """Journal rows that record what happened (not ones that permit a command): one transaction; a refusal is
        logged once and the service goes on. True when committed."""
        before = self.journal.changes
        try:
            with self.journal.transaction():
                write()
        except JournalError as exc:
            self._journal_failed(exc)
            return False
        if self.journal.changes != before:  # an empty commit succeeds even on a full disk
            self._journal_ok()
        return True

    def _journal_failed(self, exc: JournalError) -> None:
        if self.journal_error is None:
            self.log.error(
                "journal unwritable: no charge or hold until it can be written; a forced state is handed back",
                path=str(self.journal.path),
                error=str(exc),
            )
        self.journal_error = str(exc)

    def _journal_ok(self) -> None:
        if self.journal_error is not None:
            self.log.info("journal writable again", path=str(self.journal.path))
            self.journal_error = None

    def _flagged(self, applied: AppliedDecision) -> AppliedDecision:
        """While the journal refuses writes every decision on the bus says so (its row is missing)."""
        if self.journal_error is None:
            return applied
        why = f"journal unwritable: {self.journal_error}"
        return applied.model_copy(update={"error": f"{applied.error}; {why}" if applied.error else why})

    # ------------------------------------------------------------------ publishing

    def publish_mode(self) -> None:
        self.bus.publish_state(self.topics.executor_mode, self.mode.value)

    def publish_dry_run(self) -> None:
        self.bus.publish_state(self.topics.executor_dry_run, bool_text(self.dry_run))

    def publish_state(self) -> None:
        """Retained state, republished on every (re)connect."""
        self.publish_mode()
        self.publish_dry_run()
        if self.status is not None:
            self.bus.publish_state(self.topics.battery_state, self.status.battery_state(self.clock.now()))
        if self.alert is not None:
            self.bus.publish_state(self.topics.executor_alert, self.alert)

    def discovery(self) -> list[tuple[str, dict[str, Any]]]:
        t = self.topics
        return [
            entity(
                self.bus,
                "sensor",
                "battery_soc",
                "Battery SOC",
                t.battery_state,
                device_class="battery",
                unit_of_measurement="%",
                state_class="measurement",
                value_template="{{ value_json.soc_pct }}",
                expire_after=600,
            ),
            entity(
                self.bus,
                "sensor",
                "battery_power",
                "Battery power",
                t.battery_state,
                device_class="power",
                unit_of_measurement="W",
                state_class="measurement",
                value_template="{{ value_json.battery_power_w }}",
                expire_after=600,
            ),
            entity(
                self.bus,
                "select",
                "executor_mode",
                "Executor mode",
                t.executor_mode,
                command_topic=t.executor_mode_set,
                options=[m.value for m in ExecutorMode],
            ),
            entity(
                self.bus,
                "switch",
                "executor_dry_run",
                "Executor dry run",
                t.executor_dry_run,
                command_topic=t.executor_dry_run_set,
                payload_on="true",
                payload_off="false",
                state_on="true",
                state_off="false",
            ),
            entity(
                self.bus,
                "binary_sensor",
                "executor_problem",
                "Executor problem",
                t.executor_alert,
                device_class="problem",
                value_template="{{ 'OFF' if value_json.code == 'ok' else 'ON' }}",
                json_attributes_topic=t.executor_alert,
                json_attributes_template="{{ {'code': value_json.code, 'message': value_json.message} | tojson }}",
            ),
            entity(
                self.bus,
                "sensor",
                "last_decision",
                "Last decision",
                t.executor_applied,
                value_template="{{ value_json.action or 'stand aside' }} ({{ value_json.outcome }})",
                json_attributes_topic=t.executor_applied,
            ),
        ]

    # ------------------------------------------------------------------ the loop

    def run_forever(self, stop: threading.Event) -> None:
        """The decision loop: every ``decision_interval_s`` and whenever an input wakes it."""
        self.bus.wait_connected(10)
        self.heartbeat(self.clock.now())  # alive before touching anything, so the watchdog does not race a restart
        while not stop.is_set():
            # Clear before deciding: an input that arrives during the decision wakes the next one at once.
            self.wake.clear()
            try:
                self.tick()
            except Exception:
                self.log.exception("decision failed; next one as usual")
            self._wait(stop)

    def _wait(self, stop: threading.Event) -> None:
        now = self.clock.now()
        if self.steps.peek():
            return  # the wall clock stepped during the decision: it used a time that is gone, decide again
        # ``wait_until`` ends early after a wall-clock step back: a deadline reckoned before a 9 h step back
        # would otherwise stop the decisions (and the heartbeat the watchdog listens for) for 9 h.
        # Edges after the last decision's time: one passed since (while it finished) is due at once.
        deadline = min(now + timedelta(seconds=self.s.decision_interval_s), self._next_edge(self.decided_at or now))
        wait_until(self.clock, deadline, stop, self.wake, since=now)

    def _next_edge(self, now: datetime) -> datetime:
        """The next instant that can end a forced state without any message (plan expiry, the slot's end, where
        the plan's action and the price change, the end of a manual mode or an override, the peak), or when a
        waiting write may go; far away when nothing is forced and nothing waits."""
        edges = []
        if self.budget_wait_s is not None:
            edges.append(now + timedelta(seconds=self.budget_wait_s))
        if self.forced is not None:
            edges.append(slot_end(now))
            edges.append(rules.next_peak_start(now, self.cfg, self.plan, self.planner_peak) - self.cfg.peak_lead)
            for t in (
                self.plan.valid_until if self.plan is not None else None,
                self.mode_until,
                self.override.until if self.override is not None else None,
            ):
                if t is not None:
                    edges.append(t)
        later = [t for t in edges if t > now]
        return min(later, default=now + timedelta(days=1))

    def tick(self, leaving: str | None = None) -> AppliedDecision | None:
        with self._lock:
            self._on_clock_step(self.steps.check())
            now = self.clock.now()  # after the check: a step in between is caught by ``_wait``
            self.decided_at = now
            self._flush_unsaved()
            self._expire_manual(now)
            if self.windows is not None:
                self.windows.expire(now)
            self._poll(now, reuse=not leaving)
            self._note_skew()
            if self.status is not None and not self.reconciled:
                self._reconcile(now)
            if self.baseline is None:  # never read yet: nothing to decide on
                self._update_alert(now)
                self.heartbeat(now)
                return None
            if self.dry_run and self.forced is not None and not leaving:
                leaving = "dry-run on: handing back control"
            inputs = self._inputs(now, leaving)
            decision = decide(inputs, self.cfg)
            if decision.needs_read and self.client.available() >= 2:
                # A charge or hold on a read from an earlier decision: read again first, and decide on that read
                # (its grid status and storm watch gate the write).
                self._poll(now, reuse=False)
                inputs = self._inputs(now, leaving)
                decision = decide(inputs, self.cfg)
            self.last_action = decision.action
            try:
                applied = self._act(now, decision, write_allowed=not self.dry_run or bool(leaving))
            except JournalUnwritable as exc:
                # No forced state without its lease on disk: hand back control instead (nothing forcing was sent),
                # with the request kept spare for leaving, like SIGTERM and dry-run.
                inputs = replace(inputs, leaving=f"journal unwritable ({exc})", retry_change=None, budget_available=1)
                fallback = replace(decide(inputs, self.cfg), requested_action=decision.requested_action)
                applied = self._act(now, fallback, write_allowed=True)
            self._note_budget_wait(applied, decision)
            self.bus.publish(self.topics.executor_applied, applied)  # after its journal row is committed (if it can)
            self._update_alert(now)
            self.heartbeat(now)
            return applied

    def _inputs(self, now: datetime, leaving: str | None = None) -> DecisionInputs:
        """Everything the decision needs, as it is now (the baseline must be known)."""
        assert self.baseline is not None
        status = self.status
        return DecisionInputs(
            now=now,
            mode=self.mode,
            baseline=self.baseline,
            plan=self.plan,
            current_rate=self.current_rate,
            rates=self.rates,
            planner_max_price_gbp=self.planner_max,
            battery=status.battery_state(now) if status else None,
            forced_active=self.forced is not None,
            override=self.override,
            mode_until=self.mode_until,
            leaving=leaving,
            budget_available=1 if leaving else self.client.available(),
            retry_change=None if leaving else self.retry_change,
            retry_not_before=self._retry_not_before(now),
            charge_method=self.s.charge_method,
            lease_margin=timedelta(seconds=self.s.lease_margin_s),
            clock_skew=self.client.clock_skew,
            why_no_request=None if leaving else self.client.why_no_request(),
            planner_peak=self.planner_peak,
            window=self.windows.active(now) if self.windows is not None else None,
            sessions=self.sessions,
        )

    def _note_budget_wait(self, applied: AppliedDecision, d: Decision) -> None:
        """A write that waits (the request budget, NetZero's 429 wait, the 403 back-off, room for a fresh read and
        the write, a retry's back-off): the next decision comes when it may go, not a whole interval later."""
        if applied.outcome != "deferred":
            self.budget_wait_s = None
            return
        now, mono = self.clock.now(), self.clock.monotonic()
        waits = [self.client.limiter.next_free_in(2 if d.needs_read else 1)]
        if self.client.backing_off() and self.client.next_try_at is not None:
            waits.append((self.client.next_try_at - now).total_seconds())
        if self.retry_due is not None:
            waits.append(self.retry_due - mono)
        self.budget_wait_s = max(1.0, *waits)

    def _note_skew(self) -> None:
        """The skew alarm: one warning when this host's clock is found off NetZero's, one line when it is right
        again (meanwhile every decision on the bus says why it did not charge or hold)."""
        skew = self.client.clock_skew
        if skew is None or clock_off(skew, self.cfg) == self.clock_off:
            return
        self.clock_off = not self.clock_off
        fields = {"skew_s": round(skew.total_seconds(), 1), "limit_s": self.cfg.max_clock_skew.total_seconds()}
        if self.clock_off:
            self.log.warning(
                "clock skew: this host's clock is off NetZero's; no charge or hold until it is right", **fields
            )
        else:
            self.log.info("clock skew gone: deciding as usual", **fields)

    def _on_clock_step(self, step: timedelta) -> None:
        """The wall clock stepped (NTP, a user): what was reckoned as a duration from a wall time keeps its length.

        The manual mode's lease (it lasts ``manual_lease_s``) moves with the clock; times from outside (a plan's
        slots, an override's end, a lease to a slot's end) stay where they are. The last read is now too old or
        in the future, so this decision reads again and the battery state goes out in the new time."""
        if not step:
            return
        self.log.warning("wall clock stepped", step_s=round(step.total_seconds(), 3))
        if self.mode_until is not None:
            self.mode_until += step
            self._persist_settings()

    def _retry_not_before(self, now: datetime) -> datetime | None:
        if self.retry_due is None:
            return None
        return now + timedelta(seconds=max(0.0, self.retry_due - self.clock.monotonic()))

    def _expire_manual(self, now: datetime) -> None:
        if self.mode_until is not None and now >= self.mode_until:
            self.log.info("manual mode lease over: back to auto", mode=self.mode.value)
            self.mode, self.mode_until = ExecutorMode.AUTO, None
            self._persist_settings()
            self.publish_mode()
        if self.override is not None and now >= self.override.until:
            self.log.info("override over", action=self.override.action.value)
            self.override = None

    def _poll(self, now: datetime, reuse: bool) -> None:
        """Read the Powerwall. ``reuse``: a decision woken early may decide on a read less than half an interval
        old (the request budget), unless that read showed the grid down or storm watch (it may be back); one that
        would then charge or hold reads again first (``rules.fresh_read``)."""
        before = self.status
        if reuse and before is not None and not self._down(before):
            age = (now - before.observed_at).total_seconds()
            if 0 <= age < self.s.decision_interval_s * 0.5:
                return
        try:
            self.status = self.client.get()
            self.last_error = None
        except BudgetExhausted as exc:
            self.log.info("poll skipped", reason=str(exc))
            return
        except NetZeroError as exc:
            self.last_error = str(exc)
            self.log.warning("NetZero read failed", error=str(exc), kind=type(exc).__name__)
            return
        self.bus.publish_state(self.topics.battery_state, self.status.battery_state(now))
        if before is not None and self._down(before) and not self._down(self.status):
            self.log.info("grid back and no storm watch: deciding on this read", forced=self.forced is not None)
        self._settle(now)

    @staticmethod
    def _down(status: SiteStatus) -> str | None:
        return grid_unsafe(status)

    def _settle(self, now: datetime) -> None:
        """A fresh read: confirm a pending command that has applied, forget a forced state that is gone, and
        follow the user's own configuration while nothing of ours is on the Powerwall."""
        assert self.status is not None
        if self.retry_change is not None and diff(self.retry_change, self.status.config) is None:
            observed = self.status.config
            self._save(lambda: self.journal.readback(now, None, observed, True))
            self.log.info("earlier command now confirmed by read-back", change=self.retry_change.model_dump())
            self._reset_retry()
        self._save(lambda: self._maybe_clear_forced(now))
        # Not during an outage or storm watch: what the gateway shows then may be its own doing, not the user's.
        if self.reconciled and self.forced is None and self.retry_change is None and not self._down(self.status):
            self._follow_user(self.status.config, now)

    def _follow_user(self, found: PowerwallConfig, now: datetime) -> None:
        """Nothing of ours is on the Powerwall (no lease, no command of ours on its way): what is there is the
        user's own configuration, whatever it is, and the baseline that ``self_use`` hands back. So a change the
        user makes in the Tesla app between our charges is what they get back after the next one."""
        baseline = user_baseline(found, self.s.baseline_mode, self.s.baseline_reserve_pct)
        if baseline == self.baseline:
            return
        first = self.baseline is None
        self.baseline = baseline
        self.baseline_found = (found, now)
        self.unsaved.add("baseline")
        self._flush_unsaved()
        self.log.info(
            "baseline captured: your own configuration" if first else "baseline follows your own change",
            baseline=baseline.model_dump(),
        )

    def _maybe_clear_forced(self, now: datetime) -> None:
        """The baseline is back on the Powerwall and no forcing command of ours may still apply: not forced."""
        if self.forced is None or self.baseline is None or self.status is None:
            return
        if diff(desired_config(Action.SELF_USE, self.baseline), self.status.config) is not None:
            return
        pending = self.retry_change
        if pending is not None and is_forced(pending, self.baseline) and self.retry_first is not None:
            if self.clock.monotonic() - self.retry_first < UNCONFIRMED_FORGET_S:
                return  # a charge command may still land late: keep watching it
            self.log.warning("a forcing command was never applied; forgetting it", change=pending.model_dump())
            self._reset_retry()
        self.forced = None
        self.journal.clear_forced()

    def _reconcile(self, now: datetime) -> None:
        """First read after start. A state of ours that the journal records (its lease) is continued if the plan
        still wants it, else handed back to the journal's baseline. Anything else is the user's own configuration,
        whatever it looks like (backup mode, grid charging, any reserve): it becomes the baseline and nothing is
        written for it."""
        assert self.status is not None
        found = self.status.config
        if self.forced is not None and self.baseline is not None:
            self.log.info(
                "journal says a forced state is active: continuing or restoring per the current plan",
                lease_until=self.forced.lease_until.isoformat(),
            )
        else:
            if self.forced is not None:  # a lease without a baseline cannot be handed back to anything
                self.log.warning("journal has a lease but no baseline: taking what is found as yours")
                self.forced = None
                self._save(self.journal.clear_forced)
            self._follow_user(found, now)
        self.reconciled = True

    def _act(self, now: datetime, d: Decision, write_allowed: bool) -> AppliedDecision:
        """Carry out a decision; every journal write of one step is one transaction (one fsync).

        Raises ``JournalUnwritable`` (having sent nothing) for a forcing decision whose lease cannot be committed."""
        decision_id = uuid.uuid4().hex[:16]
        observed = self.status.config if self.status else None
        common = dict(
            generated_at=now,
            decision_id=decision_id,
            plan_id=d.plan_id,
            slot_start=d.slot_start,
            mode=self.mode,
            dry_run=self.dry_run,
            requested_action=d.requested_action,
            action=d.action,
            rules=d.rules,
            desired=d.desired,
            soc_pct=self.status.soc_pct if self.status else None,
        )
        if d.action is None:
            return self._record(AppliedDecision(**common, observed=observed, outcome="stood_aside"))
        if d.deferred:
            return self._record(AppliedDecision(**common, observed=observed, outcome="deferred"))
        if d.change is None:
            outcome = "unchanged" if self.status is not None else "failed"
            applied = AppliedDecision(**common, observed=observed, outcome=outcome, error=self.last_error)
            self._journal_first(now, d, lambda: self.journal.decision(applied))  # renews the lease: the plan wants it
            self._log_outcome(applied)
            return self._flagged(applied)
        if not write_allowed:
            return self._record(AppliedDecision(**common, observed=observed, outcome="dry_run"))
        # Write-ahead: the lease, the decision and the command are committed before anything is sent.
        kind = "restore" if d.source == "leaving" else "decision"
        pending = AppliedDecision(
            **common, sent=d.change, observed=observed, outcome="failed", error="interrupted before the read-back"
        )
        change = d.change
        ids: list[int] = []

        def write_ahead() -> None:
            self.journal.decision(pending)
            ids.append(self.journal.command(now, kind, change, decision_id, d.lease_until))

        if not self._journal_first(now, d, write_ahead):  # only a restore gets here: the safe direction
            self.log.warning(
                "sending the baseline back without its journal row", change=change.model_dump(exclude_none=True)
            )
        command_id = ids[0] if ids else None
        late = self._read_too_old(d)
        if late:  # the write-ahead took longer than a read may age: this write is not sent on it
            self.log.warning("charge or hold not sent: " + late)
            waited = AppliedDecision(**common, sent=None, observed=observed, outcome="deferred", error=late)

            def record_wait() -> None:
                if command_id is not None:
                    self.journal.command_done(command_id, "failed", f"not sent: {late}")
                self.journal.decision(waited)

            self._save(record_wait)
            return self._flagged(waited)
        try:
            readback = self.client.post(change, spare=kind == "restore")
        except NetZeroError as exc:
            self.log.warning("NetZero write failed", error=str(exc), kind=type(exc).__name__)
            self._schedule_retry(now, change)
            reason = str(exc)
            failed = AppliedDecision(**common, sent=change, observed=observed, outcome="failed", error=reason)

            def record_failure() -> None:
                if command_id is not None:
                    self.journal.command_done(command_id, "failed", reason)
                self.journal.decision(failed)

            self._save(record_failure)
            self._log_outcome(failed)
            return self._flagged(failed)
        self.status = readback
        self.bus.publish_state(self.topics.battery_state, readback.battery_state(now))
        ok = diff(change, readback.config) is None
        outcome, error = write_outcome(change, readback.battery_state(now))
        if outcome == "grid_down_after_write":
            # What was sent may be in force (or land once the grid is back): the lease stays in the journal and the
            # decisions stand aside until a read shows the grid back, then hand it back or keep it, per the plan.
            self.log.warning(
                "the write's response shows the grid down or storm watch: nothing more is sent until it is back",
                sent=change.model_dump(exclude_none=True),
                grid=readback.grid_status.value,
                storm=readback.storm_mode_active,
            )
        elif not ok:
            self.log.warning(
                "actuation not confirmed",
                sent=change.model_dump(exclude_none=True),
                observed=readback.config.model_dump(),
            )
        if ok:
            self._reset_retry()
        else:  # it may still land: watched (the forced state kept) and re-sent only after a back-off
            self._schedule_retry(now, change)
        applied = AppliedDecision(**common, sent=change, observed=readback.config, outcome=outcome, error=error)
        status = {"applied": "ok", "mismatch": "mismatch"}.get(outcome, "grid_down")

        def record_readback() -> None:
            self.journal.readback(now, command_id, readback.config, ok)
            if command_id is not None:
                self.journal.command_done(command_id, status)
            if ok:
                self._maybe_clear_forced(now)
            self.journal.decision(applied)

        self._save(record_readback)
        self._log_outcome(applied)
        return self._flagged(applied)

    def _read_too_old(self, d: Decision) -> str | None:
        """A charge or hold goes only on a read at most ``fresh_read`` old when it is sent (not only when decided:
        the journal's fsync comes in between). Why not, or None."""
        if not d.forcing or self.status is None:
            return None
        age = self.clock.now() - self.status.observed_at
        if age <= self.cfg.fresh_read:
            return None
        return f"the read is {age.total_seconds():.1f}s old by now (limit {self.cfg.fresh_read.total_seconds():g}s)"

    def _journal_first(self, now: datetime, d: Decision, write: Callable[[], Any]) -> bool:
        """Commit the lease of a forced state and ``write``'s rows before acting. A refusal rolls the lease back
        in memory too; for a forcing decision it raises ``JournalUnwritable``, else it returns False."""
        before = self.forced
        try:
            with self.journal.transaction():
                if d.forcing and d.desired is not None and d.lease_until is not None:
                    self._lease(now, d.desired, d.lease_until)
                write()
        except JournalError as exc:
            self.forced = before
            self._journal_failed(exc)
            if d.forcing:
                raise JournalUnwritable(str(exc)) from None
            return False
        self._journal_ok()  # ``write`` always adds a row
        return True

    def _lease(self, now: datetime, config: PowerwallConfig, until: datetime) -> None:
        since = self.forced.since if self.forced is not None else now
        self.forced = ForcedState(config, since, until)
        self.journal.set_forced(config, since, until)

    def _schedule_retry(self, now: datetime, change: PowerwallConfig) -> None:
        if self.retry_change != change:
            self.backoff_s = self.s.retry_backoff_s
            self.retry_first = self.clock.monotonic()
        self.retry_change = change
        self.retry_due = self.clock.monotonic() + self.backoff_s
        self.backoff_s = min(self.backoff_s * 2, self.s.retry_backoff_max_s)

    def _reset_retry(self) -> None:
        self.retry_change, self.retry_due, self.retry_first = None, None, None
        self.backoff_s = self.s.retry_backoff_s

    def _record(self, applied: AppliedDecision) -> AppliedDecision:
        self._save(lambda: self.journal.decision(applied))  # published by ``tick`` once committed
        self._log_outcome(applied)
        return self._flagged(applied)

    def _log_outcome(self, applied: AppliedDecision) -> None:
        if applied.outcome in ("failed", "mismatch", "deferred", "grid_down_after_write"):
            self.log.info("decision", action=applied.action, outcome=applied.outcome, error=applied.error)

    # ------------------------------------------------------------------ the alert

    def _problems(self) -> dict[str, str]:
        found = {}
        refused = self.client.refusal_text()
        if refused:
            found["netzero_refused"] = (
                f"{refused}. Check BATSCHED_NETZERO_API_KEY and BATSCHED_NETZERO_SITE_ID (a token may have been "
                "revoked or expired): until NetZero accepts them batsched cannot read or change the Powerwall"
            )
        base = self.baseline
        if base is not None and not restorable_reserve(base.backup_reserve_pct) and not self.cfg.accept_nearest_reserve:
            found["baseline_unrestorable"] = unrestorable_text(base.backup_reserve_pct)
        return found

    def _update_alert(self, now: datetime) -> None:
        """``executor/alert`` (retained): the most pressing problem a person must fix, ``ok`` when none; published
        on the first decision and whenever it changes, and cleared by itself (the next good answer from NetZero,
        a baseline that can be restored)."""
        problems = self._problems()
        codes = [c for c in ALERT_ORDER if c in problems]
        code = codes[0] if codes else "ok"
        message = "; ".join(problems[c] for c in codes) if codes else "nothing keeps the executor from its job"
        prev = self.alert
        if prev is not None and prev.code == code and prev.message == message:
            return
        since = prev.since if prev is not None and prev.code == code else now
        self.alert = ExecutorAlert(generated_at=now, code=code, message=message, since=since)  # type: ignore[arg-type]
        if code != "ok":
            self.log.warning("executor alert", code=code, message=message)
        elif prev is not None and prev.code != "ok":
            self.log.info("executor alert resolved", was=prev.code)
        self.bus.publish_state(self.topics.executor_alert, self.alert)

    def heartbeat(self, now: datetime) -> None:
        self.seq += 1
        forced = self.forced
        self.bus.publish_state(
            self.topics.executor_heartbeat,
            Heartbeat(
                generated_at=now,
                seq=self.seq,
                forced=forced is not None,
                lease_until=forced.lease_until if forced else None,
            ),
        )

    # ------------------------------------------------------------------ leaving

    def restore_on_stop(self) -> None:
        """SIGTERM: put the user's baseline back before the process exits (when a state of ours is active)."""
        with self._lock:
            if self.forced is None:
                self.log.info("stopping: nothing of ours on the Powerwall")
                return
            limiter = self.client.limiter
            waited = 0.0
            never = threading.Event()
            while limiter.available() < 1 and waited < self.s.restore_wait_s:
                step = min(1.0, self.s.restore_wait_s - waited)
                self.clock.wait(step, never)
                waited += step
            applied = self.tick(leaving="SIGTERM")
            self.log.info(
                "stopping: baseline restore",
                outcome=applied.outcome if applied else None,
                still_forced=self.forced is not None,
            )


def hand_back_before_exit(client: NetZeroClient, path: Path, log: Any) -> str:
    """The journal cannot be opened for writing (read-only or full data directory at start): the executor cannot
    run. Before it exits, read the journal read-only and, if a state of ours may be on the Powerwall (the same test
    as the start-up reconcile), restore the baseline once, sent without its row (the safe direction), so that
    exiting leaves nothing forced. Returns what it did (for the log and the tests)."""
    try:
        journal = Journal.read_only(path)
    except sqlite3.Error:
        return "no journal: nothing of ours was ever on the Powerwall"
    try:
        baseline, forced = journal.baseline(), journal.forced()
    except sqlite3.Error as exc:
        return f"journal unreadable ({exc}): nothing touched"
    finally:
        journal.close()
    if baseline is None:
        return "no baseline in the journal: nothing of ours was ever on the Powerwall"
    try:
        status = client.get()
        if (why := grid_unsafe(status)) is not None:
            return f"{why}: touching nothing"
        found = status.config
        # Only a state the journal records as ours: anything else on the Powerwall is the user's own.
        if forced is None or diff(desired_config(Action.SELF_USE, baseline), found) is None:
            return "nothing of ours on the Powerwall"
        want = restore_config(baseline, found)
        readback = client.post(want)
    except NetZeroError as exc:
        log.error("cannot restore the baseline before exiting", error=str(exc))
        return f"restore failed: {exc}"
    done = "baseline restored" if diff(want, readback.config) is None else "baseline sent; read-back differs"
    log.warning(f"journal unwritable at start: {done} before exiting", baseline=baseline.model_dump())
    return done
