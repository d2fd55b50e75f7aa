"""Manual windows: future periods a person fixed by hand (charge, or hold), kept across restarts.

The store is a table of its own (``manual_windows``) in the executor's journal file, on its own connection, so
the journal's schema and the windows' never touch. ``check_new`` is the pure admission test: a window must end
in the future, last at most a day, start within two weeks, not overlap another, and a charge window must keep out
of the peak window (``shared.peak``; the executor would refuse to charge there anyway: refusing at once tells the
person why).
Windows whose end has passed expire (they stay in the table, marked, for the record).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from shared.bus import CommandError
from shared.models import (
    MAX_WINDOWS,
    ManualWindow,
    RuleOutcome,
    WindowAddCommand,
    WindowDeleteCommand,
    WindowList,
)
from shared.peak import PeakWindow
from shared.sqlite import open_store
from shared.topics import EXECUTOR_WINDOWS

MAX_LENGTH = timedelta(hours=24)
MAX_AHEAD = timedelta(days=14)

SCHEMA = """
CREATE TABLE IF NOT EXISTS manual_windows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    start TEXT NOT NULL,
    end TEXT NOT NULL,
    action TEXT NOT NULL,
    target_soc_pct REAL,
    source TEXT NOT NULL,
    origin TEXT,
    created_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',   -- pending | deleted | expired
    closed_at TEXT
);
CREATE INDEX IF NOT EXISTS manual_windows_state ON manual_windows(state, start);
"""


class WindowRefused(ValueError):
    """A window that may not be added; ``str()`` says why, for the command's answer."""


def check_new(
    start: datetime,
    end: datetime,
    action: str,
    target_soc_pct: float | None,
    pending: Iterable[ManualWindow],
    now: datetime,
    peak: PeakWindow,
    tz: ZoneInfo,
    target_bounds: tuple[float, float] = (0.0, 100.0),
) -> None:
    """Raise ``WindowRefused`` with the reason when the window may not be added."""
    when = f"{start.astimezone(tz):%a %d %b %H:%M}–{end.astimezone(tz):%H:%M}"
    if end <= start:
        raise WindowRefused(f"the window {when} ends before it starts")
    if end <= now:
        raise WindowRefused(f"the window {when} is over already")
    if end - start > MAX_LENGTH:
        raise WindowRefused("a window may last at most 24 hours")
    if start - now > MAX_AHEAD:
        raise WindowRefused("a window may start at most 14 days ahead")
    if action not in ("charge", "hold"):
        raise WindowRefused(f"unknown action {action!r}: use charge or hold")
    if target_soc_pct is not None:
        lo, hi = target_bounds
        if not lo <= target_soc_pct <= hi:
            raise WindowRefused(f"target SOC {target_soc_pct:g}% is outside the allowed {lo:g}–{hi:g}%")
    if action == "charge":
        hit = peak.first_overlap(start, end)
        if hit is not None:
            raise WindowRefused(
                f"the charge window {when} overlaps the peak {hit[0].astimezone(tz):%H:%M}–"
                f"{hit[1].astimezone(tz):%H:%M} local, when grid charging is never allowed"
            )
    existing = list(pending)
    for w in existing:
        if w.start < end and start < w.end:
            raise WindowRefused(
                f"the window {when} overlaps window {w.window_id} ({w.start.astimezone(tz):%a %d %b %H:%M}–"
                f"{w.end.astimezone(tz):%H:%M})"
            )
    if len(existing) >= MAX_WINDOWS:
        raise WindowRefused(f"at most {MAX_WINDOWS} pending windows")


def window_outcome(window: ManualWindow, tz: ZoneInfo) -> RuleOutcome:
    """How a decision says a manual window, not the plan, asked for its action (the rules after it still apply)."""
    target = (
        f" to {window.target_soc_pct:g}%" if window.action == "charge" and window.target_soc_pct is not None else ""
    )
    detail = f"manual window {window.window_id}: {window.action}{target} until {window.end.astimezone(tz):%H:%M}"
    return RuleOutcome(rule="manual_window", verdict="changed", detail=detail)


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


