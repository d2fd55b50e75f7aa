"""Stores written by an older version open with every row kept (column renames are applied in place)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.accounting.store import AccountingStore
from services.dashboard.store import Store
from services.pricing.store import RateStore


def test_a_store_written_by_an_older_version_keeps_its_prices_under_the_new_column_names(tmp_path: Path) -> None:
    """The price columns were value_gbp / price / value_inc_vat; all are now value_inc_vat_gbp (GBP/kWh)."""
    t0 = datetime(2024, 1, 15, 12, tzinfo=UTC)
    old = {
        "pricing.db": "CREATE TABLE rates (direction TEXT NOT NULL, start_utc TEXT NOT NULL, value_gbp REAL NOT NULL, "
        "tariff_code TEXT NOT NULL, fetched_at TEXT NOT NULL, PRIMARY KEY (direction, start_utc));"
        "INSERT INTO rates VALUES ('import', '2024-01-15T12:00:00Z', 0.123, 'E-1R-X-J', '2024-01-15T11:00:00Z');",
        "accounting.db": "CREATE TABLE rates (direction TEXT, start TEXT, price REAL, PRIMARY KEY (direction, start));"
        "INSERT INTO rates VALUES ('import', '2024-01-15T12:00:00Z', 0.123);",
        "dashboard.db": "CREATE TABLE prices (slot_start TEXT PRIMARY KEY, value_inc_vat REAL NOT NULL);"
        "INSERT INTO prices VALUES ('2024-01-15T12:00:00+00:00', 0.123);",
    }
    for name, sql in old.items():
        with sqlite3.connect(tmp_path / name) as db:
            db.executescript(sql)
    stored = RateStore(tmp_path / "pricing.db").load("import", t0 - timedelta(hours=1))
    assert stored is not None and [r.value_inc_vat for r in stored.rates] == [0.123]
    assert AccountingStore(tmp_path / "accounting.db").prices("import", t0, t0 + timedelta(hours=1)) == {t0: 0.123}
    assert Store(tmp_path / "dashboard.db").prices_between(t0, t0 + timedelta(hours=1)) == [
        ("2024-01-15T12:00:00+00:00", 0.123)
    ]
