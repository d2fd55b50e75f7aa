"""The last good rates on disk (SQLite ``pricing.db``), so a restart without network still has prices.

One row per (direction, slot start); a newer fetch overwrites a slot by its ``valid_from``. Only validated
batches are written, in one transaction, so a failed or rejected fetch never loses what is stored. A write SQLite
refuses (disk full, read-only, I/O error) raises ``StoreError`` and leaves the stored rates as they were.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

from shared.models import SLOT, Rate
from shared.sqlite import cannot_write, open_store, rollback_quietly

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rates (
    direction         TEXT NOT NULL,
    start_utc         TEXT NOT NULL,
    value_inc_vat_gbp REAL NOT NULL,  -- GBP/kWh with VAT (Octopus sends pence)
    tariff_code       TEXT NOT NULL,
    fetched_at        TEXT NOT NULL,
    PRIMARY KEY (direction, start_utc)
);
"""


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class StoreError(Exception):
    """The store refused a write; ``str()`` names the file and SQLite's reason (e.g. disk full)."""


class StoredRates:
    def __init__(self, tariff_code: str, fetched_at: datetime, rates: list[Rate]) -> None:
        self.tariff_code = tariff_code
        self.fetched_at = fetched_at
        self.rates = rates


class RateStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = open_store(path, _SCHEMA, renamed_columns=(("rates", "value_gbp", "value_inc_vat_gbp"),))

    def save(self, direction: str, tariff_code: str, fetched_at: datetime, rates: list[Rate]) -> None:
        rows = [(direction, _iso(r.start), r.value_inc_vat, tariff_code, _iso(fetched_at)) for r in rates]
        with self._lock:
            try:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO rates (direction, start_utc, value_inc_vat_gbp, tariff_code, fetched_at) "
                    "VALUES (?,?,?,?,?) "
                    "ON CONFLICT (direction, start_utc) DO UPDATE SET value_inc_vat_gbp=excluded.value_inc_vat_gbp, "
                    "tariff_code=excluded.tariff_code, fetched_at=excluded.fetched_at",
                    rows,
                )
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                rollback_quietly(self._db)
                raise StoreError(cannot_write(self.path, exc)) from None
            except BaseException:
                rollback_quietly(self._db)
                raise

    def prune(self, before: datetime) -> int:
        """Forget slots that start before ``before`` (the store only needs recent days)."""
        with self._lock:
            try:
                cur = self._db.execute("DELETE FROM rates WHERE start_utc < ?", (_iso(before),))
            except sqlite3.OperationalError as exc:
                raise StoreError(cannot_write(self.path, exc)) from None
        return cur.rowcount

    def load(self, direction: str, since: datetime) -> StoredRates | None:
        """Stored slots starting at or after ``since`` with the tariff and fetch time of the newest write."""
        with self._lock:
            rows = self._db.execute(
                "SELECT start_utc, value_inc_vat_gbp, tariff_code, fetched_at FROM rates "
                "WHERE direction = ? AND start_utc >= ? ORDER BY start_utc",
                (direction, _iso(since)),
            ).fetchall()
        if not rows:
            return None
        newest = max(rows, key=lambda r: r[3])
        rates = [Rate(start=_dt(r[0]), end=_dt(r[0]) + SLOT, value_inc_vat=r[1]) for r in rows]
        return StoredRates(newest[2], _dt(newest[3]), rates)

    def history(self, direction: str, tariff_code: str, since: datetime) -> list[tuple[datetime, float]]:
        """Stored (slot start, GBP/kWh) of one tariff from ``since`` on, oldest first: what the price estimate
        learns from (another tariff's slots are not its history)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT start_utc, value_inc_vat_gbp FROM rates "
                "WHERE direction = ? AND tariff_code = ? AND start_utc >= ? ORDER BY start_utc",
                (direction, tariff_code, _iso(since)),
            ).fetchall()
        return [(_dt(r[0]), float(r[1])) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
