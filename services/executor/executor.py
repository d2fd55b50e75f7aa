"""The executor service: polls NetZero, decides (``decide.decide``), writes, reads back, journals, publishes.

Threads: bus handlers only record inputs and wake the decision loop; the loop (one thread) does all NetZero I/O
under one lock, so the SIGTERM restore never races a decision. Every forced state (charge, hold) is journalled
with a lease before the command goes out, renewed while the plan still wants it, and undone when it does not.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

from services.executor.config import ExecutorSettings
from services.executor.decide import Decision, DecisionInputs, Override, decide
from services.executor.journal import ForcedState, Journal
from services.executor.netzero import BudgetExhausted, NetZeroClient, NetZeroError, SiteStatus
from services.executor.rules import RuleConfig
from services.executor.translate import desired_config, diff, is_forced, sanitize_baseline
from shared.bus import Bus, CommandError, Incoming
from shared.clock import Clock, WallClockSteps, wait_until
from shared.ha import entity
from shared.models import (
    Action,
    AppliedDecision,
    CurrentRate,
    ExecutorMode,
    Heartbeat,
    OverrideCommand,
    Plan,
    PowerwallConfig,
    RateSeries,
)
from shared.slots import parse_hhmm

TRUE = {"true", "on", "1", "yes"}
FALSE = {"false", "off", "0", "no"}
MAX_OVERRIDE = timedelta(hours=24)
UNCONFIRMED_FORGET_S = 900  # a command not applied after this long is taken as dropped by the gateway (monotonic)


def rule_config(s: ExecutorSettings) -> RuleConfig:
    return RuleConfig(
        tz=s.tz,
        peak_start=parse_hhmm(s.peak_start_local),
        peak_end=parse_hhmm(s.peak_end_local),
        peak_lead=timedelta(seconds=s.peak_lead_s),
        max_price_gbp=s.max_charge_price_gbp,
        min_target_soc_pct=s.min_target_soc_pct,
        max_target_soc_pct=s.max_target_soc_pct,
        battery_max_age=timedelta(seconds=s.battery_max_age_s),
    )


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ValueError(f"expected true or false, got {text[:20]!r}")


class Executor:
    def __init__(
        self, settings: ExecutorSettings, clock: Clock, bus: Bus, journal: Journal, client: NetZeroClient, log: Any
    ) -> None:
        self.s = settings
        self.clock = clock
        self.bus = bus
        self.topics = bus.topics
        self.journal = journal
        self.client = client
        self.log = log
        self.cfg = rule_config(settings)
        self._lock = threading.RLock()
        self.wake = threading.Event()
        # inputs
        self.plan: Plan | None = None
        self.current_rate: CurrentRate | None = None
        self.rates: RateSeries | None = None
        self.planner_max: float | None = None
        self.status: SiteStatus | None = None
        # own state (persisted in the journal)
        self.mode = ExecutorMode(journal.get("mode") or ExecutorMode.AUTO)
        until = journal.get("mode_until")
        self.mode_until = datetime.fromisoformat(until) if until else None
        stored_dry = journal.get("dry_run")
        self.dry_run = parse_bool(stored_dry) if stored_dry else settings.dry_run
        self.baseline = journal.baseline()
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

    # ------------------------------------------------------------------ bus inputs (worker thread)

    def on_plan(self, msg: Incoming) -> None:
        self.plan = msg.model
        self.wake.set()

    def on_current_rate(self, msg: Incoming) -> None:
        self.current_rate = msg.model

    def on_rates(self, msg: Incoming) -> None:
        self.rates = msg.model

    def on_planner_max_price(self, msg: Incoming) -> None:
        text = msg.text.strip()
        if not text:
            self.planner_max = None
            return
        try:
            value = float(text)
        except ValueError:
            self.log.warning("planner max price ignored: not a number", payload=text[:40])
            return
        self.planner_max = value if -1 <= value <= 2 else None

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
            self._persist_mode()
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
            self.journal.put("dry_run", "true" if value else "false")
        self.log.info("dry-run set", dry_run=value)
        self.publish_dry_run()
        self.wake.set()

    def on_override(self, cmd: OverrideCommand) -> dict[str, Any]:
        now = self.clock.now()
        if cmd.action is None:
            with self._lock:
                self.override = None
                self.journal.override(now, cmd.request_id, None, None, None, "cancelled")
            self.wake.set()
            return {"override": None}
        assert cmd.until is not None
        if cmd.until <= now:
            self.journal.override(now, cmd.request_id, cmd.action.value, cmd.until, cmd.target_soc_pct, "refused")
            raise CommandError(f"override ends in the past ({cmd.until.isoformat()})")
        if cmd.until - now > MAX_OVERRIDE:
            self.journal.override(now, cmd.request_id, cmd.action.value, cmd.until, cmd.target_soc_pct, "refused")
            raise CommandError("an override may last at most 24 hours")
        with self._lock:
            self.override = Override(cmd.action, cmd.until, cmd.target_soc_pct, cmd.request_id)
            self.journal.override(now, cmd.request_id, cmd.action.value, cmd.until, cmd.target_soc_pct, "accepted")
        self.wake.set()
        return {"action": cmd.action.value, "until": cmd.until.isoformat(), "note": "the safety rules still apply"}

    def _persist_mode(self) -> None:
        self.journal.put("mode", self.mode.value)
        self.journal.put("mode_until", self.mode_until.isoformat() if self.mode_until else None)

    # ------------------------------------------------------------------ publishing

    def publish_mode(self) -> None:
        self.bus.publish_state(self.topics.executor_mode, self.mode.value)

    def publish_dry_run(self) -> None:
        self.bus.publish_state(self.topics.executor_dry_run, "true" if self.dry_run else "false")

    def publish_state(self) -> None:
        """Retained state, republished on every (re)connect."""
        self.publish_mode()
        self.publish_dry_run()
        if self.status is not None:
            self.bus.publish_state(self.topics.battery_state, self.status.battery_state(self.clock.now()))

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
        deadline = now + timedelta(seconds=self.s.decision_interval_s)
        wait_until(self.clock, deadline, stop, self.wake, since=now)

    def tick(self, leaving: str | None = None) -> AppliedDecision | None:
        with self._lock:
            self._on_clock_step(self.steps.check())
            now = self.clock.now()  # after the check: a step in between is caught by ``_wait``
            self._expire_manual(now)
            self._poll(now, fresh_enough=not leaving)
            if self.status is not None and not self.reconciled:
                self._reconcile(now)
            if self.baseline is None:
                self.heartbeat(now)
                return None
            if self.dry_run and self.forced is not None and not leaving:
                leaving = "dry-run on: handing back control"
            inputs = DecisionInputs(
                now=now,
                mode=self.mode,
                baseline=self.baseline,
                plan=self.plan,
                current_rate=self.current_rate,
                rates=self.rates,
                planner_max_price_gbp=self.planner_max,
                battery=self.status.battery_state(now) if self.status else None,
                forced_active=self.forced is not None,
                override=self.override,
                mode_until=self.mode_until,
                leaving=leaving,
                budget_available=1 if leaving else self.client.limiter.available(),
                retry_change=None if leaving else self.retry_change,
                retry_not_before=self._retry_not_before(now),
                charge_method=self.s.charge_method,
                lease_margin=timedelta(seconds=self.s.lease_margin_s),
            )
            decision = decide(inputs, self.cfg)
            applied = self._act(now, decision, write_allowed=not self.dry_run or bool(leaving))
            self.bus.publish(self.topics.executor_applied, applied)  # after its journal row is committed
            self.heartbeat(now)
            return applied

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
            self._persist_mode()

    def _retry_not_before(self, now: datetime) -> datetime | None:
        if self.retry_due is None:
            return None
        return now + timedelta(seconds=max(0.0, self.retry_due - self.clock.monotonic()))

    def _expire_manual(self, now: datetime) -> None:
        if self.mode_until is not None and now >= self.mode_until:
            self.log.info("manual mode lease over: back to auto", mode=self.mode.value)
            self.mode, self.mode_until = ExecutorMode.AUTO, None
            self._persist_mode()
            self.publish_mode()
        if self.override is not None and now >= self.override.until:
            self.log.info("override over", action=self.override.action.value)
            self.override = None

    def _poll(self, now: datetime, fresh_enough: bool) -> None:
        if fresh_enough and self.status is not None:
            age = (now - self.status.observed_at).total_seconds()
            if 0 <= age < self.s.decision_interval_s * 0.5:
                return  # a decision woken early reuses a recent read (the request budget)
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
        self._settle(now)

    def _settle(self, now: datetime) -> None:
        """A fresh read: confirm a pending command that has applied, and forget a forced state that is gone."""
        assert self.status is not None
        if self.retry_change is not None and diff(self.retry_change, self.status.config) is None:
            self.journal.readback(now, None, self.status.config, True)
            self.log.info("earlier command now confirmed by read-back", change=self.retry_change.model_dump())
            self._reset_retry()
        with self.journal.transaction():
            self._maybe_clear_forced(now)

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
        """First read after start: capture the baseline if we have none, and find a state of ours left behind."""
        assert self.status is not None
        found = self.status.config
        if self.baseline is None:
            self.baseline = sanitize_baseline(found, self.s.baseline_mode, self.s.baseline_reserve_pct)
            self.journal.store_baseline(self.baseline, found, now)
            self.log.info("baseline captured", baseline=self.baseline.model_dump(), found=found.model_dump())
        if self.forced is None and is_forced(found, self.baseline):
            self.log.warning(
                "forced state found with no lease in the journal: restoring unless the plan wants it",
                found=found.model_dump(),
            )
            self.forced = ForcedState(found, now, now)
            self.journal.set_forced(found, now, now)
        elif self.forced is not None:
            self.log.info(
                "journal says a forced state is active: continuing or restoring per the current plan",
                lease_until=self.forced.lease_until.isoformat(),
            )
        self.reconciled = True

    def _act(self, now: datetime, d: Decision, write_allowed: bool) -> AppliedDecision:
        """Carry out a decision; every journal write of one step is one transaction (one fsync)."""
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
            with self.journal.transaction():
                if d.forcing and d.desired is not None and d.lease_until is not None:
                    self._lease(now, d.desired, d.lease_until)  # renew: the plan still wants it
                return self._record(
                    AppliedDecision(**common, observed=observed, outcome=outcome, error=self.last_error)
                )
        if not write_allowed:
            return self._record(AppliedDecision(**common, observed=observed, outcome="dry_run"))
        # Write-ahead: the lease, the decision and the command are committed before anything is sent.
        kind = "restore" if d.source == "leaving" else "decision"
        with self.journal.transaction():
            if d.forcing and d.desired is not None and d.lease_until is not None:
                self._lease(now, d.desired, d.lease_until)
            self.journal.decision(
                AppliedDecision(
                    **common,
                    sent=d.change,
                    observed=observed,
                    outcome="failed",
                    error="interrupted before the read-back",
                )
            )
            command_id = self.journal.command(now, kind, d.change, decision_id, d.lease_until)
        try:
            readback = self.client.post(d.change, spare=kind == "restore")
        except NetZeroError as exc:
            self.log.warning("NetZero write failed", error=str(exc), kind=type(exc).__name__)
            self._schedule_retry(now, d.change)
            with self.journal.transaction():
                self.journal.command_done(command_id, "failed", str(exc))
                return self._record(
                    AppliedDecision(**common, sent=d.change, observed=observed, outcome="failed", error=str(exc))
                )
        self.status = readback
        self.bus.publish_state(self.topics.battery_state, readback.battery_state(now))
        ok = diff(d.change, readback.config) is None
        with self.journal.transaction():
            self.journal.readback(now, command_id, readback.config, ok)
            self.journal.command_done(command_id, "ok" if ok else "mismatch")
            if ok:
                self._reset_retry()
                self._maybe_clear_forced(now)
                return self._record(
                    AppliedDecision(**common, sent=d.change, observed=readback.config, outcome="applied")
                )
            error = f"read-back differs from what was sent (sent {d.change.model_dump(exclude_none=True)})"
            self.log.warning(
                "actuation not confirmed",
                sent=d.change.model_dump(exclude_none=True),
                observed=readback.config.model_dump(),
            )
            self._schedule_retry(now, d.change)
            return self._record(
                AppliedDecision(**common, sent=d.change, observed=readback.config, outcome="mismatch", error=error)
            )

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
        self.journal.decision(applied)  # published by ``tick`` once committed
        if applied.outcome in ("failed", "mismatch", "deferred"):
            self.log.info("decision", action=applied.action, outcome=applied.outcome, error=applied.error)
        return applied

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
