"""The executor's journal: SQLite in WAL mode at ``data/Force_Charging.db`` (the seed app's file name).

It holds decisions, commands, read-backs, the user's baseline configuration, overrides and the executor's own
settings (mode, dry-run) and the forced-state lease, so a restart (or the watchdog, a separate process reading
the same file) knows what was done. A command is recorded *before* it is sent (write-ahead), with
``synchronous=FULL`` so a committed row survives a crash.

A write that SQLite refuses (disk full, read-only file system, I/O error, locked for too long) raises
``JournalError``: the executor then sends no forcing command (see ``Executor``). Reads are not affected.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from shared.models import AppliedDecision, PowerwallConfig
from shared.sqlite import cannot_write, open_store, rollback_quietly

DB_NAME = "Force_Charging.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    plan_id TEXT,
    slot_start TEXT,
    mode TEXT NOT NULL,
    dry_run INTEGER NOT NULL,
    requested_action TEXT,
    action TEXT,
    outcome TEXT NOT NULL,
    rules TEXT NOT NULL,
    desired TEXT,
    sent TEXT,
    observed TEXT,
    error TEXT,
    soc_pct REAL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_ts ON decisions(ts);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    decision_id TEXT,
    kind TEXT NOT NULL,            -- decision | restore | watchdog
    sent TEXT NOT NULL,
    status TEXT NOT NULL,          -- pending | ok | mismatch | failed
    error TEXT,
    lease_until TEXT
);
CREATE TABLE IF NOT EXISTS readbacks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    command_id INTEGER,
    observed TEXT NOT NULL,
    matches INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS baseline (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    captured_at TEXT NOT NULL,
    config TEXT NOT NULL,
    found TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS overrides (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    request_id TEXT,
    action TEXT,
    until TEXT,
    target_soc_pct REAL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


def _iso(t: datetime | None) -> str | None:
    return t.astimezone(UTC).isoformat() if t else None


def _dt(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _cfg(config: PowerwallConfig | None) -> str | None:
    return config.model_dump_json() if config is not None else None


class JournalError(Exception):
    """The journal could not be written; ``str()`` names the file and SQLite's reason (e.g. disk full)."""


