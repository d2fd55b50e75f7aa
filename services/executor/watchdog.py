"""The watchdog: a separate small process that undoes a forced state when the executor has gone silent.

It listens to ``executor/heartbeat``. When no heartbeat has come for ``watchdog_timeout_s`` (or the journal's
lease is over by that much) *and* the executor's journal (the same SQLite file, WAL) says a forced state is
active, it reads NetZero, restores the user's baseline from the journal in one POST, reads it back, clears the
forced state in the journal and publishes a ``WatchdogReport`` on ``executor/watchdog``. When the grid is down or
storm watch is on it waits, like the executor (touch nothing during an outage). A journal it cannot write (disk
full, read-only) does not stop the restore, the safe direction; it then remembers in memory that this forced
state was restored, so it does not send the baseline again and again while the journal still says "forced".

Run: ``python -m services.executor.watchdog``.
"""

from __future__ import annotations

import sys
import threading
from datetime import datetime, timedelta
from typing import Any

from services.executor.config import WatchdogSettings
from services.executor.journal import DB_NAME, Journal, JournalError
from services.executor.limiter import process_limiter
from services.executor.netzero import NetZeroClient, NetZeroError
from services.executor.translate import desired_config, diff
from shared.bus import Bus, Incoming
from shared.clock import Clock
from shared.models import Action, GridStatus, Heartbeat, PowerwallConfig, WatchdogReport
from shared.runner import ServiceContext, run_service


class Watchdog:
    def __init__(
        self, settings: WatchdogSettings, clock: Clock, bus: Bus, journal: Journal, client: NetZeroClient, log: Any
    ) -> None:
        self.s = settings
        self.clock = clock
        self.bus = bus
        self.journal = journal
        self.client = client
        self.log = log
        self.started_at = clock.now()
        self.last_heartbeat: datetime | None = None
        self.last_state: str | None = None
        self.restored_unrecorded: str | None = None  # the journal's forced entry restored but not cleared
        self._lock = threading.Lock()

    def on_heartbeat(self, msg: Incoming) -> None:
        hb: Heartbeat | None = msg.model
        if hb is None:
            return
        seen = min(hb.generated_at, self.clock.now())  # a retained heartbeat from before a restart is old
        with self._lock:
            if self.last_heartbeat is None or seen > self.last_heartbeat:
                self.last_heartbeat = seen

    def report(self, state: str, detail: str = "", force: bool = False) -> None:
        if state == self.last_state and not force:
            return
        self.last_state = state
        self.bus.publish_state(
            self.bus.topics.watchdog_report,
            WatchdogReport(
                generated_at=self.clock.now(), state=state, last_heartbeat_at=self.last_heartbeat, detail=detail
            ),
        )

    def check(self) -> str:
        """One look; returns what it did (for the tests): idle, watching, restored, restore_failed, waiting."""
        now = self.clock.now()
        timeout = timedelta(seconds=self.s.watchdog_timeout_s)
        forced = self.journal.forced()
        if forced is None:
            self.report("idle", "no forced state in the journal")
            return "idle"
        if self.restored_unrecorded is not None and self.journal.forced_raw() == self.restored_unrecorded:
            try:  # restored earlier; nobody has forced anything since (that would have changed the entry)
                self.journal.clear_forced_if(self.restored_unrecorded)
            except JournalError:
                self.report("restored", "baseline restored; the journal cannot be written to say so")
                return "restored"
            self.restored_unrecorded = None
            self.log.info("journal writable again: the restored forced state is cleared")
            return "restored"
        with self._lock:
            last = self.last_heartbeat or self.started_at
        silent = now - last >= timeout
        lease_over = now - forced.lease_until >= timeout
        if not silent and not lease_over:
            self.report("watching", f"forced state leased until {forced.lease_until.isoformat()}")
            return "watching"
        why = f"no executor heartbeat since {last.isoformat()}" if silent else "the forced state's lease is long over"
        return self.restore(why)

    def restore(self, why: str) -> str:
        baseline = self.journal.baseline()
        if baseline is None:
            self.report("restore_failed", f"{why}; but the journal has no baseline to restore")
            return "restore_failed"
        want = desired_config(Action.SELF_USE, baseline)
        forced = self.journal.forced_raw()
        try:
            status = self.client.get()
            if status.grid_status == GridStatus.OFF_GRID or status.storm_mode_active:
                self.report("watching", f"{why}; grid down or storm watch: waiting, touching nothing")
                return "waiting"
            # The whole baseline is sent even when the read shows it already: a forcing command of the executor's
            # may still be on its way to the gateway, and the last command sent is the one that sticks.
            change = PowerwallConfig(**{k: v for k, v in want.model_dump().items() if v is not None})
            try:
                command_id: int | None = self.journal.command(self.clock.now(), "watchdog", change, None)
            except JournalError as exc:
                command_id = None
                self.log.error("journal unwritable: restoring the baseline without its row", error=str(exc))
            status = self.client.post(change)
            ok = diff(change, status.config) is None
            if command_id is not None:
                try:
                    with self.journal.transaction():
                        self.journal.readback(self.clock.now(), command_id, status.config, ok)
                        self.journal.command_done(command_id, "ok" if ok else "mismatch")
                except JournalError as exc:
                    self.log.warning("journal unwritable: read-back not recorded", error=str(exc))
            if not ok:  # maybe applied late: the next check reads again and, if still forced, sends again
                self.report("restore_failed", f"{why}; baseline sent, read-back differs; checking again", force=True)
                return "restore_failed"
        except NetZeroError as exc:
            self.log.warning("watchdog restore failed", error=str(exc))
            self.report("restore_failed", f"{why}; {exc}", force=True)
            return "restore_failed"
        try:
            if not self.journal.clear_forced_if(forced):
                self.log.warning("the executor forced a state again meanwhile: keeping it in the journal")
            self.restored_unrecorded = None
        except JournalError as exc:
            self.restored_unrecorded = forced
            self.log.warning("baseline restored but the journal still says forced: cannot write it", error=str(exc))
        self.log.warning("watchdog restored the baseline", reason=why, baseline=baseline.model_dump())
        self.report("restored", f"{why}; baseline restored", force=True)
        return "restored"


def build_client(settings: WatchdogSettings, clock: Clock) -> NetZeroClient:
    if settings.netzero_api_key is None or not settings.netzero_site_id:
        print(
            "batsched: configuration error: BATSCHED_NETZERO_API_KEY (or NETZERO_API_KEY) and "
            "BATSCHED_NETZERO_SITE_ID (or NETZERO_SITE_ID) are required",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return NetZeroClient(
        settings.netzero_base_url,
        settings.netzero_api_key.get_secret_value(),
        settings.netzero_site_id,
        clock,
        process_limiter(clock, settings.netzero_max_per_minute),
        settings.netzero_timeout_s,
    )


def wire(ctx: ServiceContext[WatchdogSettings]) -> None:
    journal = Journal(ctx.data_path(DB_NAME))
    dog = Watchdog(ctx.settings, ctx.clock, ctx.bus, journal, build_client(ctx.settings, ctx.clock), ctx.log)
    ctx.bus.subscribe(ctx.topics.executor_heartbeat, dog.on_heartbeat, Heartbeat)
    ctx.every(ctx.settings.watchdog_check_s, dog.check, name="watch", run_now=False)


if __name__ == "__main__":
    raise SystemExit(run_service("watchdog", WatchdogSettings, wire))
