"""Control actions over a real broker: each sends the matching MQTT command, and the page is told the outcome
(confirmed, refused, or no answer in time) — never a silent success."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.dashboard.control import Controller
from shared.clock import RealClock
from shared.models import CommandResult
from tests.dashboard.helpers import InProcess, settings


@pytest.fixture
def dash(tmp_path: Path, broker) -> Iterator[InProcess]:
    s = settings(tmp_path, mqtt_port=broker.port, dashboard_command_timeout_s=3.0)
    d = InProcess(s, clock=RealClock())
    d.bus.start()
    assert d.bus.wait_connected(10)
    yield d
    d.bus.stop()


def controller(dash: InProcess, timeout: float | None = None) -> Controller:
    return Controller(dash.bus, dash.live, dash.clock, timeout or dash.settings.dashboard_command_timeout_s)


def echo_when_set(probe, set_topic: str, state_topic: str, value: str | None = None) -> None:
    """Act as the owning service: answer the next ``/set`` by republishing the retained state."""

    def on_set() -> None:
        seen = probe.wait_for(set_topic, timeout=5)
        probe.publish(state_topic, value if value is not None else seen.text, retain=True)

    threading.Thread(target=on_set, daemon=True).start()


def test_planner_setting_is_confirmed_by_its_retained_echo(dash: InProcess, probe) -> None:
    t = dash.bus.topics
    echo_when_set(probe, t.planner_setting_set("min_soc_pct"), t.planner_setting("min_soc_pct"), "25.0")
    out = controller(dash).set_planner("min_soc_pct", "25")
    assert out.ok and out.message == "min_soc_pct is now 25.0"
    assert probe.latest(t.planner_setting_set("min_soc_pct")).text == "25"


def test_a_setting_changed_to_something_else_is_an_error(dash: InProcess, probe) -> None:
    t = dash.bus.topics
    echo_when_set(probe, t.executor_mode_set, t.executor_mode, "auto")  # the executor kept auto
    out = controller(dash).set_mode("force_charge")
    assert not out.ok and out.status == 502 and "asked for force_charge, it is auto" in out.message


def test_dry_run_accepts_the_owners_spelling(dash: InProcess, probe) -> None:
    t = dash.bus.topics
    echo_when_set(probe, t.executor_dry_run_set, t.executor_dry_run, "ON")
    assert controller(dash).set_dry_run(True).ok
    assert probe.latest(t.executor_dry_run_set).text == "true"


def test_no_echo_is_a_timeout_error_naming_the_topic(dash: InProcess, probe) -> None:
    out = controller(dash, timeout=0.5).set_planner("peak_start_local", "16:30")
    assert not out.ok and out.status == 504
    assert "batsched/planner/peak_start_local" in out.message and "within 0.5 s" in out.message


@pytest.mark.parametrize(
    ("name", "value"),
    [("min_soc_pct", "150"), ("peak_end_local", "25:00"), ("max_charge_price_gbp", "cheap"), ("nope", "1")],
)
def test_invalid_settings_are_refused_without_sending(dash: InProcess, probe, name: str, value: str) -> None:
    mark = probe.mark()
    out = controller(dash).set_planner(name, value)
    assert not out.ok and out.status == 422
    assert not [m for m in probe.on("batsched/planner/#") if m.at >= mark]


def test_override_round_trip_and_refusal(dash: InProcess, probe) -> None:
    t = dash.bus.topics
    until = datetime.now(UTC) + timedelta(hours=1)

    def answer(status: str, error: str | None = None) -> None:
        cmd = probe.wait_json(t.executor_override, timeout=5, after=mark)
        result = CommandResult(generated_at=datetime.now(UTC), request_id=cmd["request_id"], status=status, error=error)
        probe.publish(t.executor_override + "/result", result.model_dump_json())

    mark = probe.mark()
    threading.Thread(target=answer, args=("ok",), daemon=True).start()
    out = controller(dash).override("hold", until, None)
    assert out.ok and out.message == "override hold accepted"

    mark = probe.mark()
    threading.Thread(target=answer, args=("error", "peak window: charging blocked"), daemon=True).start()
    out = controller(dash).override("charge", until, 90)
    assert not out.ok and out.status == 502 and "peak window: charging blocked" in out.message


def test_override_input_checks(dash: InProcess) -> None:
    c = controller(dash)
    assert c.override("charge", None, None).status == 422  # needs an end time
    assert c.override("charge", datetime.now(UTC) - timedelta(minutes=1), None).status == 422
    assert c.override("explode", datetime.now(UTC) + timedelta(hours=1), None).status == 422
    assert c.set_mode("turbo").status == 422


def test_a_refused_setting_is_reported_with_the_owners_reason_at_once(dash: InProcess, probe) -> None:
    t = dash.bus.topics
    set_topic = t.planner_setting_set("peak_start_local")

    def refuse() -> None:
        probe.wait_for(set_topic, timeout=5)
        refusal = CommandResult(
            generated_at=datetime.now(UTC),
            request_id="set",
            status="error",
            data={"value": "16:30"},
            error="refused: the peak window cannot start after it ends",
        )
        probe.publish(f"{set_topic}/result", refusal.model_dump_json())

    threading.Thread(target=refuse, daemon=True).start()
    started = datetime.now(UTC)
    out = controller(dash, timeout=10).set_planner("peak_start_local", "16:30")
    assert not out.ok and out.status == 502
    assert "cannot start after it ends" in out.message
    assert datetime.now(UTC) - started < timedelta(seconds=5)  # not the 10 s timeout


def test_control_times_are_read_on_the_system_clock_and_zone(tmp_path) -> None:
    """The Control page sends a local day and a 24-hour HH:MM; the server reads them in the system's zone (the
    browser's zone never enters), refuses a 12-hour time with one line, and stamps answers with the system's time."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from services.dashboard.local_time import control_clock, parse_local
    from shared.clock import FixedClock
    from tests.dashboard.helpers import InProcess, settings

    london = ZoneInfo("Europe/London")
    assert parse_local("2024-07-15", "17:30", london) == datetime(2024, 7, 15, 16, 30, tzinfo=UTC)
    assert parse_local("2024-01-15", "17:30", london) == datetime(2024, 1, 15, 17, 30, tzinfo=UTC)
    clock = control_clock(datetime(2024, 7, 15, 1, 10, tzinfo=UTC), london)
    assert clock["now_hhmm"] == "02:10" and clock["later_hhmm"] == "04:10"
    assert [d["label"] for d in clock["days"][:3]] == ["Today, Mon 15 Jul", "Tomorrow, Tue 16 Jul", "Wed 17 Jul"]
    dash = InProcess(settings(tmp_path, dashboard_auth="local", dashboard_session_secret=None),
                     clock=FixedClock(datetime(2024, 7, 15, 1, 10, 5, tzinfo=UTC)), local_token="tok")  # fmt: skip
    client = dash.client()
    client.get("/?token=tok")
    token = client.get("/control").text.split('name="csrf-token" content="')[1].split('"')[0]
    r = client.post("/api/control/override", headers={"X-CSRF-Token": token},
                    json={"action": "charge", "until_day": "2024-07-15", "until_hhmm": "7:30pm"})  # fmt: skip
    assert r.status_code == 422 and "not HH:MM on a 24-hour clock" in r.json()["error"]
    assert r.json()["at"] == "02:10:05"


