"""The dashboard as a process on a real broker: local-mode login link, /healthz, history kept across a
restart, SIGTERM stops the web server and the bus together and says offline, broker loss shows in /healthz."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from shared.topics import Topics
from tests.dashboard import helpers
from tests.support.broker import free_port

T = Topics()


def until(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Re-check ``check`` (an HTTP read of the service's state) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout}s")
        time.sleep(0.1)


def start(spawn, probe, port: int, name: str):
    mark = probe.mark()
    proc = spawn(
        "services.dashboard",
        env={"BATSCHED_DASHBOARD_AUTH": "local", "BATSCHED_DASHBOARD_PORT": str(port)},
        name=name,
    )
    probe.wait_for(T.status("dashboard"), lambda m: m.text == "online", timeout=15, after=mark)
    link = until(lambda: re.search(r"http://localhost:\d+/\?token=[\w-]+", proc.log()), what="login link in log")
    return proc, link.group(0)


def test_lifecycle_health_history_and_clean_stop(spawn, probe, broker, tmp_path) -> None:
    port = free_port()
    proc, link = start(spawn, probe, port, "dash-1")
    base = f"http://127.0.0.1:{port}"
    assert link.startswith(f"http://localhost:{port}/?token=")
    client = httpx.Client(base_url=base, timeout=5)
    assert client.get("/api/now").status_code == 401
    assert client.get("/?token=" + link.split("token=")[1]).status_code == 303
    assert client.get("/api/now").status_code == 200

    health = client.get("/healthz")
    assert health.status_code == 503 and any("Battery state" in r for r in health.json()["reasons"])
    now = datetime.now(UTC)
    probe.publish(T.import_rates, helpers.rates(now).model_dump_json(), retain=True)
    probe.publish(T.battery_state, helpers.battery(now, 48.0).model_dump_json(), retain=True)
    probe.publish(T.plan, helpers.plan(now).model_dump_json(), retain=True)
    until(lambda: client.get("/healthz").status_code == 200, what="healthy")

    # A decision is not retained on the bus: only the dashboard's own store can show it after a restart.
    probe.publish(T.executor_applied, helpers.decision(now, "keep-me").model_dump_json())
    until(lambda: client.get("/api/history").json()["rows"], what="decision recorded")

    mark = probe.mark()
    started = time.monotonic()
    assert proc.terminate(timeout=15) == 0
    assert time.monotonic() - started < 10
    probe.wait_for(T.status("dashboard"), lambda m: m.text == "offline", timeout=5, after=mark)
    assert "Traceback" not in proc.log()
    # The store was closed: its write-ahead log is in the file (a store left with one would open read-only on a
    # read-only data directory instead of refusing to start).
    assert (tmp_path / "data" / "dashboard.db").exists() and not (tmp_path / "data" / "dashboard.db-wal").exists()

    proc2, link2 = start(spawn, probe, port, "dash-2")
    assert link2 != link  # a new token each start
    client2 = httpx.Client(base_url=base, timeout=5)
    assert client2.get("/?token=" + link.split("token=")[1]).status_code == 401  # the old link is dead
    assert client2.get("/?token=" + link2.split("token=")[1]).status_code == 303
    rows = client2.get("/api/history").json()["rows"]
    assert [r["decision_id"] for r in rows] == ["keep-me"]
    today = client2.get("/api/history").json()["day"]
    yesterday = (date.fromisoformat(today) - timedelta(days=1)).isoformat()
    assert client2.get(f"/api/history?day={yesterday}").json()["rows"] == []  # the day filter
    assert client2.get("/api/history?day=someday").status_code == 422
    csv_text = client2.get("/api/history.csv").text
    assert csv_text.splitlines()[0].startswith("time,slot,mode") and "keep-me" in csv_text
    assert client2.get("/api/history/chart?days=1").json()["data"][0]["y"] == [48.0]

    broker.kill()
    reasons = until(lambda: (r := client2.get("/healthz")).status_code == 503 and r.json()["reasons"], what="unhealthy")
    assert "MQTT broker not connected" in reasons
    proc2.terminate()
