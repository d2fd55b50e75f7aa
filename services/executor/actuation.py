"""Carrying out a decision on the Powerwall: write-ahead journal, lease, retries, read-back, and what is ours.

Every forced state (charge, hold) is journalled with a lease before the command goes out, renewed while the plan
still wants it, and undone when it does not. A write whose read-back differs may still land: it is watched and sent
again only after a back-off (doubling up to ``retry_backoff_max_s``). The write's own response is read like a poll,
and one showing the grid down or storm watch is recorded as ``grid_down_after_write``: the forced state stays in
the journal as possibly active until a read shows the grid back.

The baseline (what ``self_use`` hands back) is the user's own configuration: the one found whenever nothing of
ours is on the Powerwall, whatever it is. When the lease of a forcing decision cannot be committed, nothing is sent
(``JournalUnwritable``); a restore is the one command sent without its row, because it is the safe direction."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from services.executor.config import ExecutorSettings
from services.executor.decide import Decision, write_outcome
from services.executor.journal import ForcedState, JournalError
from services.executor.netzero import NetZeroClient, NetZeroError
from services.executor.observation import Observer
from services.executor.records import Records
from services.executor.rules import grid_unsafe
from services.executor.translate import desired_config, diff, is_forced, user_baseline
from shared.clock import Clock
from shared.models import Action, AppliedDecision, ExecutorMode, PowerwallConfig

UNCONFIRMED_FORGET_S = 900  # a command not applied after this long is taken as dropped by the gateway (monotonic)


class JournalUnwritable(Exception):
    """A forcing decision whose lease could not be committed: nothing was sent."""


class Actuator:
    """Writes to the Powerwall and keeps what is ours. Its state (``forced``, ``baseline``, ``baseline_found``,
    ``reconciled`` and the retry's ``retry_*``/``backoff_s``) is guarded by the executor's decision lock, held by
    every caller, so a SIGTERM hand-back never races a decision. Durations are on the clock's monotonic time (a
    wall-clock step neither cuts nor stretches them)."""

    def __init__(
        self,
        settings: ExecutorSettings,
        clock: Clock,
        records: Records,
        client: NetZeroClient,
        observer: Observer,
        log: Any,
    ) -> None:
        self.s = settings
        self.clock = clock
        self.records = records
        self.journal = records.journal
        self.client = client
        self.seen = observer
        self.log = log
        self.baseline = self.journal.baseline()
        self.baseline_found: tuple[PowerwallConfig, datetime] | None = None  # what was read when captured, and when
        self.forced: ForcedState | None = self.journal.forced()
        self.reconciled = False  # the first read after start has been checked against the journal
        self.retry_change: PowerwallConfig | None = None  # a command sent but not confirmed by a read-back
        self.retry_due: float | None = None
        self.retry_first: float | None = None
        self.backoff_s = settings.retry_backoff_s

    # ------------------------------------------------------------------ what is ours

    def reconcile(self, now: datetime) -> None:
        """First read after start. A state of ours that the journal records (its lease) is continued if the plan
        still wants it, else handed back to the journal's baseline. Anything else is the user's own configuration,
        whatever it looks like (backup mode, grid charging, any reserve): it becomes the baseline and nothing is
        written for it."""
        assert self.seen.status is not None
        found = self.seen.status.config
        if self.forced is not None and self.baseline is not None:
            self.log.info(
                "journal says a forced state is active: continuing or restoring per the current plan",
                lease_until=self.forced.lease_until.isoformat(),
            )
        else:
            if self.forced is not None:  # a lease without a baseline cannot be handed back to anything
                self.log.warning("journal has a lease but no baseline: taking what is found as yours")
                self.forced = None
                self.records.save(self.journal.clear_forced)
            self._follow_user(found, now)
        self.reconciled = True

    def settle(self, now: datetime) -> None:
        """A fresh read: confirm a pending command that has applied, forget a forced state that is gone, and
        follow the user's own configuration while nothing of ours is on the Powerwall."""
        status = self.seen.status
        assert status is not None
        if self.retry_change is not None and diff(self.retry_change, status.config) is None:
            observed = status.config
            self.records.save(lambda: self.journal.readback(now, None, observed, True))
            self.log.info("earlier command now confirmed by read-back", change=self.retry_change.model_dump())
            self._reset_retry()
        self.records.save(lambda: self._maybe_clear_forced(now))
        # Not during an outage or storm watch: what the gateway shows then may be its own doing, not the user's.
        if self.reconciled and self.forced is None and self.retry_change is None and not grid_unsafe(status):
            self._follow_user(status.config, now)

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
        self.records.persist("baseline", self._write_baseline)
        self.log.info(
            "baseline captured: your own configuration" if first else "baseline follows your own change",
            baseline=baseline.model_dump(),
        )

    def _write_baseline(self) -> None:
        if self.baseline is not None and self.baseline_found is not None:
            found, at = self.baseline_found
            self.journal.store_baseline(self.baseline, found, at)

    def _maybe_clear_forced(self, now: datetime) -> None:
        """The baseline is back on the Powerwall and no forcing command of ours may still apply: not forced."""
        status = self.seen.status
        if self.forced is None or self.baseline is None or status is None:
            return
        if diff(desired_config(Action.SELF_USE, self.baseline), status.config) is not None:
            return
        pending = self.retry_change
        if pending is not None and is_forced(pending, self.baseline) and self.retry_first is not None:
            if self.clock.monotonic() - self.retry_first < UNCONFIRMED_FORGET_S:
                return  # a charge command may still land late: keep watching it
            self.log.warning("a forcing command was never applied; forgetting it", change=pending.model_dump())
            self._reset_retry()
        self.forced = None
        self.journal.clear_forced()

    # ------------------------------------------------------------------ acting

    def act(
        self, now: datetime, d: Decision, write_allowed: bool, mode: ExecutorMode, dry_run: bool
    ) -> AppliedDecision:
        """Carry out a decision; every journal write of one step is one transaction (one fsync).

        Raises ``JournalUnwritable`` (having sent nothing) for a forcing decision whose lease cannot be committed."""
        decision_id = uuid.uuid4().hex[:16]
        status = self.seen.status
        observed = status.config if status else None
        common = dict(
            generated_at=now,
            decision_id=decision_id,
            plan_id=d.plan_id,
            slot_start=d.slot_start,
            mode=mode,
            dry_run=dry_run,
            requested_action=d.requested_action,
            action=d.action,
            rules=d.rules,
            desired=d.desired,
            soc_pct=status.soc_pct if status else None,
        )
        if d.action is None:
            return self._record(AppliedDecision(**common, observed=observed, outcome="stood_aside"))
        if d.deferred:
            return self._record(AppliedDecision(**common, observed=observed, outcome="deferred"))
        if d.change is None:
            outcome = "unchanged" if status is not None else "failed"
            applied = AppliedDecision(**common, observed=observed, outcome=outcome, error=self.seen.last_error)
            self._journal_first(now, d, lambda: self.journal.decision(applied))  # renews the lease: the plan wants it
            self._log_outcome(applied)
            return self.records.flagged(applied)
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
        late = self.seen.read_too_old(d)
        if late:  # the write-ahead took longer than a read may age: this write is not sent on it
            self.log.warning("charge or hold not sent: " + late)
            waited = AppliedDecision(**common, sent=None, observed=observed, outcome="deferred", error=late)
            self._finish(command_id, "failed", f"not sent: {late}", waited)
            return self.records.flagged(waited)
        try:
            readback = self.client.post(change, spare=kind == "restore")
        except NetZeroError as exc:
            self.log.warning("NetZero write failed", error=str(exc), kind=type(exc).__name__)
            self._schedule_retry(change)
            reason = str(exc)
            failed = AppliedDecision(**common, sent=change, observed=observed, outcome="failed", error=reason)
            self._finish(command_id, "failed", reason, failed)
            self._log_outcome(failed)
            return self.records.flagged(failed)
        self.seen.take(now, readback)
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
            self._schedule_retry(change)
        applied = AppliedDecision(**common, sent=change, observed=readback.config, outcome=outcome, error=error)
        status_text = {"applied": "ok", "mismatch": "mismatch"}.get(outcome, "grid_down")

        def record_readback() -> None:
            self.journal.readback(now, command_id, readback.config, ok)
            if command_id is not None:
                self.journal.command_done(command_id, status_text)
            if ok:
                self._maybe_clear_forced(now)
            self.journal.decision(applied)

        self.records.save(record_readback)
        self._log_outcome(applied)
        return self.records.flagged(applied)

    def _finish(self, command_id: int | None, status: str, reason: str, applied: AppliedDecision) -> None:
        """A command that was not carried out: its row says why, with the decision."""

        def write() -> None:
            if command_id is not None:
                self.journal.command_done(command_id, status, reason)
            self.journal.decision(applied)

        self.records.save(write)

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
            self.records.failed(exc)
            if d.forcing:
                raise JournalUnwritable(str(exc)) from None
            return False
        self.records.ok()  # ``write`` always adds a row
        return True

    def _lease(self, now: datetime, config: PowerwallConfig, until: datetime) -> None:
        since = self.forced.since if self.forced is not None else now
        self.forced = ForcedState(config, since, until)
        self.journal.set_forced(config, since, until)

    # ------------------------------------------------------------------ retries

    def _schedule_retry(self, change: PowerwallConfig) -> None:
        if self.retry_change != change:
            self.backoff_s = self.s.retry_backoff_s
            self.retry_first = self.clock.monotonic()
        self.retry_change = change
        self.retry_due = self.clock.monotonic() + self.backoff_s
        self.backoff_s = min(self.backoff_s * 2, self.s.retry_backoff_max_s)

    def _reset_retry(self) -> None:
        self.retry_change, self.retry_due, self.retry_first = None, None, None
        self.backoff_s = self.s.retry_backoff_s

    def retry_not_before(self, now: datetime) -> datetime | None:
        """When a command sent but not confirmed may be sent again."""
        if self.retry_due is None:
            return None
        return now + timedelta(seconds=max(0.0, self.retry_due - self.clock.monotonic()))

    def retry_wait_s(self) -> float | None:
        """Seconds until the retry's back-off ends, if one waits."""
        return None if self.retry_due is None else self.retry_due - self.clock.monotonic()

    # ------------------------------------------------------------------ recording

    def _record(self, applied: AppliedDecision) -> AppliedDecision:
        self.records.save(lambda: self.journal.decision(applied))  # published by ``tick`` once committed
        self._log_outcome(applied)
        return self.records.flagged(applied)

    def _log_outcome(self, applied: AppliedDecision) -> None:
        if applied.outcome in ("failed", "mismatch", "deferred", "grid_down_after_write"):
            self.log.info("decision", action=applied.action, outcome=applied.outcome, error=applied.error)
