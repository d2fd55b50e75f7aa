"""What the executor sees of the Powerwall: polling NetZero, the read-back of a write, how old a read may be when a
charge or hold goes on it, the clock skew alarm, the ``executor/alert`` a person must act on, and the hand-back of a
forced state before the process exits (SIGTERM, or a journal that cannot be opened at start)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from services.executor.config import ExecutorSettings
from services.executor.decide import Decision
from services.executor.journal import Journal
from services.executor.netzero import BudgetExhausted, NetZeroClient, NetZeroError, SiteStatus
from services.executor.rules import RuleConfig, clock_off, grid_unsafe, restorable_reserve, unrestorable_text
from services.executor.translate import desired_config, diff, restore_config
from shared.bus import Bus
from shared.clock import Clock
from shared.models import Action, ExecutorAlert, PowerwallConfig

ALERT_ORDER = ("netzero_refused", "baseline_unrestorable")  # the most pressing first


class Observer:
    """The last read and what it says. Its state (``status``, ``last_error``, ``clock_off``) is guarded by the
    executor's decision lock, held by every caller: reads happen only inside a decision."""

    def __init__(
        self, settings: ExecutorSettings, cfg: RuleConfig, clock: Clock, bus: Bus, client: NetZeroClient, log: Any
    ) -> None:
        self.s = settings
        self.cfg = cfg
        self.clock = clock
        self.bus = bus
        self.client = client
        self.log = log
        self.status: SiteStatus | None = None  # the last read (a poll or a write's response)
        self.last_error: str | None = None  # why the last poll failed, while it does
        self.clock_off = False  # this host's clock was last found off NetZero's (the skew alarm is raised)

    def poll(self, now: datetime, reuse: bool, forced: bool) -> bool:
        """Read the Powerwall; True when a new read came in (the caller settles on it). ``reuse``: a decision woken
        early may decide on a read less than half an interval old (the request budget), unless that read showed the
        grid down or storm watch (it may be back); one that would then charge or hold reads again first
        (``rules.fresh_read``)."""
        before = self.status
        if reuse and before is not None and not grid_unsafe(before):
            age = (now - before.observed_at).total_seconds()
            if 0 <= age < self.s.decision_interval_s * 0.5:
                return False
        try:
            self.status = self.client.get()
            self.last_error = None
        except BudgetExhausted as exc:
            self.log.info("poll skipped", reason=str(exc))
            return False
        except NetZeroError as exc:
            self.last_error = str(exc)
            self.log.warning("NetZero read failed", error=str(exc), kind=type(exc).__name__)
            return False
        self.bus.publish_state(self.bus.topics.battery_state, self.status.battery_state(now))
        if before is not None and grid_unsafe(before) and not grid_unsafe(self.status):
            self.log.info("grid back and no storm watch: deciding on this read", forced=forced)
        return True

    def take(self, now: datetime, readback: SiteStatus) -> None:
        """A write's response is the newest read."""
        self.status = readback
        self.bus.publish_state(self.bus.topics.battery_state, readback.battery_state(now))

    def read_too_old(self, d: Decision) -> str | None:
        """A charge or hold goes only on a read at most ``fresh_read`` old when it is sent (not only when decided:
        the journal's fsync comes in between). Why not, or None."""
        if not d.forcing or self.status is None:
            return None
        age = self.clock.now() - self.status.observed_at
        if age <= self.cfg.fresh_read:
            return None
        return f"the read is {age.total_seconds():.1f}s old by now (limit {self.cfg.fresh_read.total_seconds():g}s)"

    def note_skew(self) -> None:
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

    def wait_for_request(self, limit_s: float) -> None:
        """Before the SIGTERM hand-back: wait (at most ``limit_s``) until the request budget allows one."""
        limiter = self.client.limiter
        waited = 0.0
        never = threading.Event()
        while limiter.available() < 1 and waited < limit_s:
            step = min(1.0, limit_s - waited)
            self.clock.wait(step, never)
            waited += step


class Alert:
    """``executor/alert`` (retained): the most pressing problem a person must fix, ``ok`` when none. ``current``
    is guarded by the executor's decision lock (written only by ``update``, inside a decision)."""

    def __init__(self, cfg: RuleConfig, bus: Bus, client: NetZeroClient, log: Any) -> None:
        self.cfg = cfg
        self.bus = bus
        self.client = client
        self.log = log
        self.current: ExecutorAlert | None = None  # the last published

    def problems(self, baseline: PowerwallConfig | None) -> dict[str, str]:
        found = {}
        refused = self.client.refusal_text()
        if refused:
            found["netzero_refused"] = (
                f"{refused}. Check BATSCHED_NETZERO_API_KEY and BATSCHED_NETZERO_SITE_ID (a token may have been "
                "revoked or expired): until NetZero accepts them batsched cannot read or change the Powerwall"
            )
        base = baseline
        if base is not None and not restorable_reserve(base.backup_reserve_pct) and not self.cfg.accept_nearest_reserve:
            found["baseline_unrestorable"] = unrestorable_text(base.backup_reserve_pct)
        return found

    def update(self, now: datetime, baseline: PowerwallConfig | None) -> None:
        """Published on the first decision and whenever it changes, and cleared by itself (the next good answer
        from NetZero, a baseline that can be restored)."""
        problems = self.problems(baseline)
        codes = [c for c in ALERT_ORDER if c in problems]
        code = codes[0] if codes else "ok"
        message = "; ".join(problems[c] for c in codes) if codes else "nothing keeps the executor from its job"
        prev = self.current
        if prev is not None and prev.code == code and prev.message == message:
            return
        since = prev.since if prev is not None and prev.code == code else now
        self.current = ExecutorAlert(generated_at=now, code=code, message=message, since=since)  # type: ignore[arg-type]
        if code != "ok":
            self.log.warning("executor alert", code=code, message=message)
        elif prev is not None and prev.code != "ok":
            self.log.info("executor alert resolved", was=prev.code)
        self.bus.publish_state(self.bus.topics.executor_alert, self.current)


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
