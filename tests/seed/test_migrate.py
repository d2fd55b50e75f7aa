"""``batsched migrate-seed`` and the executor's own import of a seed database found at its journal's path."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.executor.journal import Journal
from services.executor.seed_import import (
    import_seed,
    is_seed_db,
    parse_seed_time,
    read_seed,
    take_over,
    to_applied,
    wait_while_seed,
)
from services.executor.windows import WindowStore
from shared.models import Action
from shared.peak import PeakWindow
from tests.seed.fixtures import SEED_ENV, make_seed_db, write_seed_env

ROOT = Path(__file__).resolve().parents[2]
LONDON = ZoneInfo("Europe/London")
PEAK = PeakWindow.parse("17:00", "20:00", LONDON)


def fingerprint(folder: Path) -> dict[str, tuple[str, float]]:
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime) for p in folder.iterdir() if p.is_file()
    }


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "tools.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def seed(tmp_path: Path):
    home = tmp_path / "seed-app"
    (home / "data").mkdir(parents=True)
    write_seed_env(home / ".env")
    db = make_seed_db(home / "data" / "Force_Charging.db", datetime.now(UTC))
    return home, db


def test_migrate_seed_writes_settings_secrets_history_and_windows(seed, tmp_path: Path) -> None:
    home, db = seed
    before = {"app": fingerprint(home), "data": fingerprint(home / "data")}
    out = tmp_path / "new"
    done = run_cli("migrate-seed", "--env", str(home / ".env"), "--db", str(db.path), "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    text = done.stdout
    assert f"decisions imported: {db.decisions}" in text
    assert text.count("added from seed schedule") == len(db.pending)
    assert f"seed schedule {db.pending_peak[0]} NOT imported" in text and "overlaps the peak 17:00–20:00" in text
    assert "pending schedules already over (not imported): 1" in text
    assert "MAX_AGILE_PRICE_PPK=22 -> BATSCHED_MAX_CHARGE_PRICE_GBP=0.22" in text
    assert "SOC_SKIP_THRESHOLD not used" in text
    for secret in ("NETZERO_API_KEY", "OCTOPUS_API_KEY", "KEEP_ALIVE_API_KEY", "GOOGLE_CLIENT_SECRET"):
        assert SEED_ENV[secret] not in text
    # the original files are untouched, and nothing was created beside them (no -wal, no -shm)
    assert {"app": fingerprint(home), "data": fingerprint(home / "data")} == before

    env_text = (out / ".env").read_text()
    assert "BATSCHED_MAX_CHARGE_PRICE_GBP=0.22" in env_text and "BATSCHED_PEAK_START_LOCAL=17:00" in env_text
    assert all(SEED_ENV[k] not in env_text for k in ("NETZERO_API_KEY", "GOOGLE_CLIENT_SECRET", "OCTOPUS_API_KEY"))
    assert (out / "secrets" / "netzero_api_key").read_text().strip() == SEED_ENV["NETZERO_API_KEY"]
    assert (out / "secrets" / "dashboard_api_key").read_text().strip() == SEED_ENV["KEEP_ALIVE_API_KEY"]
    session = (out / "secrets" / "dashboard_session_secret").read_text().strip()
    assert len(session) >= 32 and session != SEED_ENV["FLASK_SECRET_KEY"]
    assert all(p.stat().st_mode & 0o077 == 0 for p in (out / "secrets").iterdir())

    # the written .env means the same to batsched as the seed's
    cfg = json.loads(run_cli("config", "--env", str(out / ".env"), "--json").stdout)
    rows = {(r["service"], r["setting"]): r for r in cfg["settings"]}
    assert rows[("executor", "BATSCHED_MAX_CHARGE_PRICE_GBP")]["value"] == pytest.approx(0.22)
    assert rows[("executor", "BATSCHED_NETZERO_API_KEY")]["source"] == "secret file netzero_api_key"
    assert rows[("dashboard", "BATSCHED_DASHBOARD_SESSION_SECRET")]["source"] == "secret file dashboard_session_secret"
    assert rows[("planner", "BATSCHED_MIN_SOC_PCT")]["value"] == 15.0 and cfg["errors"] == []

    # the journal holds the history (the executor's CSV export shows it) and the windows
    journal_path = out / "data" / "Force_Charging.db"
    export = subprocess.run(
        [sys.executable, "-m", "services.executor", "export", "--data-dir", str(out / "data")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    rows_csv = list(csv.DictReader(io.StringIO(export.stdout)))
    assert len(rows_csv) == db.decisions and all(r["decision_id"].startswith("seed-") for r in rows_csv)
    assert {r["outcome"] for r in rows_csv} >= {"applied", "unchanged", "failed"}
    assert any("price_high_24.5p>limit_22.0p" in r["rules"] for r in rows_csv)
    store = WindowStore(journal_path)
    windows = store.pending()
    store.close()
    assert [(w.start, w.end) for w in windows] == [(p["start"], p["end"]) for p in db.pending]
    assert [w.target_soc_pct for w in windows] == [95.0, 95.0, 80.0, 95.0]  # 98% clamped to BATTERY_RESERVE_START
    assert {w.action for w in windows} == {"charge"}
    assert [w.source for w in windows] == ["seed:scheduler", "seed:scheduler", "seed:manual", "seed:manual"]

    # again: nothing new, nothing duplicated, files kept
    again = run_cli("migrate-seed", "--env", str(home / ".env"), "--db", str(db.path), "--out", str(out))
    assert again.returncode == 0, again.stdout
    assert f"windows imported before: {len(db.pending)}" in again.stdout
    assert (out / "secrets" / "dashboard_session_secret").read_text().strip() == session
    journal = Journal(journal_path)
    assert len(journal.decisions()) == db.decisions
    journal.close()
    assert {"app": fingerprint(home), "data": fingerprint(home / "data")} == before


def test_migrate_seed_refuses_to_write_its_journal_over_the_seed_database(seed, tmp_path: Path) -> None:
    home, db = seed
    done = run_cli(
        "migrate-seed", "--env", str(home / ".env"), "--db", str(db.path), "--out", str(tmp_path / "o"),
        "--data-dir", str(home / "data"),
    )  # fmt: skip
    assert done.returncode == 2 and "holds the original app's database" in done.stdout
    assert is_seed_db(db.path)
    missing = run_cli("migrate-seed", "--env", str(tmp_path / "nope.env"), "--out", str(tmp_path / "o"))
    assert missing.returncode == 2 and "no such file" in missing.stdout


def test_seed_times_in_both_forms_and_across_the_clock_change() -> None:
    assert parse_seed_time("2025-03-30 01:30:00", UTC) == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
    assert parse_seed_time("2025-06-01T01:00:00+00:00", LONDON) == datetime(2025, 6, 1, 1, tzinfo=UTC)
    # a naive schedule time is local, as the seed reads it: 01:30 BST is 00:30 UTC
    assert parse_seed_time("2025-06-01T01:30", LONDON) == datetime(2025, 6, 1, 0, 30, tzinfo=UTC)
    # the repeated hour of the autumn change: the first (BST) one
    assert parse_seed_time("2025-10-26T01:30", LONDON) == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)
    assert parse_seed_time("not a time", LONDON) is None and parse_seed_time(None, LONDON) is None
    d = to_applied((7, "2025-10-26 01:10:00", 3, "2025-10-26T00:30:00+00:00", None, "completed", "Successful",
                    88.5, 410.0, "on_grid", 7.25), LONDON)  # fmt: skip
    assert d is not None and d.decision_id == "seed-7" and d.action == Action.CHARGE and d.outcome == "applied"
    assert d.generated_at == datetime(2025, 10, 26, 1, 10, tzinfo=UTC) and d.soc_pct == 88.5
    assert "7.25p/kWh" in d.rules[0].detail and "410 W" in d.rules[0].detail
    bad = to_applied((8, None, 3, None, None, "cancelled", "x", None, None, None, None), LONDON)
    assert bad is None


def test_an_unknown_action_and_a_bad_soc_are_kept_safely() -> None:
    d = to_applied((9, "2025-01-02 03:04:05", None, None, None, "weird", None, 250.0, None, None, None), LONDON)
    assert d is not None and d.action is None and d.outcome == "stood_aside" and d.soc_pct is None


def test_executor_start_moves_the_seed_database_aside_and_imports_it(seed, tmp_path: Path) -> None:
    home, db = seed
    from services.executor.config import ExecutorSettings
    from services.executor.seed_import import import_on_start
    from shared.logging import get_logger
    from shared.settings import build_settings

    data = home / "data"
    now = datetime.now(UTC)
    moved = take_over(db.path, now, get_logger("test"))
    assert moved is not None and moved.exists() and not db.path.exists() and is_seed_db(moved)
    journal, windows = Journal(db.path), WindowStore(db.path)
    settings = build_settings(ExecutorSettings, environ=SEED_ENV)
    import_on_start(moved, journal, windows, settings, now, get_logger("test"))
    assert len(journal.decisions()) == db.decisions and len(windows.pending()) == len(db.pending)
    assert take_over(db.path, now, get_logger("test")) is None  # a journal now: nothing to take over
    assert sorted(p.name for p in data.iterdir() if "seed-" in p.name) == [moved.name]


def test_a_seed_database_that_cannot_be_moved_stops_with_one_line(seed, monkeypatch, capsys) -> None:
    _home, db = seed

    def refuse(*_a: object) -> None:
        raise PermissionError("read-only file system")

    monkeypatch.setattr(Path, "rename", refuse)
    from shared.logging import get_logger

    with pytest.raises(SystemExit) as stop:
        take_over(db.path, datetime.now(UTC), get_logger("test"))
    assert stop.value.code == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "original app's database" in line and "batsched migrate-seed --env .env --db" in line
    assert is_seed_db(db.path)  # left as it was


def test_the_watchdog_waits_for_the_executor_then_says_what_to_do(seed, capsys) -> None:
    _home, db = seed
    from shared.logging import get_logger

    with pytest.raises(SystemExit) as stop:
        wait_while_seed(db.path, 0.0, get_logger("test"))
    assert stop.value.code == 2 and "still the original app's database" in capsys.readouterr().err
    wait_while_seed(db.path.with_name("absent.db"), 0.0, get_logger("test"))  # no seed database: no wait


def test_import_is_one_commit_and_a_second_import_adds_nothing(seed, tmp_path: Path) -> None:
    _home, db = seed
    path = tmp_path / "j" / "Force_Charging.db"
    journal, windows = Journal(path), WindowStore(path)
    now = datetime.now(UTC)
    first = import_seed(db.path, journal, windows, now, PEAK, LONDON)
    second = import_seed(db.path, journal, windows, now + timedelta(minutes=1), PEAK, LONDON)
    assert first.decisions_imported == second.decisions_imported == db.decisions
    assert len(first.windows_added) == len(db.pending) and not second.windows_added
    assert second.windows_already == len(db.pending)
    assert len(journal.decisions()) == db.decisions


def test_a_broken_seed_database_is_reported_not_crashed_on(tmp_path: Path) -> None:
    path = tmp_path / "Force_Charging.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schedules (id INTEGER PRIMARY KEY, start_time TEXT)")  # no end_time, no executed
    db.commit()
    db.close()
    assert is_seed_db(path)
    from services.executor.seed_import import SeedImportError

    with pytest.raises(SeedImportError, match="cannot read the original app's database"):
        read_seed(path, LONDON)
