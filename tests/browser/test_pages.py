"""Every dashboard page in Debian's Chromium at 1400×1000 and 390×844, with the points of issue 19 a household
notices, no sideways scrolling, axe-core with no serious or critical violation, and a screenshot each.

The browser runs in New York's time zone with a US locale; the system's clock is 02:10 in London: every time on
the pages must be London's, 24-hour."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from shared.models import Action, CommandResult, OverrideState
from tests.browser import world
from tests.browser.checks import finish
from tests.browser.conftest import VIEWPORTS, Site
from tests.support.prereqs import needs

pytestmark = [needs("chromium"), pytest.mark.xdist_group("browser")]  # one dashboard and browser per run
T = world.T


def test_now(page: Any, site: Site, shots: Path) -> None:
    page.goto(site.base + "/")
    expect(page.locator("#live")).to_have_text("live")
    # One plain sentence on top, then the next charge (tomorrow night's, not the one running now).
    expect(page.locator("#headline")).to_have_text(
        "Charging until 05:00 to 90 % at 12.3p — among the cheapest hours before the energy is needed."
    )
    expect(page.locator("#next-charge")).to_contain_text("Tue 02:00–05:00 to 90 %")
    # Signs and words agree: charging and importing, never "-3.30 kW in".
    flows = page.locator("#flows")
    expect(flows).to_contain_text("charging 3.30 kW")
    expect(flows).to_contain_text("importing 3.85 kW")
    assert "-" not in flows.inner_text()
    # Every service, accounting included.
    services = page.locator("#services")
    for svc in world.SERVICES:
        expect(services).to_contain_text(svc)
    expect(services.locator("tr", has_text="accounting")).to_contain_text("running")
    # Money in sentences: no raw keys, no negative saving.
    expect(page.locator("#money-today")).to_have_text("Paid £0.42; against no battery saved £1.58")
    summary = page.locator("#summary")
    expect(summary).to_contain_text("the battery saved £1.25")
    assert "£-" not in summary.inner_text() and "first date" not in summary.inner_text()
    assert finish(page, shots, "now") == []


def test_plan(page: Any, site: Site, shots: Path) -> None:
    page.goto(site.base + "/plan")
    chart = page.locator("#plan-chart")
    expect(chart.locator(".main-svg").first).to_be_visible()
    expect(chart).to_have_attribute("data-windows", "1")
    estimated = int(chart.get_attribute("data-estimated") or 0)
    assert estimated > 0  # the estimate channel's slots after the published prices are marked
    expect(chart).to_contain_text("your charge window to 80 %")
    expect(page.locator("#plan-notes")).to_contain_text("estimate")
    expect(page.locator("#plan-end")).to_contain_text(re.compile(r"leaves the battery at 48 %, counted as worth £1.10"))
    # The comparison values the energy each strategy leaves alike: the plan saves against every one of them.
    table = page.locator("#comparison")
    expect(table.locator("tr[data-key=self_use]")).to_contain_text("saves £0.36")
    expect(table.locator("tr[data-key=no_battery]")).to_contain_text("saves £0.61")
    expect(table.locator("tr[data-key=seed_rule]")).to_contain_text("saves £0.05")
    expect(table.locator("tr[data-key=self_use]")).to_contain_text("10 %")
    assert "£-" not in table.inner_text() and "costs" not in table.inner_text()
    expect(page.locator("#comparison-note")).to_contain_text("valued at the plan's own price")
    assert finish(page, shots, "plan") == []


def test_history(page: Any, site: Site, shots: Path) -> None:
    page.goto(site.base + "/history")
    spans = page.locator("#spans details")
    expect(spans.first).to_be_visible()
    expect(page.locator("#day-text")).to_have_text("Monday 15 July 2024")
    assert spans.count() < 10  # 26 decisions read as a handful of runs
    first = spans.first
    expect(first.locator("summary")).to_contain_text("charge")
    first.locator("summary").click()
    expect(first.locator("li.dec").first).to_be_visible()
    text = page.locator("#spans").inner_text()
    assert re.search(r"\b0[0-2]:\d\d:\d\d\b", text)  # to the second, London time (New York's would be 21:xx)
    assert not re.search(r"\d{4}-\d\d-\d\dT|\{'|'\}|\.\d{6}", text)  # no ISO stamps, reprs or microseconds
    # Paged by day: the evening before, with the price rule and the misread write in words.
    page.click("#day-prev")
    expect(page.locator("#day-text")).to_have_text("Sunday 14 July 2024")
    problem = page.locator("#spans details.problem")
    expect(problem).to_have_count(1)
    problem.locator("summary").click()
    expect(problem).to_contain_text("Price limit: price 31.20p/kWh above limit 20.00p/kWh")
    expect(problem).to_contain_text("sent backup only, grid charging on")
    assert "{'" not in page.locator("#spans").inner_text()
    csv = page.evaluate("async () => (await fetch('/api/history.csv?day=2024-07-14')).text()")
    assert csv.splitlines()[0] == "time,slot,mode,dry_run,requested,action,outcome,commanded,observed,match,rules," \
        "soc_pct,error,decision_id"  # fmt: skip
    assert finish(page, shots, "history") == []


def test_money(page: Any, site: Site, shots: Path) -> None:
    page.goto(site.base + "/money")
    expect(page.locator("#money-state")).to_have_text(
        "Today so far, Mon 15 Jul: paid £0.42; against no battery saved £1.58, against self-use saved £1.28."
    )
    days = page.locator("#money-days tbody tr")
    expect(days).to_have_count(3)
    expect(days.first).to_contain_text("Sun 14 Jul")
    # A real loss is said as one and marked; no negative figure anywhere.
    loss = days.first.locator("td.bad")
    expect(loss).to_have_text("cost £0.10 more")
    expect(days.first).to_contain_text("£0.20 drawn from the battery")
    months = page.locator("#money-months tbody tr")
    expect(months).to_have_count(2)
    expect(months.first).to_contain_text("July 2024")
    expect(months.last).to_contain_text("Since install")
    expect(page.locator("#money-meanings dt")).to_have_count(6)
    expect(page.locator("#money-note")).to_contain_text("valued at the plan's own value")
    expect(page.locator("#money-chart .main-svg").first).to_be_visible()
    assert "£-" not in page.locator("main").inner_text()
    assert finish(page, shots, "money") == []


def placeholder_cut(page: Any, selector: str) -> float:
    """How many px of an input's placeholder do not fit its box (0 = all of it shows)."""
    return page.evaluate(
        """(sel) => { const el = document.querySelector(sel); const cs = getComputedStyle(el);
          const ctx = document.createElement("canvas").getContext("2d"); ctx.font = cs.font;
          const room = el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight)
            - (el.type === "number" ? 20 : 0);
          return Math.max(0, ctx.measureText(el.placeholder).width - room); }""",
        selector,
    )


