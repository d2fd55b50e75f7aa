"""``batsched migrate-seed``: move a user of the original app over, without touching its files.

- its ``.env`` becomes a batsched ``.env`` (``BATSCHED_…`` names, batsched's units, a comment for every variable
  that is not used and what replaces it) and secret files (``secrets/<setting>``, mode 0600) for the secrets;
  a session key too short to sign with is replaced by a new random one;
- its ``Force_Charging.db`` (optional): the decisions go into the executor's journal (``<data-dir>/
  Force_Charging.db``; the dashboard's History page and the CSV exports show them), the pending schedules become
  manual windows (one the safety rules forbid, e.g. in the peak, is listed with the reason);
- prints what it did. Running it again changes nothing already imported; existing output files are kept unless
  ``--force``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from shared.seed_settings import BY_NAME, MIN_SESSION_SECRET_BYTES, SeedSettingError, upper_keys
from tools.config_report import Row, collect, read_env_file

DEFAULT_OUT = Path("batsched-migrated")
GENERATED = "\0generate"  # a secret file written with a new random value (kept when it already exists)


class MigrationError(Exception):
    """Something the user must fix; ``str()`` is the one line to print."""


def _env_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def translate(environ: Mapping[str, str]) -> tuple[list[str], dict[str, str], list[str]]:
    """(``.env`` lines, secret files {name: text}, what was done) for a seed environment."""
    rows, notes, errors = collect(environ)
    if errors:
        raise MigrationError("the original .env has values batsched cannot use: " + "; ".join(errors))
    env = upper_keys(environ)
    lines = [
        "# batsched settings written by `batsched migrate-seed` from the original app's .env.",
        "# Secrets are files in the secrets folder (compose.yaml mounts them at /run/secrets).",
    ]
    files: dict[str, str] = {}
    done: list[str] = []
    written: set[str] = set()
    by_setting: dict[str, Row] = {}
    for r in rows:
        by_setting.setdefault(r.setting, r)
    for r in by_setting.values():
        kind, _, name = r.source.partition(" ")
        if r.source.startswith("BATSCHED_") and r.setting in env and not r.secret:
            lines.append(f"{r.setting}={env[r.setting]}")
            written.add(r.setting)
            continue
        if kind != "seed" or name not in env or r.setting in written:
            continue
        written.add(r.setting)
        if r.secret:
            files[r.field] = env[name].strip()
            done.append(f"secret {name} -> secrets/{r.field}")
        else:
            lines += [f"# from {name}={env[name].strip()}", f"{r.setting}={_env_value(r.value)}"]
            done.append(f"{name}={env[name].strip()} -> {r.setting}={_env_value(r.value)}")
    flask = env.get("FLASK_SECRET_KEY", "").strip()
    if flask and len(flask.encode()) < MIN_SESSION_SECRET_BYTES and "dashboard_session_secret" not in files:
        files["dashboard_session_secret"] = GENERATED
        done.append(
            f"FLASK_SECRET_KEY is {len(flask.encode())} bytes, too short to sign sessions: "
            "a new random one -> secrets/dashboard_session_secret (everyone logs in again once)"
        )
    replaced = [BY_NAME[n] for n in env if n in BY_NAME and not BY_NAME[n].honoured]
    if replaced:
        lines += ["", "# The original app's variables batsched does not use, and what replaces them:"]
        for v in replaced:
            lines.append(f"# {v.name}={env[v.name].strip()}: replaced by {v.replaced_by}")
            done.append(f"{v.name} not used: replaced by {v.replaced_by}")
    for n in notes:
        if n["level"] == "warning" and n["text"].startswith("conflict"):
            done.append(n["text"])
    return lines, files, done


def _write(path: Path, text: str, force: bool, mode: int = 0o644) -> None:
    if path.exists() and not force:
        if path.read_text() == text:
            return
        raise MigrationError(f"{path} exists and differs: use --force to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def migrate(env_file: Path, db: Path | None, out: Path, data_dir: Path | None, force: bool) -> list[str]:
    """Do it; returns the lines to print. Raises ``MigrationError``."""
    if not env_file.is_file():
        raise MigrationError(f"no such file: {env_file}")
    environ = read_env_file(env_file)
    lines, files, done = translate(environ)
    out = out.resolve()
    data = (data_dir or out / "data").resolve()
    secrets_dir = out / "secrets"
    lines += [
        "",
        "# Where this installation keeps its files (compose.yaml sets its own for the containers).",
        f"BATSCHED_DATA_DIR={data}",
        f"BATSCHED_SECRETS_DIR={secrets_dir}",
    ]
    report = [f"settings from {env_file}:"] + [f"  {x}" for x in done]
    if db is not None:
        report += _import_db(environ, db, data)
    _write(out / ".env", "\n".join(lines) + "\n", force)
    for name, text in files.items():
        if text == GENERATED:
            if (secrets_dir / name).exists() and not force:
                continue
            text = secrets.token_urlsafe(48)
        _write(secrets_dir / name, text + "\n", force, 0o600)
    report.append(f"wrote {out / '.env'} and {len(files)} secret file(s) in {secrets_dir}")
    return report


def _import_db(environ: Mapping[str, str], db: Path, data: Path) -> list[str]:
    from services.executor.config import ExecutorSettings
    from services.executor.journal import DB_NAME, Journal
    from services.executor.seed_import import SeedImportError, import_seed, is_seed_db
    from services.executor.windows import WindowStore
    from shared.settings import build_settings

    if not db.is_file():
        raise MigrationError(f"no such file: {db}")
    if not is_seed_db(db):
        raise MigrationError(f"{db} is not the original app's database (no schedules or decisions table)")
    journal_path = data / DB_NAME
    if journal_path.exists() and (journal_path.resolve() == db.resolve() or is_seed_db(journal_path)):
        raise MigrationError(
            f"the journal's path {journal_path} holds the original app's database: give another --data-dir "
            "(or start the executor, which moves it aside and imports it)"
        )
    try:
        s = build_settings(ExecutorSettings, environ=environ)
    except SeedSettingError as exc:
        raise MigrationError(str(exc)) from None
    journal = Journal(journal_path)
    windows = WindowStore(journal_path)
    try:
        from shared.clock import RealClock

        report = import_seed(
            db,
            journal,
            windows,
            RealClock().now(),
            s.peak,
            s.tz,
            (s.min_target_soc_pct, s.max_target_soc_pct),
        )
    except SeedImportError as exc:
        raise MigrationError(str(exc)) from None
    finally:
        windows.close()
        journal.close()
    return [f"history and schedules from {db} into {journal_path}:"] + [f"  {x}" for x in report.lines(s.tz)]


def main(env_file: Path, db: Path | None, out: Path | None, data_dir: Path | None, force: bool) -> int:
    try:
        lines = migrate(env_file, db, out or DEFAULT_OUT, data_dir, force)
    except MigrationError as exc:
        print(f"batsched migrate-seed: {exc}")
        return 2
    print("\n".join(lines))
    print("The original files were not changed.")
    return 0
