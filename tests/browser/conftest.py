"""One dashboard process on one broker for every browser test of a module (they only read its pages, and the
Control tests answer their own commands), one Debian Chromium, and a logged-in browser state to open pages with."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser import world
from tests.executor.support import sim_clock_env
from tests.support.broker import Broker, free_port
from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.support.probe import Probe
from tests.support.procs import ServiceProcess

VIEWPORTS = {"wide": {"width": 1400, "height": 1000}, "phone": {"width": 390, "height": 844}}


@dataclass
class Site:
    base: str
    probe: Probe
    proc: ServiceProcess
    facts: dict[str, Any]
    storage_state: dict[str, Any]


def _wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("site")
    broker = Broker(tmp / "broker").start()
    probe = Probe(broker.port).start()
    facts = world.publish(probe)
    _clock, clock_env = sim_clock_env(world.NOW, 1.0)
    port = free_port()
    proc = ServiceProcess(
        "services.dashboard",
        {
            **broker.env,
            **clock_env,
            "BATSCHED_DATA_DIR": str(tmp / "data"),
            "BATSCHED_DASHBOARD_AUTH": "local",
            "BATSCHED_DASHBOARD_PORT": str(port),
            "BATSCHED_DASHBOARD_COMMAND_TIMEOUT_S": "10",
            "BATSCHED_TIMEZONE": "Europe/London",
        },
        tmp / "dashboard.log",
    ).start()
    try:
        probe.wait_for(world.T.status("dashboard"), lambda m: m.text == "online", timeout=20)
        token = _wait(lambda: re.search(r"\?token=([\w-]+)", proc.log()), 10, "login link in the log").group(1)
        base = f"http://127.0.0.1:{port}"
        client = httpx.Client(base_url=base, timeout=5)
        assert client.get(f"/?token={token}").status_code == 303
        # The retained world has arrived, so the dashboard's subscription stands: now the (unretained) decisions.
        _wait(lambda: client.get("/api/now").json()["battery"], 15, "retained state received")
        decisions = world.decisions(world.NOW)
        for d in decisions:
            probe.publish(world.T.executor_applied, d.model_dump_json())
        total = lambda: sum(client.get(f"/api/history?day={day}").json()["decisions"] for day in world.DAYS)  # noqa: E731
        _wait(lambda: total() == len(decisions), 15, "decisions stored")
        cookies = [
            {"name": c.name, "value": c.value, "domain": "127.0.0.1", "path": "/", "httpOnly": True, "secure": False,
             "sameSite": "Lax", "expires": -1}
            for c in client.cookies.jar
        ]  # fmt: skip
        yield Site(base, probe, proc, facts, {"cookies": cookies, "origins": []})
    except Exception:
        print(proc.log()[-4000:])
        raise
    finally:
        proc.kill()
        probe.stop()
        broker.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture(params=list(VIEWPORTS), ids=list(VIEWPORTS))
def page(request: pytest.FixtureRequest, browser: Any, site: Site) -> Iterator[Any]:
    """A logged-in page at 1400×1000 or 390×844, in New York's time zone with a US locale (12-hour clocks): the
    pages must still show the system's time, 24-hour."""
    context = browser.new_context(
        viewport=VIEWPORTS[request.param],
        storage_state=site.storage_state,
        timezone_id="America/New_York",
        locale="en-US",
    )
    pg = context.new_page()
    pg.viewport_name = request.param  # type: ignore[attr-defined]
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.js_errors = errors  # type: ignore[attr-defined]
    yield pg
    context.close()
    assert not errors, errors


@pytest.fixture
def shots(artifacts: Path) -> Path:
    out = artifacts / "dashboard"
    out.mkdir(parents=True, exist_ok=True)
    return out