@dataclass(frozen=True)
class ForcedState:
    """A state of ours is (or may be) on the Powerwall until ``lease_until``."""

    config: PowerwallConfig
    since: datetime
    lease_until: datetime


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        with self._lock:
            self._db = open_store(path, SCHEMA, synchronous="FULL", timeout_s=10.0)

    @classmethod
    def read_only(cls, path: Path) -> Journal:
        """The journal opened only to read it (its directory is read-only, so it cannot be opened as usual).

        ``mode=ro`` reads the WAL too (its ``-wal``/``-shm`` files exist after a crash); after a clean stop they
        are gone and everything is in the main file, which ``immutable=1`` reads without them. Raises
        ``sqlite3.Error`` when there is no readable journal."""
        journal = cls.__new__(cls)
        journal.path, journal._lock, journal._depth = path, threading.RLock(), 0
        uri = Path(path).resolve().as_uri()
        failure: sqlite3.Error | None = None
        for flags in ("mode=ro", "immutable=1"):
            try:
                db = sqlite3.connect(f"{uri}?{flags}", uri=True, check_same_thread=False, isolation_level=None)
                db.execute("SELECT count(*) FROM baseline").fetchone()
            except sqlite3.Error as exc:
                failure = exc
                continue
            journal._db = db
            return journal
        assert failure is not None
        raise failure

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @property
    def changes(self) -> int:
        """Rows changed through this connection so far (a commit that wrote nothing proves nothing)."""
        return self._db.total_changes

    def integrity_ok(self) -> bool:
        with self._lock:
            return self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def _failed(self, exc: sqlite3.OperationalError) -> JournalError:
        """Roll back what SQLite may have left open and say what went wrong (the caller raises it)."""
        if self._depth <= 1:
            rollback_quietly(self._db)
        return JournalError(cannot_write(self.path, exc))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one commit (one fsync); nests, and holds the lock so other threads wait."""
        with self._lock:
            self._depth += 1
            try:
                if self._depth == 1:
                    try:
                        self._db.execute("BEGIN IMMEDIATE")
                    except sqlite3.OperationalError as exc:
                        raise self._failed(exc) from None
                try:
                    yield
                except BaseException:
                    if self._depth == 1:
                        rollback_quietly(self._db)
                    raise
                if self._depth == 1:
                    try:
                        self._db.execute("COMMIT")
                    except sqlite3.OperationalError as exc:
                        raise self._failed(exc) from None
            finally:
                self._depth -= 1

    def _write(self, sql: str, args: tuple[Any, ...]) -> int:
        with self._lock:
            try:
                cur = self._db.execute(sql, args)
            except sqlite3.OperationalError as exc:
                raise self._failed(exc) from None
            return int(cur.lastrowid or 0)

    # -------------------------------------------------------------- key/value (mode, dry-run, forced lease)

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, value: str | None) -> None:
        if value is None:
            self._write("DELETE FROM kv WHERE key = ?", (key,))
        else:
            self._write(
                "INSERT INTO kv(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, value),
            )

    def forced(self) -> ForcedState | None:
        raw = self.get("forced")
        if not raw:
            return None
        doc = json.loads(raw)
        return ForcedState(PowerwallConfig.model_validate(doc["config"]), _dt(doc["since"]), _dt(doc["lease_until"]))

    def set_forced(self, config: PowerwallConfig, since: datetime, lease_until: datetime) -> None:
        doc = {"config": config.model_dump(mode="json"), "since": _iso(since), "lease_until": _iso(lease_until)}
        self.put("forced", json.dumps(doc))

    def clear_forced(self) -> None:
        self.put("forced", None)

    def forced_raw(self) -> str | None:
        return self.get("forced")

    def clear_forced_if(self, expected: str | None) -> bool:
        """Clear the forced state only if it is still ``expected`` (another process may have forced anew)."""
        with self.transaction():
            if self.get("forced") != expected:
                return False
            self.put("forced", None)
            return True

    # -------------------------------------------------------------- baseline

    def baseline(self) -> PowerwallConfig | None:
        with self._lock:
            row = self._db.execute("SELECT config FROM baseline WHERE id = 1").fetchone()
        return PowerwallConfig.model_validate_json(row[0]) if row else None

    def store_baseline(self, config: PowerwallConfig, found: PowerwallConfig, at: datetime) -> None:
        self._write(
            "INSERT INTO baseline(id, captured_at, config, found) VALUES(1, ?, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET captured_at=excluded.captured_at, config=excluded.config,"
            " found=excluded.found",
            (_iso(at), _cfg(config), _cfg(found)),
        )

    # -------------------------------------------------------------- commands and read-backs

    def command(
        self,
        at: datetime,
        kind: str,
        sent: PowerwallConfig,
        decision_id: str | None,
        lease_until: datetime | None = None,
    ) -> int:
        """Record a command as pending, before it is sent."""
        return self._write(
            "INSERT INTO commands(ts, decision_id, kind, sent, status, lease_until) VALUES(?, ?, ?, ?, 'pending', ?)",
            (_iso(at), decision_id, kind, _cfg(sent), _iso(lease_until)),
        )

    def command_done(self, command_id: int, status: str, error: str | None = None) -> None:
        self._write("UPDATE commands SET status = ?, error = ? WHERE id = ?", (status, error, command_id))

    def readback(self, at: datetime, command_id: int | None, observed: PowerwallConfig, matches: bool) -> None:
        self._write(
            "INSERT INTO readbacks(ts, command_id, observed, matches) VALUES(?, ?, ?, ?)",
            (_iso(at), command_id, _cfg(observed), int(matches)),
        )

    def commands(self, kind: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT id, ts, decision_id, kind, sent, status, error FROM commands"
        args: tuple[Any, ...] = ()
        if kind:
            sql += " WHERE kind = ?"
            args = (kind,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", args).fetchall()
        keys = ("id", "ts", "decision_id", "kind", "sent", "status", "error")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # -------------------------------------------------------------- decisions and overrides

    def decision(self, d: AppliedDecision) -> None:
        self._write(
            "INSERT OR REPLACE INTO decisions(decision_id, ts, plan_id, slot_start, mode, dry_run, requested_action,"
            " action, outcome, rules, desired, sent, observed, error, soc_pct, body)"
            " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                d.decision_id,
                _iso(d.generated_at),
                d.plan_id,
                _iso(d.slot_start),
                d.mode.value,
                int(d.dry_run),
                d.requested_action.value if d.requested_action else None,
                d.action.value if d.action else None,
                d.outcome,
                json.dumps([r.model_dump() for r in d.rules]),
                _cfg(d.desired),
                _cfg(d.sent),
                _cfg(d.observed),
                d.error,
                d.soc_pct,
                d.model_dump_json(),
            ),
        )

    def decisions(self, since: datetime | None = None) -> list[AppliedDecision]:
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM decisions WHERE ts >= ? ORDER BY ts", (_iso(since) or "",)
            ).fetchall()
        return [AppliedDecision.model_validate_json(r[0]) for r in rows]

    def override(
        self,
        at: datetime,
        request_id: str,
        action: str | None,
        until: datetime | None,
        target: float | None,
        status: str,
    ) -> None:
        self._write(
            "INSERT INTO overrides(ts, request_id, action, until, target_soc_pct, status) VALUES(?, ?, ?, ?, ?, ?)",
            (_iso(at), request_id, action, _iso(until), target, status),
        )

    # -------------------------------------------------------------- export

    def export_csv(self, out: TextIO, since: datetime | None = None) -> int:
        """Write the decision history as CSV; returns the number of rows."""
        writer = csv.writer(out)
        writer.writerow(
            [
                "generated_at",
                "decision_id",
                "mode",
                "dry_run",
                "plan_id",
                "slot_start",
                "requested_action",
                "action",
                "outcome",
                "rules",
                "desired",
                "sent",
                "observed",
                "soc_pct",
                "error",
            ]
        )
        n = 0
        for d in self.decisions(since):
            fired = "; ".join(
                f"{r.rule}:{r.verdict}" + (f" ({r.detail})" if r.detail else "") for r in d.rules if r.verdict != "pass"
            )
            writer.writerow(
                [
                    _iso(d.generated_at),
                    d.decision_id,
                    d.mode.value,
                    d.dry_run,
                    d.plan_id or "",
                    _iso(d.slot_start) or "",
                    d.requested_action.value if d.requested_action else "",
                    d.action.value if d.action else "",
                    d.outcome,
                    fired,
                    _cfg(d.desired) or "",
                    _cfg(d.sent) or "",
                    _cfg(d.observed) or "",
                    "" if d.soc_pct is None else f"{d.soc_pct:.1f}",
                    d.error or "",
                ]
            )
            n += 1
        return n