def test_control(page: Any, site: Site, shots: Path) -> None:
    page.goto(site.base + "/control")
    expect(page.locator("#live")).to_have_text("live")
    expect(page.locator("#ctl-now")).to_contain_text(re.compile(r"^02:1\d on Mon 15 Jul"))
    expect(page.locator("#ov-time")).to_have_value(re.compile(r"^04:1\d$"))  # two hours on, the system's clock
    expect(page.locator("#ov-day option").first).to_have_text("Today, Mon 15 Jul")
    for sel in ("#ov-target", "#w-target"):
        assert placeholder_cut(page, sel) == 0, sel
    expect(page.locator("#s-max_charge_price_gbp")).to_have_value("20")
    expect(page.locator("label[for=s-max_charge_price_gbp]")).to_contain_text("p/kWh")
    expect(page.locator("#windows tbody tr[data-id]")).to_have_count(1)
    expect(page.locator("#cur-override")).to_have_text("None in force")
    # A command's answer is stamped with the system's time (02:1x), not the browser's (21:1x, 9:1x PM).
    mark = site.probe.mark()
    page.click("#f-replan button[type=submit]")
    cmd = site.probe.wait_json(T.planner_replan, timeout=10, after=mark)
    answer = CommandResult(generated_at=datetime.now(UTC), request_id=cmd["request_id"], status="ok")
    site.probe.publish(T.planner_replan + "/result", answer.model_dump_json())
    expect(page.locator("#results li").first).to_have_text(re.compile(r"^02:1\d:\d\d — replan accepted$"))
    # An override typed as a day and a 24-hour time is sent as that time in London.
    page.select_option("#ov-day", "2024-07-15")
    page.fill("#ov-time", "17:30")
    mark = site.probe.mark()
    page.click("#f-override button[type=submit]")
    cmd = site.probe.wait_json(T.executor_override, lambda d: d.get("action") == "charge", timeout=10, after=mark)
    assert datetime.fromisoformat(cmd["until"]) == datetime(2024, 7, 15, 16, 30, tzinfo=UTC)
    refused = CommandResult(generated_at=datetime.now(UTC), request_id=cmd["request_id"], status="error",
                            error="charging in the peak 16:00–19:00 is not allowed")  # fmt: skip
    site.probe.publish(T.executor_override + "/result", refused.model_dump_json())
    expect(page.locator("#results li").first).to_contain_text("override charge refused")
    page.fill("#ov-time", "7pm")  # a 12-hour time is not taken: the field says so before anything is sent
    expect(page.locator("#ov-time:invalid")).to_have_count(1)
    # The override in force, as the executor says it (retained), arrives live: London's time, 24-hour.
    until = datetime(2024, 7, 15, 4, 30, tzinfo=UTC)
    state = OverrideState(generated_at=world.NOW, action=Action.CHARGE, until=until, target_soc_pct=90)
    site.probe.publish(T.executor_override_state, state.model_dump_json(), retain=True)
    try:
        expect(page.locator("#cur-override")).to_have_text("In force: charge until 05:30 (to 90 %)")
        assert finish(page, shots, "control") == []
    finally:
        site.probe.publish(T.executor_override_state, OverrideState(generated_at=world.NOW).model_dump_json(),
                           retain=True)  # fmt: skip


