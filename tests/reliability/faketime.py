"""Step the wall clock of running processes, like an NTP step, with libfaketime (Debian package ``faketime``).

Every process started with ``WallClock.env`` preloads libfaketime, which adds the offset written in one file to
every wall-clock read (``time.time``, ``datetime.now``) and re-reads that file on each call
(``FAKETIME_NO_CACHE``), so changing the file steps the clock of every such process at once. The monotonic clock
is left alone (``FAKETIME_DONT_FAKE_MONOTONIC``), as a real NTP step leaves it.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

SITE_DIR = Path(__file__).resolve().parent / "faketime_site"  # the time.sleep work-around (see its docstring)
PATTERNS = (
    "/usr/lib/*/faketime/libfaketime.so.1",
    "/usr/lib/faketime/libfaketime.so.1",
    "/usr/local/lib/faketime/libfaketime.so.1",
)


def find_libfaketime() -> str | None:
    """The installed libfaketime (``BATSCHED_LIBFAKETIME`` names another), or None."""
    named = os.environ.get("BATSCHED_LIBFAKETIME")
    if named:
        return named if Path(named).is_file() else None
    for pattern in PATTERNS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


class WallClock:
    """The wall-clock offset shared by every process started with ``env``."""

    def __init__(self, offset_file: Path, library: str) -> None:
        self.file = offset_file
        self.library = library
        self.offset_s = 0.0
        self._write()

    @property
    def env(self) -> dict[str, str]:
        return {
            "LD_PRELOAD": self.library,
            "FAKETIME_TIMESTAMP_FILE": str(self.file),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "PYTHONPATH": os.pathsep.join(p for p in (str(SITE_DIR), os.environ.get("PYTHONPATH")) if p),
        }

    def step(self, seconds: float) -> None:
        """Move every such process's wall clock by ``seconds`` (negative: back), at once."""
        self.offset_s += seconds
        self._write()

    def _write(self) -> None:
        # Replaced by a rename: a process must never read a half-written (or empty) offset.
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(f"{self.offset_s:+.0f}\n")
        os.replace(tmp, self.file)
