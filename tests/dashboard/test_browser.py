"""The dashboard in a real headless Chromium (Debian's, driven by Playwright; no browser download):
log in through a fake OpenID provider, see the plan chart drawn from data published on a real broker, watch the
SOC change live, send an override and a mode change and see the answers. Screenshots go to ``artifacts/``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from shared.models import CommandResult
from shared.topics import Topics
from tests.dashboard import helpers
from tests.dashboard.fake_oidc import CLIENT_ID, CLIENT_SECRET, FakeOIDC
from tests.support.broker import free_port
from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.support.prereqs import needs

pytestmark = needs("chromium")
T = Topics()


@pytest.fixture
def provider() -> Iterator[FakeOIDC]:
    p = FakeOIDC().start()
    yield p
    p.stop()


def publish_world(probe, now: datetime) -> int:
    """Retained state as the other services would publish it; returns the plan's charge slots in view."""
    plan = helpers.plan(now, hours=36, charge_hours=(2, 3, 4))
    probe.publish(T.import_rates, helpers.rates(now).model_dump_json(), retain=True)
    probe.publish(T.forecast_pv, helpers.forecast(now, "pv").model_dump_json(), retain=True)
    probe.publish(T.forecast_load, helpers.forecast(now, "load").model_dump_json(), retain=True)
    probe.publish(T.battery_state, helpers.battery(now, 42.0).model_dump_json(), retain=True)
    probe.publish(T.plan, plan.model_dump_json(), retain=True)
    probe.publish(T.executor_mode, "auto", retain=True)
    probe.publish(T.executor_dry_run, "false", retain=True)
    summary = {
        "generated_at": now.isoformat(),
        "date": (now - timedelta(days=1)).date().isoformat(),
        "actual_cost_gbp": 1.5,
        "no_battery_cost_gbp": 2.75,
        "month": {"actual_cost_gbp": 20.1, "days": 4, "saved_vs_no_battery_gbp": 9.3},
        "since_install": {"actual_cost_gbp": 400.0, "days": 90, "saved_vs_no_battery_gbp": 151.2},
    }
    probe.publish(T.executor_daily_summary, summary, retain=True)
    for svc in ("pricing", "forecast", "planner", "executor"):
        probe.publish(T.status(svc), "online", retain=True)
    return sum(1 for s in plan.slots if s.action.value == "charge" and s.start >= now - timedelta(minutes=30))


