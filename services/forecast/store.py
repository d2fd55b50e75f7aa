"""SQLite store ``forecast.db``: observed load and PV per half-hour (from ``battery/state``) and the last good
forecast of each kind (republished at start with its original ``valid_until``)."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.models import BatteryState, EnergyForecast
from shared.slots import slot_start
from shared.sqlite import open_store
from shared.timeseries import SlotSeries

_SCHEMA = """
CREATE TABLE IF NOT EXISTS observed (
    slot_start TEXT PRIMARY KEY,   -- UTC ISO, the half-hour's start
    load_w_sum REAL NOT NULL DEFAULT 0, load_n INTEGER NOT NULL DEFAULT 0,
    pv_w_sum REAL NOT NULL DEFAULT 0, pv_n INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS published (
    kind TEXT PRIMARY KEY,         -- pv | load
    payload TEXT NOT NULL,         -- the EnergyForecast JSON as published
    saved_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pv_forecast (
    slot_start TEXT PRIMARY KEY,   -- the newest uncalibrated model energy for each half-hour (for calibration)
    energy_kwh REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ForecastStore:
    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        with self._lock:
            self._db = open_store(path, _SCHEMA, synchronous="FULL")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------ observations

    def record(self, state: BatteryState) -> bool:
        """Add one ``battery/state`` observation to its half-hour. A repeat (the retained message again, or an
        older one) is ignored. Returns whether it was counted."""
        load = _usable(state.load_power_w)
        pv = _usable(state.solar_power_w)
        if load is None and pv is None:
            return False
        observed = _iso(state.observed_at)
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='last_observed_at'").fetchone()
            last = datetime.fromisoformat(row[0].replace("Z", "+00:00")) if row else None
            if last is not None and last - timedelta(minutes=30) < state.observed_at <= last:
                # The retained message again (after a reconnect or a restart), or one out of order. A much older
                # time is a clock that was set back (a demo run started again), which is accepted.
                return False
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO observed (slot_start) VALUES (?) ON CONFLICT(slot_start) DO NOTHING",
                (_iso(slot_start(state.observed_at)),),
            )
            self._db.execute(
                "UPDATE observed SET load_w_sum = load_w_sum + ?, load_n = load_n + ?, "
                "pv_w_sum = pv_w_sum + ?, pv_n = pv_n + ? WHERE slot_start = ?",
                (
                    load or 0.0,
                    int(load is not None),
                    pv or 0.0,
                    int(pv is not None),
                    _iso(slot_start(state.observed_at)),
                ),
            )
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('last_observed_at', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (observed,),
            )
            self._db.execute("COMMIT")
        return True

    def load_history(self, since: datetime) -> SlotSeries:
        """Observed load (kWh per half-hour: mean power × 0.5 h), indexed by UTC slot start."""
        return self._series("load", since)

    def pv_history(self, since: datetime) -> SlotSeries:
        return self._series("pv", since)

    def _series(self, column: str, since: datetime) -> SlotSeries:
        with self._lock:
            rows = self._db.execute(
                f"SELECT slot_start, {column}_w_sum / {column}_n FROM observed "
                f"WHERE {column}_n > 0 AND slot_start >= ? ORDER BY slot_start",
                (_iso(since),),
            ).fetchall()
        return SlotSeries.of([_utc(r[0]) for r in rows], [r[1] * 0.5 / 1000.0 for r in rows])

    def prune(self, before: datetime) -> int:
        with self._lock:
            cur = self._db.execute("DELETE FROM observed WHERE slot_start < ?", (_iso(before),))
            self._db.execute("DELETE FROM pv_forecast WHERE slot_start < ?", (_iso(before),))
            return cur.rowcount

    def save_pv_model_energy(self, energy: dict[datetime, float]) -> None:
        """Remember the uncalibrated model energy per slot (the newest forecast of a slot wins)."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO pv_forecast (slot_start, energy_kwh) VALUES (?, ?) "
                "ON CONFLICT(slot_start) DO UPDATE SET energy_kwh = excluded.energy_kwh",
                [(_iso(t), e) for t, e in energy.items()],
            )
            self._db.execute("COMMIT")

    def pv_model_energy(self, since: datetime, until: datetime) -> SlotSeries:
        with self._lock:
            rows = self._db.execute(
                "SELECT slot_start, energy_kwh FROM pv_forecast WHERE slot_start >= ? AND slot_start < ? "
                "ORDER BY slot_start",
                (_iso(since), _iso(until)),
            ).fetchall()
        return SlotSeries.of([_utc(r[0]) for r in rows], [r[1] for r in rows])

    # ------------------------------------------------------------ last good forecasts

    def save_forecast(self, forecast: EnergyForecast) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO published (kind, payload, saved_at) VALUES (?, ?, ?) "
                "ON CONFLICT(kind) DO UPDATE SET payload = excluded.payload, saved_at = excluded.saved_at",
                (forecast.kind, forecast.model_dump_json(), _iso(forecast.generated_at)),
            )

    def last_forecast(self, kind: str) -> EnergyForecast | None:
        with self._lock:
            row = self._db.execute("SELECT payload FROM published WHERE kind = ?", (kind,)).fetchone()
        if not row:
            return None
        try:
            return EnergyForecast.model_validate_json(row[0])
        except ValueError:
            return None


def _utc(iso: str) -> datetime:
    t = datetime.fromisoformat(iso)  # as _iso wrote it: UTC, with a Z
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _usable(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return max(0.0, float(value))


def history_start(now: datetime, days: int) -> datetime:
    return slot_start(now) - timedelta(days=days)
