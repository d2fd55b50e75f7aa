"""The accounting job's own SQLite history (``accounting.db``): raw observations, rates, plan slots, summaries.

Raw rows are pruned after ``keep_days``; daily summaries are kept for ever (they are the history the dashboard's
"since install" figure comes from).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from services.accounting.daily import PlannedSlot, Sample
from shared.models import DailySummary
from shared.sqlite import open_store

SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    observed_at TEXT PRIMARY KEY, grid_w REAL, load_w REAL, pv_w REAL, soc_pct REAL, capacity_kwh REAL
);
CREATE TABLE IF NOT EXISTS rates (direction TEXT, start TEXT, value_inc_vat_gbp REAL, PRIMARY KEY (direction, start));
CREATE TABLE IF NOT EXISTS plan_slots (
    plan_id TEXT, generated_at TEXT, start TEXT, cost_gbp REAL, PRIMARY KEY (plan_id, start)
);
CREATE INDEX IF NOT EXISTS plan_slots_start ON plan_slots (start);
CREATE TABLE IF NOT EXISTS summaries (day TEXT PRIMARY KEY, json TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS plan_values (plan_id TEXT PRIMARY KEY, generated_at TEXT, gbp_per_kwh REAL);
"""


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class AccountingStore:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        with self._lock:
            self._db = open_store(
                path, SCHEMA, synchronous="FULL", renamed_columns=(("rates", "price", "value_inc_vat_gbp"),)
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---------------------------------------------------------------- writes

    def add_sample(self, s: Sample) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO samples VALUES (?, ?, ?, ?, ?, ?)",
                (_iso(s.at), s.grid_w, s.load_w, s.pv_w, s.soc_pct, s.capacity_kwh),
            )

    def add_rates(self, direction: str, rates: Iterable[tuple[datetime, float]]) -> int:
        rows = [(direction, _iso(start), price_gbp) for start, price_gbp in rates]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO rates VALUES (?, ?, ?)", rows)
        return len(rows)

    def add_plan(self, plan_id: str, generated_at: datetime, slots: Iterable[tuple[datetime, float]]) -> None:
        rows = [(plan_id, _iso(generated_at), _iso(start), cost) for start, cost in slots]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO plan_slots VALUES (?, ?, ?, ?)", rows)

    def add_plan_value(self, plan_id: str, generated_at: datetime, gbp_per_kwh: float) -> None:
        """A plan's end value per stored kWh (``Plan.end_value_gbp_per_kwh``): how the day's stored energy is valued."""
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO plan_values VALUES (?, ?, ?)", (plan_id, _iso(generated_at), gbp_per_kwh)
            )

    def plan_value(self, start: datetime, end: datetime) -> float | None:
        """The end value per kWh of the last plan made in ``[start, end)``."""
        with self._lock:
            row = self._db.execute(
                "SELECT gbp_per_kwh FROM plan_values WHERE generated_at >= ? AND generated_at < ? "
                "ORDER BY generated_at DESC LIMIT 1",
                (_iso(start), _iso(end)),
            ).fetchone()
        return None if row is None else float(row[0])

    def save_summary(self, summary: DailySummary) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO summaries VALUES (?, ?)", (summary.date.isoformat(), summary.model_dump_json())
            )

    def prune(self, before: datetime) -> None:
        cut = _iso(before)
        with self._lock, self._db:
            self._db.execute("DELETE FROM samples WHERE observed_at < ?", (cut,))
            self._db.execute("DELETE FROM rates WHERE start < ?", (cut,))
            self._db.execute("DELETE FROM plan_slots WHERE start < ?", (cut,))
            self._db.execute("DELETE FROM plan_values WHERE generated_at < ?", (cut,))

    # ---------------------------------------------------------------- reads

    def samples(self, start: datetime, end: datetime) -> list[Sample]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM samples WHERE observed_at >= ? AND observed_at < ? ORDER BY observed_at",
                (_iso(start), _iso(end)),
            ).fetchall()
        return [Sample(_dt(r[0]), *r[1:]) for r in rows]

    def first_sample_at(self) -> datetime | None:
        with self._lock:
            row = self._db.execute("SELECT MIN(observed_at) FROM samples").fetchone()
        return _dt(row[0]) if row and row[0] else None

    def prices(self, direction: str, start: datetime, end: datetime) -> dict[datetime, float]:
        with self._lock:
            rows = self._db.execute(
                "SELECT start, value_inc_vat_gbp FROM rates WHERE direction = ? AND start >= ? AND start < ?",
                (direction, _iso(start), _iso(end)),
            ).fetchall()
        return {_dt(s): p for s, p in rows}

    def planned(self, start: datetime, end: datetime) -> list[PlannedSlot]:
        with self._lock:
            rows = self._db.execute(
                "SELECT generated_at, start, cost_gbp FROM plan_slots WHERE start >= ? AND start < ?",
                (_iso(start), _iso(end)),
            ).fetchall()
        return [PlannedSlot(_dt(g), _dt(s), c) for g, s, c in rows]

    def summary_days(self) -> set[date]:
        with self._lock:
            return {date.fromisoformat(r[0]) for r in self._db.execute("SELECT day FROM summaries")}

    def summaries(self, first: date | None = None, last: date | None = None) -> list[DailySummary]:
        lo = (first or date.min).isoformat()
        hi = (last or date.max).isoformat()
        with self._lock:
            rows = self._db.execute(
                "SELECT json FROM summaries WHERE day >= ? AND day <= ? ORDER BY day", (lo, hi)
            ).fetchall()
        return [DailySummary.model_validate_json(r[0]) for r in rows]

    def latest_summary(self) -> DailySummary | None:
        with self._lock:
            row = self._db.execute("SELECT json FROM summaries ORDER BY day DESC LIMIT 1").fetchone()
        return DailySummary.model_validate_json(row[0]) if row else None


def keep_from(now: datetime, keep_days: int) -> datetime:
    return now - timedelta(days=keep_days)
