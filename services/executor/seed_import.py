"""The original app's database (``data/Force_Charging.db``, tables ``schedules`` and ``decisions``) into batsched.

- its decisions become ``AppliedDecision`` rows in the executor's journal (ids ``seed-<id>``, so a second import
  changes nothing), shown by the dashboard's History page and both CSV exports;
- its pending schedules (not executed, not expired, not over) become manual windows (charge, with the schedule's
  target SOC), each admitted by the same test as a new window: one in the peak is refused, with the reason.

The seed's file is never written: it is read from a private copy (a WAL database opened even read-only may
create files beside it). It has the journal's file name, so an executor that finds it at its journal's path moves
it aside (with its ``-wal``/``-shm``) and imports it (``take_over``); ``batsched migrate-seed`` does the same
from anywhere without moving anything.

Times: the seed writes schedule times as UTC ISO strings with an offset (a naive one is local time, as the seed
reads it) and decision times as SQLite's ``CURRENT_TIMESTAMP`` (UTC without a zone) or an aware ISO string.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from services.executor.journal import Journal
from services.executor.windows import WindowRefused, WindowStore, check_new
from shared.models import (
    Action,
    AppliedDecision,
    ExecutorMode,
    ManualWindow,
    RuleOutcome,
)
from shared.peak import PeakWindow

SIDE_FILES = ("", "-wal", "-shm")
# What each seed action means as a batsched decision: (action taken, outcome, rule verdict).
ACTIONS: dict[str, tuple[Action | None, str, str]] = {
    "completed": (Action.CHARGE, "applied", "changed"),
    "stopped": (Action.SELF_USE, "applied", "changed"),
    "cancelled": (Action.SELF_USE, "unchanged", "blocked"),
    "expired": (Action.SELF_USE, "unchanged", "blocked"),
    "deleted": (Action.SELF_USE, "unchanged", "blocked"),
    "error": (Action.SELF_USE, "failed", "blocked"),
    "aborted": (Action.SELF_USE, "failed", "blocked"),
}


class SeedImportError(Exception):
    """The seed database cannot be read; ``str()`` says why."""


@dataclass
class ImportReport:
    decisions_imported: int = 0
    decisions_skipped: int = 0  # rows without a usable time
    first: datetime | None = None
    last: datetime | None = None
    windows_added: list[ManualWindow] = field(default_factory=list)
    windows_refused: list[tuple[int, str]] = field(default_factory=list)  # (seed schedule id, reason)
    windows_already: int = 0  # imported by an earlier run
    schedules_over: int = 0  # pending in the seed but already over
    notes: list[str] = field(default_factory=list)

    def lines(self, tz: ZoneInfo) -> list[str]:
        out = [f"decisions imported: {self.decisions_imported}"]
        if self.first and self.last:
            out[-1] += f" ({self.first.astimezone(tz):%Y-%m-%d} to {self.last.astimezone(tz):%Y-%m-%d})"
        if self.decisions_skipped:
            out.append(f"decisions skipped (no readable time): {self.decisions_skipped}")
        for w in self.windows_added:
            target = f", target {w.target_soc_pct:g}%" if w.target_soc_pct is not None else ""
            out.append(
                f"window {w.window_id} added from {w.origin}: {w.action} {w.start.astimezone(tz):%a %d %b %H:%M}–"
                f"{w.end.astimezone(tz):%H:%M}{target}"
            )
        for sid, reason in self.windows_refused:
            out.append(f"seed schedule {sid} NOT imported: {reason}")
        if self.windows_already:
            out.append(f"windows imported before: {self.windows_already}")
        if self.schedules_over:
            out.append(f"pending schedules already over (not imported): {self.schedules_over}")
        return out + self.notes


# ------------------------------------------------------------------ reading the seed's file


@contextmanager
def private_copy(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection to a copy of ``path`` (and its WAL files), so nothing beside the original is ever touched."""
    with tempfile.TemporaryDirectory(prefix="batsched-seed-") as tmp:
        for suffix in SIDE_FILES:
            src = Path(f"{path}{suffix}")
            if src.exists():
                shutil.copyfile(src, Path(tmp) / f"seed.db{suffix}")
        db = sqlite3.connect(Path(tmp) / "seed.db")
        try:
            yield db
        finally:
            db.close()


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}


def is_seed_db(path: Path) -> bool:
    """Whether ``path`` is the original app's database (not a batsched journal, not missing or empty)."""
    if not path.is_file() or path.stat().st_size == 0:
        return False
    try:
        with private_copy(path) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            decisions = _columns(db, "decisions") if "decisions" in tables else set()
    except sqlite3.Error:
        return False
    if "decision_id" in decisions:
        return False
    return "schedules" in tables or "timestamp" in decisions


