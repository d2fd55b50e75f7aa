"""What the user tells the executor, and keeps across restarts: the mode (a manual one with its lease), dry-run,
an override, and the manual windows (``windows.py``: one covering now is asked for like an override). Mode and
dry-run are saved in the journal; when it refuses they still apply at once and are saved once it can write.

An override is kept in memory only: after a restart none is in force, and ``executor/override`` (retained) says so
on every (re)connect, so no client ever sees an override that is no longer there."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.executor.config import ExecutorSettings
from services.executor.decide import Override
from services.executor.journal import Journal
from services.executor.records import Records
from services.executor.windows import WindowBoard
from shared.bus import Bus, CommandError
from shared.clock import Clock
from shared.models import ExecutorMode, OverrideCommand, OverrideState
from shared.override_text import override_line
from shared.plain import bool_text, parse_bool

MAX_OVERRIDE = timedelta(hours=24)


def override_state(override: Override | None, now: datetime, tz: ZoneInfo) -> OverrideState:
    """What ``executor/override`` carries: the override in force, with one plain line in the system's zone
    ("Charge until 05:30 (to 90 %)"; the weekday too when it ends on another day), or none."""
    if override is None:
        return OverrideState(generated_at=now)
    line = override_line(override.action, override.until, override.target_soc_pct, tz, now)
    return OverrideState(
        generated_at=now,
        action=override.action,
        until=override.until,
        target_soc_pct=override.target_soc_pct,
        request_id=override.request_id or None,
        summary=line[0].upper() + line[1:],
    )


class Controls:
    """Mode, dry-run and override. Their state is guarded by ``lock``, the executor's decision lock: the bus
    handlers here take it, and the decision loop holds it while it reads or expires them, so a setting never
    changes in the middle of a decision."""

    def __init__(
        self,
        settings: ExecutorSettings,
        clock: Clock,
        bus: Bus,
        records: Records,
        lock: threading.RLock,
        wake: Callable[[], None],
        log: Any,
        windows: WindowBoard | None = None,
    ) -> None:
        self.s = settings
        self.clock = clock
        self.bus = bus
        self.records = records
        self.journal: Journal = records.journal
        self.lock = lock
        self.wake = wake
        self.log = log
        self.windows = windows
        journal = self.journal
        self.mode = ExecutorMode(journal.get("mode") or ExecutorMode.AUTO)
        until = journal.get("mode_until")
        self.mode_until = datetime.fromisoformat(until) if until else None  # a manual mode's lease
        stored_dry = journal.get("dry_run")
        self.dry_run = parse_bool(stored_dry) if stored_dry else settings.dry_run
        self.override: Override | None = None

    # ------------------------------------------------------------------ bus commands (bus thread)

    def on_mode_set(self, text: str) -> None:
        try:
            mode = ExecutorMode(text.lower())
        except ValueError:
            self.publish_mode()  # answer with the unchanged state so a UI snaps back
            raise ValueError(f"unknown mode {text[:20]!r}: use {', '.join(m.value for m in ExecutorMode)}") from None
        with self.lock:
            self.mode = mode
            manual = mode in (ExecutorMode.FORCE_CHARGE, ExecutorMode.HOLD)
            self.mode_until = self.clock.now() + timedelta(seconds=self.s.manual_lease_s) if manual else None
            self.persist()
        self.log.info("mode set", mode=mode.value, until=self.mode_until)
        self.publish_mode()
        self.wake()

    def on_dry_run_set(self, text: str) -> None:
        try:
            value = parse_bool(text)
        except ValueError:
            self.publish_dry_run()
            raise
        with self.lock:
            self.dry_run = value
            self.persist()
        self.log.info("dry-run set", dry_run=value)
        self.publish_dry_run()
        self.wake()

    def on_override(self, cmd: OverrideCommand) -> dict[str, Any]:
        now = self.clock.now()
        if cmd.action is None:
            with self.lock:
                self.override = None
                self.records.save(lambda: self.journal.override(now, cmd.request_id, None, None, None, "cancelled"))
            self.publish_override()
            self.wake()
            return {"override": None}
        assert cmd.until is not None
        action = cmd.action.value

        def note(status: str) -> bool:
            return self.records.save(
                lambda: self.journal.override(now, cmd.request_id, action, cmd.until, cmd.target_soc_pct, status)
            )

        refusal = None
        if cmd.until <= now:
            refusal = f"override ends in the past ({cmd.until.isoformat()})"
        elif cmd.until - now > MAX_OVERRIDE:
            refusal = "an override may last at most 24 hours"
        with self.lock:
            if refusal is not None:
                note("refused")
                raise CommandError(refusal)
            self.override = Override(cmd.action, cmd.until, cmd.target_soc_pct, cmd.request_id)
            note("accepted")
        self.publish_override()
        self.wake()
        return {"action": cmd.action.value, "until": cmd.until.isoformat(), "note": "the safety rules still apply"}

    # ------------------------------------------------------------------ the decision loop (under the lock)

    def persist(self) -> None:
        """Save mode and dry-run (as they are when written)."""
        self.records.persist("settings", self._write)

    def _write(self) -> None:
        self.journal.put("mode", self.mode.value)
        self.journal.put("mode_until", self.mode_until.isoformat() if self.mode_until else None)
        self.journal.put("dry_run", bool_text(self.dry_run))

    def expire(self, now: datetime) -> None:
        """A manual mode's lease or an override that is over ends; so does a manual window."""
        if self.mode_until is not None and now >= self.mode_until:
            self.log.info("manual mode lease over: back to auto", mode=self.mode.value)
            self.mode, self.mode_until = ExecutorMode.AUTO, None
            self.persist()
            self.publish_mode()
        if self.override is not None and now >= self.override.until:
            self.log.info("override over", action=self.override.action.value)
            self.override = None
            self.publish_override()
        if self.windows is not None:
            self.windows.expire(now)

    def on_clock_step(self, step: timedelta) -> None:
        """The manual mode's lease (it lasts ``manual_lease_s``) moves with a wall-clock step; times from outside
        (an override's end) stay where they are."""
        if self.mode_until is not None:
            self.mode_until += step
            self.persist()

    # ------------------------------------------------------------------ publishing

    def publish_mode(self) -> None:
        self.bus.publish_state(self.bus.topics.executor_mode, self.mode.value)

    def publish_override(self) -> None:
        """The override in force now (or none): retained, so a dashboard or Home Assistant that connects later
        reads it, and replaced as soon as it changes (a restart starts with none)."""
        with self.lock:
            state = override_state(self.override, self.clock.now(), self.s.tz)
        self.bus.publish_state(self.bus.topics.executor_override_state, state)

    def publish_dry_run(self) -> None:
        self.bus.publish_state(self.bus.topics.executor_dry_run, bool_text(self.dry_run))