class WindowStore:
    """The pending windows on disk. Thread-safe; every change is one committed statement."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = open_store(path, SCHEMA, synchronous="FULL", timeout_s=10.0)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def pending(self) -> list[ManualWindow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, start, end, action, target_soc_pct, source, origin, created_at FROM manual_windows "
                "WHERE state = 'pending' ORDER BY start, id"
            ).fetchall()
        return [
            ManualWindow(
                window_id=r[0],
                start=datetime.fromisoformat(r[1]),
                end=datetime.fromisoformat(r[2]),
                action=r[3],
                target_soc_pct=r[4],
                source=r[5],
                origin=r[6],
                created_at=datetime.fromisoformat(r[7]),
            )
            for r in rows
        ]

    def add(
        self,
        start: datetime,
        end: datetime,
        action: str,
        target_soc_pct: float | None,
        source: str,
        now: datetime,
        origin: str | None = None,
    ) -> ManualWindow:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO manual_windows(start, end, action, target_soc_pct, source, origin, created_at) "
                "VALUES(?, ?, ?, ?, ?, ?, ?)",
                (_iso(start), _iso(end), action, target_soc_pct, source, origin, _iso(now)),
            )
            window_id = int(cur.lastrowid or 0)
        return ManualWindow(
            window_id=window_id,
            start=start,
            end=end,
            action=action,  # type: ignore[arg-type]
            target_soc_pct=target_soc_pct,
            source=source,
            origin=origin,
            created_at=now,
        )

    def delete(self, window_id: int, now: datetime) -> bool:
        """Mark a pending window deleted; False when there is no such pending window."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE manual_windows SET state = 'deleted', closed_at = ? WHERE id = ? AND state = 'pending'",
                (_iso(now), window_id),
            )
            return cur.rowcount > 0

    def expire(self, now: datetime) -> list[int]:
        """Mark every pending window whose end has passed as expired; returns their ids."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, end FROM manual_windows WHERE state = 'pending'",
            ).fetchall()
            gone = [r[0] for r in rows if datetime.fromisoformat(r[1]) <= now]
            if gone:
                self._db.executemany(
                    "UPDATE manual_windows SET state = 'expired', closed_at = ? WHERE id = ?",
                    [(_iso(now), i) for i in gone],
                )
        return gone

    def has_origin(self, origin: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM manual_windows WHERE origin = ?", (origin,)).fetchone() is not None


class WindowBoard:
    """The executor's side of the windows: the ``executor/windows`` list (retained) and the add and delete
    commands (answered like every command), over the store; ``active`` is what ``decide`` sees."""

    def __init__(
        self,
        store: WindowStore,
        bus: Any,
        clock: Any,
        peak: PeakWindow,
        tz: ZoneInfo,
        target_bounds: tuple[float, float],
        log: Any,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self.peak = peak
        self.tz = tz
        self.bounds = target_bounds
        self.log = log
        self.wake = wake
        self._lock = threading.Lock()
        self._pending = store.pending()

    def publish(self) -> None:
        with self._lock:
            windows = list(self._pending)
        self.bus.publish_state(EXECUTOR_WINDOWS, WindowList(generated_at=self.clock.now(), windows=windows))

    def _changed(self) -> None:
        self._pending = self.store.pending()

    def on_add(self, cmd: WindowAddCommand) -> dict[str, Any]:
        now = self.clock.now()
        target, note = cmd.target_soc_pct, "the safety rules still apply"
        if target is not None and not self.bounds[0] <= target <= self.bounds[1]:
            # The SOC limits are safety values: a target outside them is brought inside, and the answer says so.
            lo, hi = self.bounds
            target = min(max(target, lo), hi)
            note = f"target {cmd.target_soc_pct:g}% becomes {target:g}% (the allowed {lo:g}–{hi:g}%); " + note
        with self._lock:
            try:
                check_new(cmd.start, cmd.end, cmd.action, target, self._pending, now, self.peak, self.tz)
            except WindowRefused as exc:
                raise CommandError(str(exc)) from None
            try:
                window = self.store.add(cmd.start, cmd.end, cmd.action, target, cmd.source, now)
            except sqlite3.Error as exc:
                raise CommandError(f"the window could not be saved: {exc}") from None
            self._changed()
        self.log.info(
            "manual window added",
            **window.model_dump(mode="json", include={"window_id", "action", "start", "end", "target_soc_pct"}),
        )
        self.publish()
        self.wake()
        return {"window": window.model_dump(mode="json"), "note": note}

    def on_delete(self, cmd: WindowDeleteCommand) -> dict[str, Any]:
        now = self.clock.now()
        with self._lock:
            try:
                found = self.store.delete(cmd.window_id, now)
            except sqlite3.Error as exc:
                raise CommandError(f"the window could not be deleted: {exc}") from None
            if not found:
                raise CommandError(f"no pending window {cmd.window_id}")
            self._changed()
        self.log.info("manual window deleted", window_id=cmd.window_id)
        self.publish()
        self.wake()
        return {"window_id": cmd.window_id, "deleted": True}

    def expire(self, now: datetime) -> None:
        """Windows whose end has passed leave the list (each decision calls this)."""
        with self._lock:
            if not any(w.end <= now for w in self._pending):
                return
            try:
                gone = self.store.expire(now)
            except sqlite3.Error as exc:
                self.log.warning("expired windows not marked in the store", error=str(exc))
                gone = [w.window_id for w in self._pending if w.end <= now]
                self._pending = [w for w in self._pending if w.end > now]
            else:
                self._changed()
        if gone:
            self.log.info("manual windows over", window_ids=gone)
            self.publish()

    def active(self, now: datetime) -> ManualWindow | None:
        with self._lock:
            return next((w for w in self._pending if w.covers(now)), None)
