"""Debian's headless Chromium for the browser tests (no browser download; quiet on a closed network)."""

from __future__ import annotations

import shutil

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",  # without these Chromium keeps trying to reach the internet
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