def parse_seed_time(text: Any, naive_tz: ZoneInfo) -> datetime | None:
    """A seed time as an aware UTC instant; naive ones are in ``naive_tz`` (UTC for SQLite's CURRENT_TIMESTAMP,
    local for a schedule written without an offset). None when unreadable."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=naive_tz)
    return t.astimezone(UTC)


def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f else None


def to_applied(row: sqlite3.Row | tuple[Any, ...], tz: ZoneInfo) -> AppliedDecision | None:
    """One seed ``decisions`` row as a journal decision (None when it has no readable time)."""
    rid, stamp, schedule_id, start, _end, action, reason, soc, solar, island, price = row
    at = parse_seed_time(stamp, UTC if isinstance(stamp, str) and "T" not in stamp else tz)
    if at is None:
        return None
    seed_action = str(action or "").strip().lower()
    taken, outcome, verdict = ACTIONS.get(seed_action, (None, "stood_aside", "stand_aside"))
    facts = [f"original app, schedule {schedule_id}: {seed_action or 'no action'} ({reason or 'no reason'})"]
    if (p := _float(price)) is not None:
        facts.append(f"price {p:.2f}p/kWh")
    if (w := _float(solar)) is not None:
        facts.append(f"solar {w:.0f} W")
    if island:
        facts.append(str(island))
    soc_pct = _float(soc)
    return AppliedDecision(
        generated_at=at,
        decision_id=f"seed-{rid}",
        plan_id=f"seed-schedule-{schedule_id}" if schedule_id is not None else None,
        slot_start=parse_seed_time(start, tz),
        mode=ExecutorMode.AUTO,
        dry_run=False,
        requested_action=Action.CHARGE if schedule_id is not None else None,
        action=taken,
        rules=[RuleOutcome(rule="seed", verdict=verdict, detail="; ".join(facts))],  # type: ignore[arg-type]
        outcome=outcome,  # type: ignore[arg-type]
        error=str(reason) if outcome == "failed" else None,
        soc_pct=soc_pct if soc_pct is not None and 0 <= soc_pct <= 100 else None,
    )


@dataclass(frozen=True)
class SeedSchedule:
    schedule_id: int
    start: datetime
    end: datetime
    target_soc_pct: float | None
    source: str


@dataclass
class SeedData:
    decisions: list[AppliedDecision]
    skipped: int
    pending: list[SeedSchedule]
    unreadable_schedules: int


def read_seed(path: Path, tz: ZoneInfo) -> SeedData:
    try:
        with private_copy(path) as db:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            decisions: list[AppliedDecision] = []
            skipped = 0
            if "decisions" in tables:
                rows = db.execute(
                    "SELECT id, timestamp, schedule_id, start_time, end_time, action, reason, soc, solar_power, "
                    "island_status, price_p_per_kwh FROM decisions ORDER BY id"
                ).fetchall()
                for row in rows:
                    d = to_applied(row, tz)
                    if d is None:
                        skipped += 1
                    else:
                        decisions.append(d)
            pending: list[SeedSchedule] = []
            unreadable = 0
            if "schedules" in tables:
                cols = _columns(db, "schedules")
                target = "target_soc" if "target_soc" in cols else "NULL"
                source = "source" if "source" in cols else "'scheduler'"
                expired = "AND (expired IS NULL OR expired = 0)" if "expired" in cols else ""
                for sid, start, end, tgt, src in db.execute(
                    f"SELECT id, start_time, end_time, {target}, {source} FROM schedules "
                    f"WHERE (executed IS NULL OR executed = 0) {expired} ORDER BY start_time"
                ):
                    s, e = parse_seed_time(start, tz), parse_seed_time(end, tz)
                    if s is None or e is None:
                        unreadable += 1
                        continue
                    t = _float(tgt)
                    pending.append(SeedSchedule(int(sid), s, e, t if t and 0 < t <= 100 else None, str(src or "")))
    except sqlite3.Error as exc:
        raise SeedImportError(f"cannot read the original app's database {path}: {exc}") from None
    return SeedData(decisions, skipped, pending, unreadable)


# ------------------------------------------------------------------ importing


def import_seed(
    path: Path,
    journal: Journal,
    windows: WindowStore,
    now: datetime,
    peak: PeakWindow,
    tz: ZoneInfo,
    target_bounds: tuple[float, float] = (0.0, 100.0),
) -> ImportReport:
    """Decisions into the journal (one transaction), pending schedules as windows. Raises ``SeedImportError`` or
    ``JournalError`` (nothing half-done: the decisions are one commit, and a second run adds only what is new)."""
    data = read_seed(path, tz)
    report = ImportReport(decisions_skipped=data.skipped)
    with journal.transaction():
        for d in data.decisions:
            journal.decision(d)
    report.decisions_imported = len(data.decisions)
    if data.decisions:
        report.first = min(d.generated_at for d in data.decisions)
        report.last = max(d.generated_at for d in data.decisions)
    if data.unreadable_schedules:
        report.notes.append(f"pending schedules with unreadable times (not imported): {data.unreadable_schedules}")
    lo, hi = target_bounds
    for s in data.pending:
        origin = f"seed schedule {s.schedule_id}"
        if windows.has_origin(origin):
            report.windows_already += 1
            continue
        if s.end <= now:
            report.schedules_over += 1
            continue
        target = s.target_soc_pct
        clamped = None if target is None else min(max(target, lo), hi)
        try:
            check_new(s.start, s.end, "charge", clamped, windows.pending(), now, peak, tz)
        except WindowRefused as exc:
            report.windows_refused.append((s.schedule_id, str(exc)))
            continue
        source = "seed:scheduler" if s.source in ("", "scheduler") else "seed:manual"  # the seed's two kinds
        report.windows_added.append(windows.add(s.start, s.end, "charge", clamped, source, now, origin=origin))
        if clamped != target:
            report.notes.append(f"{origin}: target {target:g}% became {clamped:g}% (the allowed {lo:g}–{hi:g}%)")
    return report


def move_aside(path: Path, now: datetime) -> Path:
    """Rename the seed's database (and its WAL files) next to itself; returns the new path. Raises ``OSError``."""
    target = path.with_name(f"{path.stem}.seed-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}{path.suffix}")
    moved: list[tuple[Path, Path]] = []
    try:
        for suffix in SIDE_FILES:
            src = Path(f"{path}{suffix}")
            if src.exists():
                dst = Path(f"{target}{suffix}")
                src.rename(dst)
                moved.append((src, dst))
    except OSError:
        for src, dst in reversed(moved):  # all or nothing: never a journal path with half a seed database
            dst.rename(src)
        raise
    return target