def test_login_plan_live_soc_and_override_in_chromium(spawn, probe, provider, artifacts: Path) -> None:
    now = datetime.now(UTC)
    charge_slots = publish_world(probe, now)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    dash = spawn(
        "services.dashboard",
        env={
            "BATSCHED_DASHBOARD_PORT": str(port),
            "BATSCHED_DASHBOARD_HOST": "127.0.0.1",
            "BATSCHED_DASHBOARD_AUTH": "oidc",
            "BATSCHED_DASHBOARD_SESSION_SECRET": helpers.SECRET,
            "BATSCHED_OIDC_METADATA_URL": provider.metadata_url,
            "BATSCHED_OIDC_CLIENT_ID": CLIENT_ID,
            "BATSCHED_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "BATSCHED_AUTHORIZED_EMAILS": "alice@example.org",
            "BATSCHED_DASHBOARD_COMMAND_TIMEOUT_S": "10",
        },
        name="dashboard",
    )
    probe.wait_for(T.status("dashboard"), lambda m: m.text == "online", timeout=15)
    provider.user = {"sub": "u-1", "email": "alice@example.org", "email_verified": True}

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1360, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            # Login: / → /login → provider → /auth/callback → /
            page.goto(base + "/")
            page.wait_for_url(base + "/")
            assert provider.token_requests == 1
            expect(page.locator("#soc")).to_have_text("42.0")
            expect(page.locator("#live")).to_have_text("live")
            expect(page.locator("#services")).to_contain_text("running")
            expect(page.locator("#summary")).to_contain_text("Since install")
            expect(page.locator("#summary")).to_contain_text("£1.50")
            page.evaluate("window.__same_page = true")
            page.screenshot(path=str(artifacts / "dashboard-now.png"), full_page=True)

            # SOC changes live: a new battery/state on the bus, no reload.
            probe.publish(T.battery_state, helpers.battery(datetime.now(UTC), 57.5).model_dump_json(), retain=True)
            expect(page.locator("#soc")).to_have_text("57.5")
            assert page.evaluate("window.__same_page") is True

            # Plan chart from the published plan, rates and forecasts; hover shows a slot's reason.
            page.goto(base + "/plan")
            chart = page.locator("#plan-chart")
            expect(chart.locator(".main-svg").first).to_be_visible()
            expect(chart).to_have_attribute("data-charge", str(charge_slots))
            expect(page.locator("#comparison")).to_contain_text("£1.23")
            bars = chart.locator(".bars .point path")
            assert bars.count() > 40
            charge_bar = page.evaluate(
                "() => { const d = document.getElementById('plan-chart').data[0];"
                " return d.marker.color.indexOf('#1d7a3a'); }"
            )
            box = bars.nth(charge_bar).bounding_box()
            assert box is not None
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            expect(chart.locator(".hovertext").first).to_contain_text("among the cheapest hours")
            page.screenshot(path=str(artifacts / "dashboard-plan.png"), full_page=True)

            # Override: the command arrives on the bus; the answer (from the probe, as the executor) shows up.
            page.goto(base + "/control")
            expect(page.locator("#live")).to_have_text("live")
            page.select_option("#ov-action", "charge")
            page.fill("#ov-target", "90")
            mark = probe.mark()
            page.click("#f-override button[type=submit]")
            cmd = probe.wait_json(T.executor_override, lambda d: d.get("action") == "charge", timeout=10, after=mark)
            assert cmd["target_soc_pct"] == 90 and datetime.fromisoformat(cmd["until"]) > datetime.now(UTC)
            answer = CommandResult(
                generated_at=datetime.now(UTC), request_id=cmd["request_id"], status="ok", data={"until": cmd["until"]}
            )
            probe.publish(T.executor_override + "/result", answer.model_dump_json())
            expect(page.locator("#results")).to_contain_text("override charge accepted")

            # A refused command shows its error.
            mark = probe.mark()
            page.click("#f-replan button[type=submit]")
            cmd = probe.wait_json(T.planner_replan, timeout=10, after=mark)
            refused = CommandResult(
                generated_at=datetime.now(UTC), request_id=cmd["request_id"], status="error", error="planner busy"
            )
            probe.publish(T.planner_replan + "/result", refused.model_dump_json())
            expect(page.locator("#results")).to_contain_text("replan refused: planner busy")

            # Mode: /set, confirmed when the executor's retained mode echoes the new value.
            page.select_option("#mode", "hold")
            mark = probe.mark()
            page.click("#f-mode button[type=submit]")
            probe.wait_for(T.executor_mode_set, lambda m: m.text == "hold", timeout=10, after=mark)
            probe.publish(T.executor_mode, "hold", retain=True)
            expect(page.locator("#results")).to_contain_text("mode is now hold")
            expect(page.locator("#strip-mode")).to_have_text("mode hold")
            page.screenshot(path=str(artifacts / "dashboard-control.png"), full_page=True)

            # History: a decision published while the page is open appears in the table.
            page.goto(base + "/history")
            expect(page.locator("#history-count")).to_contain_text("0 decisions")
            probe.publish(T.executor_applied, helpers.decision(datetime.now(UTC)).model_dump_json())
            expect(page.locator("#spans details")).to_have_count(1)
            expect(page.locator("#spans")).to_contain_text("charge read back differently")
            expect(page.locator("#history-chart .main-svg").first).to_be_visible()
            page.screenshot(path=str(artifacts / "dashboard-history.png"), full_page=True)
            assert not errors, errors
        except Exception:
            print(dash.log()[-4000:])
            raise
        finally:
            browser.close()
