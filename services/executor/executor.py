"""The executor service: polls NetZero, decides (``decide.decide``), writes, reads back, journals, publishes.

This module keeps the decision loop and wires the parts together, each in its own module:
``inputs.py`` (what other services say), ``controls.py`` (mode, dry-run, override, manual windows; saved),
``observation.py`` (polling, read-back, clock skew, the alert, hand-back before exit), ``actuation.py``
(write-ahead journal, lease, retries, what is ours), ``records.py`` (the journal refusing writes) and
``discovery.py`` (the Home Assistant entities).

Threads and locks: bus handlers only record inputs (``Inputs``' own short lock) and wake the decision loop (a
price, limit or peak setting only when it changes what would be decided). The loop (one thread) decides under the
decision lock ``Executor._lock`` and does all NetZero I/O under it, so the SIGTERM restore never races a decision
and a setting never changes in the middle of one. The decision lock guards all the rest of the executor's
mutable state: the controls', the observer's, the actuator's, the alert's, the records' and the loop's own
(``decided_at``, ``last_action``, ``budget_wait_s``, ``seq``). While a forced state may be active the loop also
wakes at the instants that can end it (plan expiry, slot end, the lease of a manual mode or override, the peak).

A charge or hold is sent only on a read at most ``fresh_read`` old (in practice the GET of the same decision) that
showed the grid up and no storm watch. One that NetZero cannot restore exactly (a baseline reserve of 81–99 %)
forces nothing unless the user accepted 80 % back; ``executor/alert`` says so, and says when NetZero refuses the
token.

When the journal cannot be written (disk full, read-only, I/O error) no forced state is taken or kept: a
forcing command is not sent, and a forced state already on the Powerwall is handed back to the baseline. That
restore is the one command sent without its row, because it is the safe direction: a journal that still says
"forced" only makes the watchdog or a restarted executor restore once more. The service stays online, one error
line says what is wrong, each decision on ``executor/applied`` carries the reason, and it all recovers by itself
once a write succeeds again. Settings changed meanwhile (mode, dry-run) apply at once and are saved then.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from services.executor import rules
from services.executor.actuation import Actuator, JournalUnwritable
from services.executor.config import ExecutorSettings
from services.executor.controls import Controls
from services.executor.decide import Decision, DecisionInputs, decide
from services.executor.discovery import last_decision
from services.executor.inputs import Inputs
from services.executor.journal import ForcedState, Journal
from services.executor.netzero import NetZeroClient
from services.executor.observation import Alert, Observer, hand_back_before_exit
from services.executor.records import Records
from services.executor.rules import RuleConfig
from services.executor.windows import WindowBoard
from shared.bus import Bus
from shared.clock import Clock, WallClockSteps, wait_until
from shared.models import Action, AppliedDecision, ExecutorMode, Heartbeat, Plan, RateSeries
from shared.slots import parse_hhmm, slot_end

__all__ = ["Executor", "hand_back_before_exit", "rule_config"]

FRESH_READ_S = 5.0  # the oldest read a charge or hold is sent on (see ``RuleConfig.fresh_read``)


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
        self.clock = clock
        self.bus = bus
        self.topics = bus.topics
        self.journal = journal
        self.client = client
        self.log = log
        self.cfg = rule_config(settings, getattr(clock, "speed", 1.0))
        self._lock = threading.RLock()  # the decision lock: see the module's docstring for what it guards
        self.wake = threading.Event()
        self.inputs = Inputs(self.cfg.tz, log, self._input_changed)
        self.records = Records(journal, log)
        self.controls = Controls(settings, clock, bus, self.records, self._lock, self.wake.set, log, windows)
        self.observer = Observer(settings, self.cfg, clock, bus, client, log)
        self.actuator = Actuator(settings, clock, self.records, client, self.observer, log)
        self.alert = Alert(self.cfg, bus, client, log)
        self.steps = WallClockSteps(clock)
        # the loop's own state (under the decision lock)
        self.decided_at: datetime | None = None  # the time the last decision was taken at
        self.last_action: Action | None = None  # what the last decision decided (an input wakes the loop on a change)
        self.budget_wait_s: float | None = None  # the last decision waits for requests: decide again after this
        self.seq = 0  # the heartbeat's sequence number
        # The bus's handlers, as ``__main__.subscribe`` wires them.
        self.on_plan, self.on_current_rate, self.on_rates = (
            self.inputs.on_plan,
            self.inputs.on_current_rate,
            self.inputs.on_rates,
        )
        self.on_sessions, self.on_planner_max_price = self.inputs.on_sessions, self.inputs.on_planner_max_price
        self.on_planner_peak = self.inputs.on_planner_peak
        self.on_mode_set, self.on_dry_run_set = self.controls.on_mode_set, self.controls.on_dry_run_set
        self.on_override = self.controls.on_override

    # ------------------------------------------------------------------ views (read-only, for wiring and tests)

    @property
    def windows(self) -> WindowBoard | None:
        return self.controls.windows

    @property
    def mode(self) -> ExecutorMode:
        return self.controls.mode

    @property
    def forced(self) -> ForcedState | None:
        return self.actuator.forced

    @property
    def plan(self) -> Plan | None:
        return self.inputs.latest().plan

    @property
    def rates(self) -> RateSeries | None:
        return self.inputs.latest().rates

    def _input_changed(self, always: bool) -> None:
        """An input changed: decide at once when the decision would now differ (a charge the price, the limit or
        the peak forbids stops within a second, not at the next tick). Runs on the bus thread, without the
        decision lock: the decision is pure, on the inputs as they are; it only reads, and a preview on a torn
        read at worst wakes the loop once more, which then decides under the lock."""
        if always:
            self.wake.set()
            return
        try:
            would = decide(self._inputs(self.clock.now()), self.cfg).action
        except Exception:  # an input the rules cannot take yet: let the loop decide (and log it)
            self.wake.set()
            return
        if would != self.last_action:
            self.wake.set()

    # ------------------------------------------------------------------ publishing

    def publish_state(self) -> None:
        """Retained state, republished on every (re)connect."""
        self.controls.publish_mode()
        self.controls.publish_dry_run()
        self.controls.publish_override()
        status, alert = self.observer.status, self.alert.current
        if status is not None:
            self.bus.publish_state(self.topics.battery_state, status.battery_state(self.clock.now()))
        if alert is not None:
            self.bus.publish_state(self.topics.executor_alert, alert)

    def heartbeat(self, now: datetime) -> None:
        with self._lock:
            self.seq += 1
            forced = self.actuator.forced
            beat = Heartbeat(
                generated_at=now,
                seq=self.seq,
                forced=forced is not None,
                lease_until=forced.lease_until if forced else None,
            )
        self.bus.publish_state(self.topics.executor_heartbeat, beat)

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
        with self._lock:
            deadline = min(now + timedelta(seconds=self.s.decision_interval_s), self._next_edge(self.decided_at or now))
        wait_until(self.clock, deadline, stop, self.wake, since=now)

    def _next_edge(self, now: datetime) -> datetime:
        """The next instant that can end a forced state without any message (plan expiry, the slot's end, where
        the plan's action and the price change, the end of a manual mode or an override, the peak), or when a
        waiting write may go; far away when nothing is forced and nothing waits. An override's end is an edge even
        when nothing is forced, so ``executor/override`` says none when it ends, not up to an interval later."""
        edges = []
        if self.budget_wait_s is not None:
            edges.append(now + timedelta(seconds=self.budget_wait_s))
        if self.controls.override is not None:
            edges.append(self.controls.override.until)
        if self.actuator.forced is not None:
            latest, c = self.inputs.latest(), self.controls
            edges.append(slot_end(now))
            edges.append(rules.next_peak_start(now, self.cfg, latest.plan, latest.planner_peak) - self.cfg.peak_lead)
            for t in (latest.plan.valid_until if latest.plan is not None else None, c.mode_until):
                if t is not None:
                    edges.append(t)
        later = [t for t in edges if t > now]
        return min(later, default=now + timedelta(days=1))

    def tick(self, leaving: str | None = None) -> AppliedDecision | None:
        with self._lock:
            step = self.steps.check()
            if step:
                # The wall clock stepped (NTP, a user): what was reckoned as a duration from a wall time keeps its
                # length (``Controls.on_clock_step``). The last read is now too old or in the future, so this
                # decision reads again and the battery state goes out in the new time.
                self.log.warning("wall clock stepped", step_s=round(step.total_seconds(), 3))
                self.controls.on_clock_step(step)
            now = self.clock.now()  # after the check: a step in between is caught by ``_wait``
            self.decided_at = now
            self.records.flush()
            self.controls.expire(now)
            act = self.actuator
            if self.observer.poll(now, reuse=not leaving, forced=act.forced is not None):
                act.settle(now)
            self.observer.note_skew()
            if self.observer.status is not None and not act.reconciled:
                act.reconcile(now)
            if act.baseline is None:  # never read yet: nothing to decide on
                self.alert.update(now, act.baseline)
                self.heartbeat(now)
                return None
            if self.controls.dry_run and act.forced is not None and not leaving:
                leaving = "dry-run on: handing back control"
            inputs = self._inputs(now, leaving)
            decision = decide(inputs, self.cfg)
            if decision.needs_read and self.client.available() >= 2:
                # A charge or hold on a read from an earlier decision: read again first, and decide on that read
                # (its grid status and storm watch gate the write).
                if self.observer.poll(now, reuse=False, forced=act.forced is not None):
                    act.settle(now)
                inputs = self._inputs(now, leaving)
                decision = decide(inputs, self.cfg)
            self.last_action = decision.action
            mode, dry_run = self.controls.mode, self.controls.dry_run
            try:
                applied = act.act(now, decision, not dry_run or bool(leaving), mode, dry_run)
            except JournalUnwritable as exc:
                # No forced state without its lease on disk: hand back control instead (nothing forcing was sent),
                # with the request kept spare for leaving, like SIGTERM and dry-run.
                inputs = replace(inputs, leaving=f"journal unwritable ({exc})", retry_change=None, budget_available=1)
                fallback = replace(decide(inputs, self.cfg), requested_action=decision.requested_action)
                applied = act.act(now, fallback, True, mode, dry_run)
            self._note_budget_wait(applied, decision)
            self.bus.publish(self.topics.executor_applied, applied)  # after its journal row is committed (if it can)
            self.bus.publish_state(self.topics.executor_last_decision, last_decision(applied))  # small, retained
            self.alert.update(now, act.baseline)
            self.heartbeat(now)
            return applied

    def _inputs(self, now: datetime, leaving: str | None = None) -> DecisionInputs:
        """Everything the decision needs, as it is now (the baseline must be known)."""
        act, c, latest = self.actuator, self.controls, self.inputs.latest()
        assert act.baseline is not None
        status = self.observer.status
        return DecisionInputs(
            now=now,
            mode=c.mode,
            baseline=act.baseline,
            plan=latest.plan,
            current_rate=latest.current_rate,
            rates=latest.rates,
            planner_max_price_gbp=latest.planner_max_gbp,
            battery=status.battery_state(now) if status else None,
            forced_active=act.forced is not None,
            override=c.override,
            mode_until=c.mode_until,
            leaving=leaving,
            budget_available=1 if leaving else self.client.available(),
            retry_change=None if leaving else act.retry_change,
            retry_not_before=act.retry_not_before(now),
            charge_method=self.s.charge_method,
            lease_margin=timedelta(seconds=self.s.lease_margin_s),
            clock_skew=self.client.clock_skew,
            why_no_request=None if leaving else self.client.why_no_request(),
            planner_peak=latest.planner_peak,
            window=c.windows.active(now) if c.windows is not None else None,
            sessions=latest.sessions,
        )

    def _note_budget_wait(self, applied: AppliedDecision, d: Decision) -> None:
        """A write that waits (the request budget, NetZero's 429 wait, the 403 back-off, room for a fresh read and
        the write, a retry's back-off): the next decision comes when it may go, not a whole interval later."""
        if applied.outcome != "deferred":
            self.budget_wait_s = None
            return
        now = self.clock.now()
        waits = [self.client.limiter.next_free_in(2 if d.needs_read else 1)]
        if self.client.backing_off() and self.client.next_try_at is not None:
            waits.append((self.client.next_try_at - now).total_seconds())
        retry = self.actuator.retry_wait_s()
        if retry is not None:
            waits.append(retry)
        self.budget_wait_s = max(1.0, *waits)

    # ------------------------------------------------------------------ leaving

    def restore_on_stop(self) -> None:
        """SIGTERM: put the user's baseline back before the process exits (when a state of ours is active)."""
        with self._lock:
            if self.actuator.forced is None:
                self.log.info("stopping: nothing of ours on the Powerwall")
                return
            self.observer.wait_for_request(self.s.restore_wait_s)
            applied = self.tick(leaving="SIGTERM")
            self.log.info(
                "stopping: baseline restore",
                outcome=applied.outcome if applied else None,
                still_forced=self.actuator.forced is not None,
            )
