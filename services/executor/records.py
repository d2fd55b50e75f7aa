"""The journal's refusal policy for rows that record what happened (not the write-ahead rows that permit a
command: ``actuation.py``). When the journal cannot be written (disk full, read-only, I/O error) one error line says
so, the service goes on, every decision on the bus says its row is missing, and settings or a baseline changed
meanwhile apply at once and are saved once a write succeeds again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.executor.journal import Journal, JournalError
from shared.models import AppliedDecision


class Records:
    """Writes to the journal and remembers whether it refuses them.

    Not thread-safe by itself: its state (``error``, ``pending``) is guarded by the executor's decision lock,
    which every caller holds (the journal itself serialises its connection with its own lock)."""

    def __init__(self, journal: Journal, log: Any) -> None:
        self.journal = journal
        self.log = log
        self.error: str | None = None  # why the journal refuses writes, while it does
        # What changed in memory and is not yet in the journal ("settings", "baseline"), each with its writer,
        # which writes the values as they are when it runs.
        self.pending: dict[str, Callable[[], None]] = {}

    def save(self, write: Callable[[], Any]) -> bool:
        """``write``'s rows in one transaction; a refusal is logged once and the service goes on. True when
        committed."""
        before = self.journal.changes
        try:
            with self.journal.transaction():
                write()
        except JournalError as exc:
            self.failed(exc)
            return False
        if self.journal.changes != before:  # an empty commit succeeds even on a full disk
            self.ok()
        return True

    def persist(self, key: str, write: Callable[[], None]) -> None:
        """Save state that applies at once whether or not the journal takes it: retried by ``flush``."""
        self.pending[key] = write
        self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        pending = dict(self.pending)

        def write() -> None:
            for writer in pending.values():
                writer()

        if self.save(write):
            for key in pending:
                self.pending.pop(key, None)

    def failed(self, exc: JournalError) -> None:
        if self.error is None:
            self.log.error(
                "journal unwritable: no charge or hold until it can be written; a forced state is handed back",
                path=str(self.journal.path),
                error=str(exc),
            )
        self.error = str(exc)

    def ok(self) -> None:
        if self.error is not None:
            self.log.info("journal writable again", path=str(self.journal.path))
            self.error = None

    def flagged(self, applied: AppliedDecision) -> AppliedDecision:
        """While the journal refuses writes every decision on the bus says so (its row is missing)."""
        if self.error is None:
            return applied
        why = f"journal unwritable: {self.error}"
        return applied.model_copy(update={"error": f"{applied.error}; {why}" if applied.error else why})
