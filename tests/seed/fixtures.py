"""The original app's files as a user has them, written by us for the tests (values changed from its defaults).

- ``write_seed_env``: its ``.env sample`` (a sentence first, then ``KEY=value`` lines, a quoted account number)
  plus the ``config/config.py`` variables a user sets, every value different from the seed's default.
- ``make_seed_db``: a ``data/Force_Charging.db`` with the seed's two tables, ``schedules`` and ``decisions``, in
  the shapes its code writes: schedule times as UTC ISO strings with an offset, decision times as SQLite's
  ``CURRENT_TIMESTAMP`` (UTC, no zone) or an aware ISO string, prices in pence, power in W.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

# Values a user would have set, each unlike the seed's default (16p, 16-19, 100/20, 90, 13.5 kWh, 1.7 kW, …).
SEED_ENV = {
    "OCTOPUS_API_KEY": "sk_live_seedtestkey0123456789",
    "NETZERO_API_KEY": "nz-seed-token-abcdef0123456789abcdef012345",
    "NETZERO_SITE_ID": "998877665544332",
    "KEEP_ALIVE_API_KEY": "seed-keepalive-key-7788",
    "OCTOPUS_ACCOUNT_NUMBER": "A-5EED1234",
    "GOOGLE_CLIENT_ID": "424242.apps.googleusercontent.com",
    "GOOGLE_CLIENT_SECRET": "GOCSPX-seedsecretvalue",
    "FLASK_SECRET_KEY": "0f1e2d3c4b5a6978",  # 16 bytes, as in the seed's sample: too short to sign with
    "AUTHORIZED_EMAILS": "owner@example.org,partner@example.org",
    "KEEP_ALIVE_PORT": "8181",
    "FLASK_ENV": "development",
    "LOG_LEVEL": "INFO",
    "MAX_AGILE_PRICE_PPK": "22",
    "PEAK_START_HOUR": "17",
    "PEAK_END_HOUR": "20",
    "BATTERY_RESERVE_START": "95",
    "BATTERY_RESERVE_END": "25",
    "TARGET_SOC": "90",
    "MIN_SOC": "15",
    "SOC_SKIP_THRESHOLD": "85",
    "BATTERY_KWH": "27",
    "CHARGE_RATE_KW": "2.5",
    "CUST_POSTCODE": "OX1 2JD",
    "OCTOPUS_PRODUCT_CODE": "AGILE-24-10-01",
    "WEATHER_CACHE_TTL": "1800",
    "SOLAR_POWER_SKIP_W": "1200",
    "PURGE_DAYS": "5",
}


def write_seed_env(path: Path, values: dict[str, str] | None = None) -> Path:
    """The seed's ``.env`` layout: its opening sentence, the sample's keys (one quoted), then the rest."""
    values = {**SEED_ENV, **(values or {})}
    lines = ["Replace the values below and move it to secrets vault if required.", ""]
    for k, v in values.items():
        lines.append(f'{k}="{v}"' if k in ("OCTOPUS_ACCOUNT_NUMBER", "FLASK_ENV") else f"{k}={v}")
    path.write_text("\n".join(lines) + "\n")
    return path


SCHEMA = """
CREATE TABLE schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    start_time TEXT NOT NULL,
    end_time TEXT NOT NULL,
    mode TEXT DEFAULT 'autonomous',
    executed INTEGER DEFAULT 0,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP,
    last_retry_utc TEXT DEFAULT NULL,
    retry_count INTEGER DEFAULT 0,
    expired INTEGER DEFAULT 0,
    decision TEXT DEFAULT NULL,
    decision_at TEXT DEFAULT NULL,
    price_p_per_kwh REAL DEFAULT NULL,
    manual_override INTEGER DEFAULT 0,
    target_soc INTEGER DEFAULT 0,
    source TEXT DEFAULT 'scheduler'
);
CREATE UNIQUE INDEX idx_schedules_start_end ON schedules (start_time, end_time);
CREATE TABLE decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp TEXT DEFAULT CURRENT_TIMESTAMP,
    schedule_id INTEGER,
    start_time TEXT,
    end_time TEXT,
    action TEXT,
    reason TEXT,
    soc REAL,
    solar_power REAL,
    island_status TEXT,
    price_p_per_kwh REAL
);
"""

# (action, reason) as the seed's executor records them, cycled over the month.
OUTCOMES = (
    ("completed", "Successful"),
    ("cancelled", "price_high_24.5p>limit_22.0p"),
    ("completed", "Successful"),
    ("cancelled", "soc_high_91"),
    ("expired", "schedule_missed"),
    ("cancelled", "peak_window"),
    ("cancelled", "Saving sessions"),
    ("deleted", "Deleted by User"),
    ("aborted", "System_Error"),
)


@dataclass
class SeedDb:
    path: Path
    decisions: int
    pending: list[dict[str, object]] = field(default_factory=list)  # the rows an import should turn into windows
    pending_peak: list[int] = field(default_factory=list)  # pending ids inside the peak (refused as windows)
    first_decision: datetime | None = None
    last_decision: datetime | None = None


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _sqlite_ts(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def make_seed_db(path: Path, now: datetime, days: int = 30) -> SeedDb:
    """A month of history (three decisions a night) and pending schedules: tonight's cheap slots from the
    scheduler, two manual ones, one manual in tomorrow's 17:00-20:00 peak, and one whose end has passed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    n = 0
    first = last = None
    day0 = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
    for d in range(days):
        for k in range(3):
            start = day0 + timedelta(days=d, hours=1, minutes=30 * k)
            end = start + timedelta(minutes=30)
            price = round(9.5 + 1.7 * k + (d % 5) * 0.8, 2)
            cur = db.execute(
                "INSERT INTO schedules (start_time, end_time, mode, executed, created_at, target_soc, "
                "price_p_per_kwh, source, decision, decision_at) VALUES (?, ?, 'autonomous', 1, ?, 95, ?, "
                "'scheduler', 'completed', ?)",
                (_iso(start), _iso(end), _sqlite_ts(start - timedelta(hours=6)), price, _iso(end)),
            )
            action, reason = OUTCOMES[n % len(OUTCOMES)]
            at = end + timedelta(seconds=20)
            stamp = at.isoformat() if action == "expired" else _sqlite_ts(at)  # both forms the seed writes
            db.execute(
                "INSERT INTO decisions (timestamp, schedule_id, start_time, end_time, action, reason, soc, "
                "solar_power, island_status, price_p_per_kwh) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (stamp, cur.lastrowid, _iso(start), _iso(end), action, reason, 40.0 + 10 * k + d % 7, 0.0,
                 "on_grid", price),
            )  # fmt: skip
            n += 1
            first = first or at
            last = at
    tomorrow = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    pending: list[dict[str, object]] = []
    rows = [  # (start, minutes, mode, manual, target, price, source)
        (tomorrow + timedelta(hours=2), 30, "autonomous", 0, 95, 8.21, "scheduler"),
        (tomorrow + timedelta(hours=2, minutes=30), 30, "autonomous", 0, 95, 7.9, "scheduler"),
        (tomorrow + timedelta(hours=3, minutes=30), 60, "manual", 1, 80, None, "manual"),
        (tomorrow + timedelta(hours=11), 30, "manual", 1, 98, None, "manual"),
    ]
    for start, minutes, mode, manual, target, price, source in rows:
        cur = db.execute(
            "INSERT INTO schedules (start_time, end_time, mode, manual_override, target_soc, price_p_per_kwh, "
            "source) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (_iso(start), _iso(start + timedelta(minutes=minutes)), mode, manual, target, price, source),
        )
        pending.append(
            {"id": cur.lastrowid, "start": start, "end": start + timedelta(minutes=minutes), "target_soc": target}
        )
    # A manual one in tomorrow's peak (17:00-20:00 London in this env) and one already over.
    peak = tomorrow + timedelta(hours=17, minutes=30)
    cur = db.execute(
        "INSERT INTO schedules (start_time, end_time, mode, manual_override, target_soc, source) "
        "VALUES (?, ?, 'manual', 1, 100, 'manual')",
        (_iso(peak), _iso(peak + timedelta(minutes=30))),
    )
    peak_id = cur.lastrowid
    gone = now - timedelta(hours=3)
    db.execute(
        "INSERT INTO schedules (start_time, end_time, mode, target_soc, source) VALUES (?, ?, 'autonomous', 95, "
        "'scheduler')",
        (_iso(gone), _iso(gone + timedelta(minutes=30))),
    )
    db.commit()
    db.close()
    return SeedDb(path, n, pending, [int(peak_id or 0)], first, last)
