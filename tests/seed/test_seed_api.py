"""The original app's REST endpoints on the dashboard, called as its own page's JavaScript called them (fetch
with the session cookie, JSON, no CSRF token) and as its executor did (x-api-key), plus what it must refuse."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.executor.windows import WindowBoard
from shared.clock import RealClock
from tests.dashboard.fake_oidc import FakeOIDC
from tests.dashboard.helpers import InProcess, battery, login, rates, settings
from tests.executor.support import wait_until

LONDON = ZoneInfo("Europe/London")
KEY = "seed-keepalive-key-0123456789abcdef"
ALICE = {"sub": "u-1", "email": "alice@example.org", "email_verified": True}
JS = {"Content-Type": "application/json"}  # what the seed's addSchedule() sent; the browser adds the cookie


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOIDC]:
    p = FakeOIDC().start()
    yield p
    p.stop()


@pytest.fixture
def dash(tmp_path: Path, broker, provider: FakeOIDC, board: WindowBoard) -> Iterator[InProcess]:
    s = settings(tmp_path / "dash", provider, mqtt_port=broker.port, dashboard_api_key=KEY,
                 dashboard_command_timeout_s=5.0)  # fmt: skip
    d = InProcess(s, clock=RealClock())
    d.bus.start()
    assert d.bus.wait_connected(10)
    yield d
    d.bus.stop()


def local_field(days: int, hour: int, minute: int = 0) -> str:
    """What a datetime-local input holds: local wall time, no zone. A day the clocks change is moved on a week:
    01:30 does not exist on the spring one (the dashboard reads it as 02:00) and happens twice on the autumn one."""
    d = datetime.now(LONDON).date() + timedelta(days=days)
    if (
        datetime(d.year, d.month, d.day, tzinfo=LONDON).utcoffset()
        != (datetime(d.year, d.month, d.day, tzinfo=LONDON) + timedelta(days=1)).utcoffset()
    ):
        d += timedelta(days=7)
    return f"{d.isoformat()}T{hour:02d}:{minute:02d}"


def test_nothing_without_a_session_or_the_key(dash: InProcess) -> None:
    c = dash.client()
    for method, path in [("POST", "/putSchedule"), ("GET", "/getPendingSchedules"), ("DELETE", "/delSchedule/1"),
                         ("GET", "/status"), ("POST", "/update_status")]:  # fmt: skip
        assert c.request(method, path, json={}).status_code == 401, path
        assert c.request(method, path, json={}, headers={"x-api-key": KEY + "x"}).status_code == 401, path
        assert c.request(method, f"{path}?api_key={KEY}", json={}).status_code == 401, path  # never in a URL
        assert c.request(method, path, json={}, headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 401
    health = c.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok" and "time" in health.json()


def test_the_seed_pages_calls_with_a_session(dash: InProcess, provider: FakeOIDC) -> None:
    c = dash.client()
    assert login(c, provider, ALICE).status_code == 303
    # addSchedule(): the form's values, as strings
    r = c.post("/putSchedule", json={"start_time": local_field(1, 1, 30), "end_time": local_field(1, 2, 30),
                                     "target_soc": "90"}, headers=JS)  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["message"] == "Manual schedule added successfully!"
    new_id = r.json()["id"]
    # loadSchedules(): the table's fields
    wait_until(lambda: c.get("/getPendingSchedules").json(), 10, "the window listed")
    [row] = c.get("/getPendingSchedules").json()
    assert row["id"] == new_id and row["target_soc"] == 90 and row["source"] == "manual"
    assert row["start_time"] == local_field(1, 1, 30).replace("T", " ") + ":00"
    assert row["end_time"].endswith("02:30:00") and row["manual_override"] is True
    assert set(row) == {"id", "start_time", "end_time", "target_soc", "price_p_per_kwh", "manual_override",
                        "source", "mode"}  # fmt: skip
    # refreshStatus(): the card's fields
    status = c.get("/status").json()
    assert set(status) == {"executor_status_msg", "last_scheduler_run", "next_schedule_time", "active_schedule_id",
                           "current_price", "soc", "solar_power", "island", "uptime"}  # fmt: skip
    assert status["next_schedule_time"] == row["start_time"] and status["last_scheduler_run"] == "Not yet run"
    # the peak is refused, with the reason, as a message the page shows
    peak = c.post("/putSchedule", json={"start_time": local_field(1, 16, 30), "end_time": local_field(1, 17),
                                        "target_soc": "100"}, headers=JS)  # fmt: skip
    assert peak.status_code == 409 and "overlaps the peak 16:00–19:00" in peak.json()["message"]
    bad = c.post("/putSchedule", json={"start_time": "tomorrow", "end_time": ""}, headers=JS)
    assert bad.status_code == 422 and bad.json()["message"].startswith("Failed to add schedule")
    # the delete button
    gone = c.delete(f"/delSchedule/{new_id}")
    assert gone.json() == {"status": "ok", "message": f"Schedule {new_id} is deleted"}
    again = c.delete(f"/delSchedule/{new_id}")
    assert again.status_code == 404 and again.json()["status"] == "error"
    wait_until(lambda: c.get("/getPendingSchedules").json() == [], 10, "the list empty")


def test_cross_site_requests_cannot_use_the_session(dash: InProcess, provider: FakeOIDC) -> None:
    c = dash.client()
    login(c, provider, ALICE)
    body = {"start_time": local_field(1, 1), "end_time": local_field(1, 2), "target_soc": 80}
    evil = c.post("/putSchedule", json=body, headers={**JS, "Origin": "https://evil.example"})
    assert evil.status_code == 403
    fetch_meta = c.post("/putSchedule", json=body, headers={**JS, "Sec-Fetch-Site": "cross-site"})
    assert fetch_meta.status_code == 403
    form = c.post("/putSchedule", content="start_time=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form.status_code == 415  # a cross-site form cannot send JSON without a preflight
    assert c.delete("/delSchedule/1", headers={"Origin": "https://evil.example"}).status_code == 403
    assert (
        c.post("/update_status", json={"message": "x"}, headers={**JS, "Origin": "https://evil.example"}).status_code
        == 403
    )
    same = c.post(
        "/putSchedule", json=body, headers={**JS, "Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"}
    )
    assert same.status_code == 200


def test_the_seed_executor_with_its_key(dash: InProcess, probe, provider: FakeOIDC) -> None:
    now = datetime.now(UTC)
    probe.publish("batsched/battery/state", battery(now, 64.0).model_dump_json(), retain=True)
    probe.publish("batsched/pricing/import/rates", rates(now).model_dump_json(), retain=True)
    c = dash.client()
    key = {"x-api-key": KEY, **JS}
    # post_status_to_dashboard(): its EXECUTOR_STATUS keys
    r = c.post("/update_status", json={"message": "Idle — sleeping 0h 5m", "active_schedule_id": None, "soc": 64},
               headers=key)  # fmt: skip
    assert r.json() == {"status": "ok"}
    assert c.get("/api/now", headers=key).status_code == 401  # the key opens only the machine endpoints
    page = dash.client()
    login(page, provider, ALICE)
    [shown] = [e for e in page.get("/api/now").json()["external"] if e["source"] == "seed-executor"]
    assert shown["status"].startswith("Idle") and "soc=64" in shown["detail"]
    wait_until(lambda: dash.live.get("battery/state"), 10, "the battery state")
    status = c.get("/status", headers={"x-api-key": KEY}).json()
    assert status["soc"] == 64.0 and status["island"] == "on_grid" and status["solar_power"] == 150.0
    added = c.post("/putSchedule", json={"start_time": local_field(2, 3), "end_time": local_field(2, 4)}, headers=key)
    assert added.status_code == 200, added.text  # target_soc defaults to the seed's 98
    wait_until(lambda: c.get("/getPendingSchedules", headers=key).json(), 10, "listed")
    [row] = c.get("/getPendingSchedules", headers=key).json()
    assert row["target_soc"] == 98 and isinstance(row["price_p_per_kwh"], (float, str))
    assert c.delete(f"/delSchedule/{row['id']}", headers={"x-api-key": KEY}).json()["status"] == "ok"
    # batsched's own status shape still works on the same endpoint
    own = c.post("/update_status", json={"source": "ups", "status": "on_battery", "detail": "mains lost"}, headers=key)
    assert own.json() == {"ok": True}
