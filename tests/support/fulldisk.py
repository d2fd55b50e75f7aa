"""A stand-in for a store's SQLite connection that fails writes the way SQLite fails on a full disk, for unit tests.

The real ENOSPC (a small tmpfs filled up) is in ``tests/reliability/test_storage_faults.py``; this one needs no
root and says exactly which write fails: while ``full``, every commit and every write outside a transaction
raises ``sqlite3.OperationalError("database or disk is full")``. Reads still work, as on a real full disk.
"""

from __future__ import annotations

import sqlite3
from typing import Any


class FullDisk:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.full = False

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._check(sql)
        return self.db.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> sqlite3.Cursor:
        self._check(sql)
        return self.db.executemany(sql, *args)

    def _check(self, sql: str) -> None:
        verb = sql.lstrip().split(None, 1)[0].upper()
        autocommit_write = verb in ("INSERT", "UPDATE", "DELETE") and not self.db.in_transaction
        if self.full and (verb == "COMMIT" or autocommit_write):
            raise sqlite3.OperationalError("database or disk is full")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


def fill(store: Any) -> FullDisk:
    """Put a ``FullDisk`` in front of ``store._db`` (a journal or a rate store) and return it."""
    disk = FullDisk(store._db)
    store._db = disk
    return disk
