"""Opening a service's SQLite store: one way for every service (WAL, autocommit, schema applied); and what the
stores share when SQLite refuses a write (disk full, read-only, I/O error)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Literal


def open_store(
    path: Path | str,
    schema: str,
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    timeout_s: float = 5.0,
    renamed_columns: tuple[tuple[str, str, str], ...] = (),
) -> sqlite3.Connection:
    """Connect in autocommit mode (stores open their own transactions), in WAL mode so that a reader in another
    process (the watchdog, a CSV export) never blocks the writer, and apply ``schema`` (idempotent DDL).

    ``synchronous=FULL`` for data that must survive a power cut the moment it is written (the executor's journal);
    callers guard the connection with their own lock (it is shared between threads). ``renamed_columns``
    ``(table, old, new)`` brings a store written by an older version to the current names, keeping its rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), check_same_thread=False, timeout=timeout_s, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
    for table, old, new in renamed_columns:
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if old in columns and new not in columns:
            db.execute(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}")
    db.executescript(schema)
    return db


def rollback_quietly(db: sqlite3.Connection) -> None:
    """Undo an open transaction after a failed write. After SQLITE_FULL SQLite may have rolled back on its own;
    then ROLLBACK fails and there is nothing to undo."""
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


def cannot_write(path: Path | str, exc: sqlite3.Error) -> str:
    """The one-line reason a store gives when SQLite refuses a write: the file and SQLite's words."""
    return f"cannot write {Path(path).name}: {exc}"
