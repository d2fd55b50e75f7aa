"""The dashboard's own history in SQLite (``dashboard.db``), so charts and the decision log survive restarts.

Written from the bus worker thread, read from web request threads: one connection behind a lock, WAL mode.
Rows are keyed by their natural ids (observation time, slot start, decision id), so a retained message seen
again after a reconnect or restart does not duplicate anything.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.models import AppliedDecision, BatteryState, RateSeries
from shared.sqlite import open_store

SCHEMA = """
CREATE TABLE IF NOT EXISTS latest (
    topic TEXT PRIMARY KEY, payload BLOB NOT NULL, received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS battery (
    observed_at TEXT PRIMARY KEY, soc_pct REAL, battery_power_w REAL, grid_power_w REAL,
    solar_power_w REAL, load_power_w REAL
);
CREATE TABLE IF NOT EXISTS prices (slot_start TEXT PRIMARY KEY, value_inc_vat_gbp REAL NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (
    decision_id TEXT PRIMARY KEY, generated_at TEXT NOT NULL, doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_time ON decisions (generated_at);
CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY, email TEXT NOT NULL, created_s REAL NOT NULL);
"""


@dataclass(frozen=True)
class BatteryRow:
    observed_at: str
    soc_pct: float | None
    battery_power_w: float | None
    grid_power_w: float | None
    solar_power_w: float | None
    load_power_w: float | None


class Store:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_store(path, SCHEMA, renamed_columns=(("prices", "value_inc_vat", "value_inc_vat_gbp"),))
        self._closed = False

    def close(self) -> None:
        """At stop: closing checkpoints the write-ahead log into the file (a store left with its ``-wal`` would open
        read-only on a read-only data directory instead of refusing to start). A message still arriving is not kept."""
        with self._lock:
            self._closed = True
            self._db.close()

    # ------------------------------------------------------------------ writes (bus worker thread)

    def save_latest(self, topic: str, payload: bytes, received_at: datetime) -> None:
        with self._lock:
            if self._closed:
                return
            if payload:
                self._db.execute(
                    "INSERT OR REPLACE INTO latest VALUES (?, ?, ?)", (topic, payload, received_at.isoformat())
                )
            else:
                self._db.execute("DELETE FROM latest WHERE topic = ?", (topic,))

    def record_battery(self, state: BatteryState) -> None:
        with self._lock:
            if self._closed:
                return
            self._db.execute(
                "INSERT OR REPLACE INTO battery VALUES (?, ?, ?, ?, ?, ?)",
                (
                    state.observed_at.isoformat(),
                    state.soc_pct,
                    state.battery_power_w,
                    state.grid_power_w,
                    state.solar_power_w,
                    state.load_power_w,
                ),
            )

    def record_rates(self, series: RateSeries) -> None:
        if series.direction != "import":
            return
        with self._lock:
            if self._closed:
                return
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR REPLACE INTO prices VALUES (?, ?)",
                    [(r.start.isoformat(), r.value_inc_vat) for r in series.rates],
                )

    def record_decision(self, decision: AppliedDecision) -> None:
        with self._lock:
            if self._closed:
                return
            self._db.execute(
                "INSERT OR IGNORE INTO decisions VALUES (?, ?, ?)",
                (decision.decision_id, decision.generated_at.isoformat(), decision.model_dump_json()),
            )

    def prune(self, before: datetime) -> None:
        cut = before.isoformat()
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM battery WHERE observed_at < ?", (cut,))
            self._db.execute("DELETE FROM prices WHERE slot_start < ?", (cut,))
            self._db.execute("DELETE FROM decisions WHERE generated_at < ?", (cut,))

    # ------------------------------------------------------------------ login sessions (web threads)
    # The cookie says who; this table says whether that login still stands: logout deletes the row, so a cookie
    # copied before it is worth nothing afterwards, across restarts too. Times are real epoch seconds.

    def session_add(self, sid: str, email: str, created_s: float) -> None:
        with self._lock:
            if not self._closed:
                self._db.execute("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?)", (sid, email, created_s))

    def session_alive(self, sid: str, after_s: float) -> bool:
        with self._lock:
            if self._closed:
                return False
            row = self._db.execute("SELECT 1 FROM sessions WHERE sid = ? AND created_s > ?", (sid, after_s)).fetchone()
        return row is not None

    def session_drop(self, sid: str) -> None:
        with self._lock:
            if not self._closed:
                self._db.execute("DELETE FROM sessions WHERE sid = ?", (sid,))

    def sessions_prune(self, before_s: float) -> None:
        with self._lock:
            if not self._closed:
                self._db.execute("DELETE FROM sessions WHERE created_s <= ?", (before_s,))

    # ------------------------------------------------------------------ reads (web threads)

    def latest(self) -> list[tuple[str, bytes, str]]:
        with self._lock:
            return list(self._db.execute("SELECT topic, payload, received_at FROM latest"))

    def battery_between(self, start: datetime, end: datetime) -> list[BatteryRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM battery WHERE observed_at >= ? AND observed_at < ? ORDER BY observed_at",
                (start.isoformat(), end.isoformat()),
            ).fetchall()
        return [BatteryRow(*r) for r in rows]

    def prices_between(self, start: datetime, end: datetime) -> list[tuple[str, float]]:
        with self._lock:
            return self._db.execute(
                "SELECT slot_start, value_inc_vat_gbp FROM prices WHERE slot_start >= ? AND slot_start < ? "
                "ORDER BY slot_start",
                (start.isoformat(), end.isoformat()),
            ).fetchall()

    def decisions_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT doc FROM decisions WHERE generated_at >= ? AND generated_at < ? ORDER BY generated_at",
                (start.isoformat(), end.isoformat()),
            ).fetchall()
        return [json.loads(r[0]) for r in rows]
