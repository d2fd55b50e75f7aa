"""``python -m services.executor export [--since ISO] [--out FILE] [--data-dir DIR]``: the decision history as CSV."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from services.executor.journal import DB_NAME, Journal
from shared.settings import ServiceSettings, load_settings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.executor export", description=__doc__.splitlines()[0])
    parser.add_argument("--since", help="only decisions at or after this aware ISO time, e.g. 2024-01-15T00:00Z")
    parser.add_argument("--out", help="CSV file to write (default: standard output)")
    parser.add_argument("--data-dir", help="where Force_Charging.db is (default: BATSCHED_DATA_DIR or ./data)")
    args = parser.parse_args(argv)
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since.replace("Z", "+00:00"))
        except ValueError:
            parser.error(f"--since: not an ISO time: {args.since!r}")
        if since.tzinfo is None:
            parser.error("--since needs a time zone, e.g. 2024-01-15T00:00:00Z")
        since = since.astimezone(UTC)
    data_dir = Path(args.data_dir) if args.data_dir else load_settings(ServiceSettings, "executor").data_dir
    db = data_dir / DB_NAME
    if not db.exists():
        print(f"batsched: no journal at {db}", file=sys.stderr)
        return 1
    journal = Journal(db)
    try:
        if args.out:
            with open(args.out, "w", newline="", encoding="utf-8") as out:
                n = journal.export_csv(out, since)
            print(f"{n} decisions written to {args.out}", file=sys.stderr)
        else:
            journal.export_csv(sys.stdout, since)
    finally:
        journal.close()
    return 0
