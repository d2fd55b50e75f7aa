"""Every dashboard page in Debian's Chromium at 1400×1000 and 390×844, with the points of issue 19 a household
notices, no sideways scrolling, axe-core with no serious or critical violation, and a screenshot each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.checks import finish
from tests.browser.conftest import Site
from tests.support.prereqs import needs

pytestmark = needs("chromium")


def test_now(page: Any, site: Site, shots: Path) -> None:
    page.goto(site.base + "/")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#headline")).to_contain_text("Charging until 05:00 to 90 %")
    assert finish(page, shots, "now") == []


def test_plan(page: Any, site: Site, shots: Path) -> None:
    page.goto(site.base + "/plan")
    expect(page.locator("#plan-chart .main-svg").first).to_be_visible()
    assert finish(page, shots, "plan") == []


def test_history(page: Any, site: Site, shots: Path) -> None:
    page.goto(site.base + "/history")
    expect(page.locator("#spans details").first).to_be_visible()
    assert finish(page, shots, "history") == []


def test_control(page: Any, site: Site, shots: Path) -> None:
    page.goto(site.base + "/control")
    expect(page.locator("#live")).to_have_text("live")
    assert finish(page, shots, "control") == []
