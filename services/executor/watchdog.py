"""The watchdog: a separate small process that undoes a forced state when the executor has gone silent.

It listens to ``executor/heartbeat``. When no heartbeat has come for ``watchdog_timeout_s`` (or the journal's
lease is over by that much) *and* the executor's journal (the same SQLite file, WAL) says a forced state is
active, it reads NetZero, restores the user's baseline from the journal in one POST, reads it back, clears the
forced state in the journal and publishes a ``WatchdogReport`` on ``executor/watchdog``. When the grid is down or
storm watch is on it waits, like the executor (touch nothing during an outage). A journal it cannot write (disk
full, read-only) does not stop the restore, the safe direction; it then remembers in memory that this forced
state was restored, so it does not send the baseline again and again while the journal still says "forced".

Both limits are durations, so they run on the clock's monotonic time: a wall clock stepped forward 6 h must not
make a heartbeat a second old look 6 h old (restoring the baseline behind a healthy executor's back), nor one
stepped back make the watchdog blind for hours.

Run: ``python -m services.executor.watchdog``.
"""

from __future__ import annotations

import sys
import threading
from datetime import datetime
from typing import Any

from services.executor.config import WatchdogSettings
from services.executor.journal import DB_NAME, Journal, JournalError
from services.executor.limiter import process_limiter
from services.executor.netzero import NetZeroClient, NetZeroError
from services.executor.rules import grid_unsafe
from services.executor.seed_import import wait_while_seed
from services.executor.translate import diff, restore_config
from shared.bus import Bus, Incoming
from shared.clock import Clock
from shared.ha import entity, register_discovery
from shared.models import Heartbeat, WatchdogReport
from shared.runner import ServiceContext, run_service
from shared.topics import EXECUTOR_HEARTBEAT, WATCHDOG_REPORT


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
        self.started_mono = clock.monotonic()
        self.last_heartbeat: datetime | None = None  # its wall time, for the reports
        self.last_heartbeat_mono: float | None = None  # when it was sent, on our monotonic clock
        self.lease_over_since: tuple[datetime, float] | None = None  # (lease_until, monotonic when first seen over)
        self.last_state: str | None = None
        self.restored_unrecorded: str | None = None  # the journal's forced entry restored but not cleared
        self._lock = threading.Lock()

    def on_heartbeat(self, msg: Incoming[Heartbeat]) -> None:
        hb = msg.model
        if hb is None:
            return
        now, mono = self.clock.now(), self.clock.monotonic()
        # A live heartbeat was sent just now. A retained one (found at our start) is as old as its wall time says,
        # the one comparison of wall times from two processes left; one from the future (our clock stepped back
        # since) counts as sent now.
        age = max(0.0, (now - hb.generated_at).total_seconds()) if msg.retain else 0.0
        sent = mono - age
        with self._lock:
            if self.last_heartbeat_mono is None or sent > self.last_heartbeat_mono:
                self.last_heartbeat_mono = sent
                self.last_heartbeat = min(hb.generated_at, now)

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
        now, mono = self.clock.now(), self.clock.monotonic()
        timeout = self.s.watchdog_timeout_s
        forced = self.journal.forced()
        if forced is None:
            self.lease_over_since = None
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
            silent = mono - (self.last_heartbeat_mono if self.last_heartbeat_mono is not None else self.started_mono)
        silent_too_long = silent >= timeout
        lease_over = self._lease_over_for(forced.lease_until, now, mono) >= timeout
        if not silent_too_long and not lease_over:
            self.report("watching", f"forced state leased until {forced.lease_until.isoformat()}")
            return "watching"
        why = (
            f"no executor heartbeat since {last.isoformat()}"
            if silent_too_long
            else "the forced state's lease is long over"
        )
        return self.restore(why)

    def _lease_over_for(self, lease_until: datetime, now: datetime, mono: float) -> float:
        """Seconds (monotonic) since a check first found this lease over; 0 while it is not. Not the wall-clock
        overrun: after a step forward of hours every lease looks hours over, and the executor renews it within
        seconds."""
        if now < lease_until:
            self.lease_over_since = None
            return 0.0
        if self.lease_over_since is None or self.lease_over_since[0] != lease_until:
            self.lease_over_since = (lease_until, mono)
        return mono - self.lease_over_since[1]

    def restore(self, why: str) -> str:
        baseline = self.journal.baseline()
        if baseline is None:
            self.report("restore_failed", f"{why}; but the journal has no baseline to restore")
            return "restore_failed"
        forced = self.journal.forced_raw()
        try:
            status = self.client.get()
            if (unsafe := grid_unsafe(status)) is not None:
                self.report("watching", f"{why}; {unsafe}: waiting, touching nothing")
                return "waiting"
            # The whole baseline is sent even when the read shows it already: a forcing command of the executor's
            # may still be on its way to the gateway, and the last command sent is the one that sticks.
            change = restore_config(baseline, status.config)
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


def discovery(bus: Bus) -> list[tuple[str, dict[str, Any]]]:
    """Home Assistant: what the watchdog did last (besides its connectivity sensor)."""
    return [
        entity(
            bus, "sensor", "watchdog_state", "Watchdog", WATCHDOG_REPORT, device_class="enum",
            options=["watching", "restored", "restore_failed", "idle"], value_template="{{ value_json.state }}",
            json_attributes_topic=WATCHDOG_REPORT,
            json_attributes_template='{"detail": {{ value_json.detail | tojson }}}', icon="mdi:shield-check",
        )
    ]  # fmt: skip


def wire(ctx: ServiceContext[WatchdogSettings]) -> None:
    wait_while_seed(ctx.data_path(DB_NAME), 30.0, ctx.log)  # the executor moves the original app's database aside
    journal = Journal(ctx.data_path(DB_NAME))
    dog = Watchdog(ctx.settings, ctx.clock, ctx.bus, journal, build_client(ctx.settings, ctx.clock), ctx.log)
    ctx.bus.listen(EXECUTOR_HEARTBEAT, dog.on_heartbeat)
    register_discovery(ctx.bus, lambda: discovery(ctx.bus))
    ctx.every(ctx.settings.watchdog_check_s, dog.check, name="watch", run_now=False)


if __name__ == "__main__":
    raise SystemExit(run_service("watchdog", WatchdogSettings, wire))