def test_the_override_card_shows_the_override_in_force_live(tmp_path) -> None:
    """The executor's retained ``executor/override`` reaches the Control page's data (what the page's live stream
    renders into the Override card): in the system's zone and 24-hour, then none once it is cancelled."""
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from shared.bus import Incoming
    from shared.clock import FixedClock
    from shared.models import Action, OverrideState
    from shared.topics import Topics

    now = datetime(2024, 7, 15, 1, 10, tzinfo=UTC)  # 02:10 in London
    s = settings(tmp_path, dashboard_auth="local", dashboard_session_secret=None, timezone="Europe/London")
    dash = InProcess(s, clock=FixedClock(now), local_token="tok")
    client = dash.client()
    client.get("/?token=tok")
    page = client.get("/control").text
    assert 'id="cur-override"' in page.split('id="f-override"')[1].split("</form>")[0]  # in the Override card
    assert client.get("/api/now").json()["override"]["text"].startswith("Not known yet")

    topic = Topics().executor_override_state
    state = OverrideState(generated_at=now, action=Action.CHARGE, until=datetime(2024, 7, 15, 4, 30, tzinfo=UTC),
                          target_soc_pct=90)  # fmt: skip
    dash.live.on_message(Incoming(topic, state.to_json(), True))
    doc = client.get("/api/now").json()
    assert doc["override"]["text"] == "In force: charge until 05:30 (to 90 %)"  # not 04:30 (UTC), not 5:30 AM
    assert doc["headline"] == "Charging until 05:30 to 90 %, because you set an override."
    assert ZoneInfo(doc["clock"]["zone"]) == ZoneInfo("Europe/London")
    dash.live.on_message(Incoming(topic, OverrideState(generated_at=now).to_json(), True))
    assert client.get("/api/now").json()["override"] == {"in_force": False, "action": None, "text": "None in force"}