def printed_links(site: Site) -> int:
    return len(set(re.findall(r"\?token=([\w-]+)", site.proc.log())))


FAVICON_STATUS = "async () => (await fetch('/favicon.ico', {redirect: 'manual'})).status"


@pytest.mark.parametrize("name", list(VIEWPORTS))
def test_login(browser: Any, site: Site, shots: Path, name: str) -> None:
    """Logged out: any page leads to the login page, which has a favicon (not a redirect) and a button that prints
    a new one-time link in the log; a spent or wrong link is refused with that button at hand."""
    context = browser.new_context(viewport=VIEWPORTS[name])
    page = context.new_page()
    page.viewport_name = name
    icons: list[int] = []
    page.on("response", lambda r: icons.append(r.status) if "favicon" in r.url else None)
    page.goto(site.base + "/history")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fhistory$"))
    expect(page.locator("h1")).to_have_text("Log in")
    expect(page.locator("main")).to_contain_text("works once and for 10 minutes")
    assert page.evaluate(FAVICON_STATUS) == 200 and set(icons) <= {200}, icons
    links_before = printed_links(site)
    page.click("text=Print a new login link in the log")
    expect(page.locator("h1")).to_have_text("New link printed")
    if "a moment ago" not in page.locator("main").inner_text():
        assert printed_links(site) == links_before + 1
    page.goto(site.base + "/?token=spent-or-wrong")
    expect(page.locator("main")).to_contain_text("already used or older than 10 minutes")
    expect(page.locator("button")).to_contain_text("Print a new login link")
    assert finish(page, shots, "login") == []
    context.close()