def take_over(path: Path, now: datetime, log: Any) -> Path | None:
    """At the executor's start: the original app's database at the journal's path is moved aside (returned, for
    ``import_seed``). When it cannot be moved, one line says what to run and the service exits with status 2."""
    if not is_seed_db(path):
        return None
    try:
        moved = move_aside(path, now)
    except OSError as exc:
        print(
            f"batsched-executor: {path} is the original app's database and cannot be moved aside ({exc}): move it "
            f"elsewhere and run `batsched migrate-seed --env .env --db <its new path> --data-dir {path.parent}`",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    log.warning("the original app's database was at the journal's path: moved aside to import it", moved_to=str(moved))
    return moved


def wait_while_seed(path: Path, seconds: float, log: Any) -> None:
    """For the watchdog, which shares the journal: give the executor time to move the seed's database aside;
    if it is still there, exit with status 2 and one line (the container restarts it later)."""
    import time

    deadline = time.monotonic() + seconds
    while is_seed_db(path):
        if time.monotonic() > deadline:
            print(
                f"batsched-watchdog: {path} is still the original app's database: start the executor (it moves it "
                "aside and imports it) or run `batsched migrate-seed`",
                file=sys.stderr,
            )
            raise SystemExit(2)
        log.info("waiting for the executor to move the original app's database aside", path=str(path))
        time.sleep(1.0)  # another process's file: nothing to wait on but the file itself


def seeded_decisions(journal_path: Path, limit: int | None = None) -> tuple[int, list[AppliedDecision]]:
    """(how many, the newest ``limit`` of them, oldest first) of the seed decisions in the journal."""
    db = sqlite3.connect(f"{journal_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        total = db.execute("SELECT count(*) FROM decisions WHERE decision_id LIKE 'seed-%'").fetchone()[0]
        sql = "SELECT body FROM decisions WHERE decision_id LIKE 'seed-%' ORDER BY ts DESC"
        rows = db.execute(sql + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
    finally:
        db.close()
    return int(total), [AppliedDecision.model_validate_json(r[0]) for r in reversed(rows)]


def import_on_start(seed: Path, journal: Journal, windows: WindowStore, settings: Any, now: datetime, log: Any) -> None:
    """The executor's import of a database it moved aside: each result on its own log line; a failure is logged
    with the command that retries it, and the service goes on (never a crash)."""
    from services.executor.journal import JournalError

    peak = settings.peak
    bounds = (settings.min_target_soc_pct, settings.max_target_soc_pct)
    try:
        report = import_seed(seed, journal, windows, now, peak, settings.tz, bounds)
    except (SeedImportError, JournalError, sqlite3.Error) as exc:
        log.error(
            "the original app's database could not be imported; the executor runs without its history",
            error=str(exc),
            retry=f"batsched migrate-seed --env .env --db {seed} --data-dir {journal.path.parent}",
        )
        return
    for line in report.lines(settings.tz):
        log.info(f"seed import: {line}", seed_db=str(seed))


MESSAGE_BUDGET = 900_000  # bytes: under the bus's 1 MB limit for one message


def publish_imported_history(bus: Any, journal_path: Path, now: datetime, log: Any) -> None:
    """On (re)connect: the imported decisions, retained, for the dashboard's history (the newest that fit)."""
    from shared.models import ImportedHistory

    try:
        total, decisions = seeded_decisions(journal_path, limit=2000)
    except sqlite3.Error as exc:
        log.warning("imported history not published: journal unreadable", error=str(exc))
        return
    if not total:
        return
    while True:
        msg = ImportedHistory(generated_at=now, imported_at=now, total=total, decisions=decisions)
        body = msg.to_json()
        if len(body) <= MESSAGE_BUDGET or len(decisions) <= 1:
            break
        decisions = decisions[len(decisions) // 4 :]  # drop the oldest quarter until it fits
    if len(decisions) < total:
        log.info("imported history: only the newest decisions fit one message", sent=len(decisions), total=total)
    bus.publish(bus.topics.executor_history_imported, body, retain=True)
