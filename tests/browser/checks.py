"""What every page must pass in the browser: axe-core with no serious or critical violation, no horizontal scroll
of the page, and a screenshot under ``artifacts/dashboard/``.

axe-core is the npm package's ``axe.min.js`` vendored under ``vendor/`` (version and checksum in its README), run
in the page through the DevTools protocol, so the pages' Content-Security-Policy stays as it is in use."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
AXE_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"  # axe-core 4.14.1
BLOCKING = ("serious", "critical")


def axe_source() -> str:
    data = AXE.read_bytes()
    assert hashlib.sha256(data).hexdigest() == AXE_SHA256, "tests/browser/vendor/axe.min.js is not axe-core 4.14.1"
    return data.decode()


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is now (WCAG 2.1 A/AA and best practice)."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_source())
    found = page.evaluate(
        """async () => {
          const r = await window.axe.run(document, {resultTypes: ["violations"]});
          return r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" "))}));
        }"""
    )
    return [v for v in found if v["impact"] in BLOCKING]


def page_overflow_px(page: Any) -> int:
    """How far the page scrolls sideways (0 = it fits the window)."""
    return int(page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth"))


def finish(page: Any, shots: Path, name: str) -> list[dict[str, Any]]:
    """Screenshot, then the layout and accessibility checks every page passes; returns axe's blocking findings."""
    page.screenshot(path=str(shots / f"{name}-{page.viewport_name}.png"), full_page=True)
    assert page_overflow_px(page) <= 0, f"{name} scrolls sideways by {page_overflow_px(page)} px"
    return axe_violations(page)
