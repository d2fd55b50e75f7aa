"""compose.yaml + compose.sim.yaml on a real Docker engine, as a household runs them (``make test-compose``).

The run script starts a private engine (and stand-ins for the base images where no registry answers); this module
builds the image, brings the stack up with every host port moved to a free loopback port, and checks what a user
relies on: every container healthy; the plan and the executor's decisions reach a tool on the host as the
read-only user, over plain MQTT and over TLS; the dashboard opens from the host with the link in its log; stopping
the executor hands the battery back within its stop grace period; ``down`` then ``up`` keeps the stores; inside
the Compose network the broker refuses anonymous clients and one service writing another's topics.
Figures (build time, time to healthy, image size, memory) go to ``$BATSCHED_STACK_STATE/figures.json``.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from shared.topics import Topics
from tests.deploy.project_broker import User
from tests.deploy.stack import CONTAINERS, IMAGE, ROOT, Stack, run
from tests.support.probe import Probe

pytestmark = [
    pytest.mark.compose,
    pytest.mark.skipif(not os.environ.get("BATSCHED_STACK_TESTS"), reason="needs a Docker engine: make test-compose"),
]
T = Topics()
SIM_START = "2024-02-12T00:30:00Z"  # half past midnight: cheap overnight prices, hours before the peak
NOT_AUTHORIZED = 135
BASELINE = {"operational_mode": "self_consumption", "backup_reserve_percent": 20, "grid_charging": False}


def stop_grace_s() -> float:
    raw = str(yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["executor"]["stop_grace_period"])
    return float(raw.rstrip("s"))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    s = Stack(Path(os.environ["BATSCHED_STACK_STATE"]))
    s.prepare(SIM_START)
    try:
        s.figures["build_s"] = round(s.build(), 1)
        started = time.monotonic()
        s.compose("up", "-d", timeout=600)
        s.figures["up_to_healthy_s"] = round(s.wait_healthy() + 0, 1)
        s.figures["up_command_s"] = round(time.monotonic() - started - s.figures["up_to_healthy_s"], 1)
        yield s
    finally:
        logs = s.logs()
        artifacts = ROOT / "artifacts"
        artifacts.mkdir(exist_ok=True)
        (artifacts / "compose-logs.txt").write_text(logs)
        s.compose("down", "-v", "--remove-orphans", "-t", "60", timeout=300, check=False)
        (s.state / "compose-down").unlink(missing_ok=True)
        (s.state / "figures.json").write_text(json.dumps(s.figures, indent=2))


@pytest.fixture(scope="module")
def reader(stack: Stack) -> Iterator[Probe]:
    """A tool on the host (MQTT Explorer, say): the read-only user on the published plain port."""
    p = Probe(
        stack.ports["BATSCHED_MQTT_HOST_PORT"], subscribe="#", username="readonly", password=stack.password("readonly")
    )
    p.start(timeout=20)
    yield p
    p.stop()


def controller(stack: Stack) -> User:
    u = User(stack.ports["BATSCHED_MQTT_HOST_PORT"], "homeassistant", stack.password("homeassistant"))
    assert u.connect() == 0
    return u


def test_every_container_is_healthy_and_the_figures(stack: Stack) -> None:
    states = stack.states()
    assert {c: states.get(c) for c in CONTAINERS} == dict.fromkeys(CONTAINERS, "healthy")
    base = (os.environ.get("BATSCHED_BASE_STANDIN") and "stand-in") or "pulled"
    python_tag = re.search(r"(?m)^ARG PYTHON_IMAGE=(\S+)$", (ROOT / "Dockerfile").read_text()).group(1)
    image, base_mb = stack.image_mb(IMAGE), stack.image_mb(python_tag)
    stack.figures.update(
        {
            "image_mb": round(image),
            "base_image_mb": round(base_mb),
            "base_image": f"{python_tag} ({base})",
            "image_layers_over_base_mb": round(image - base_mb),
            "memory": stack.memory(),
        }
    )


def test_plan_and_executor_decisions_reach_a_host_tool_as_the_readonly_user(stack: Stack, reader: Probe) -> None:
    plan = reader.wait_json(T.plan, lambda d: bool(d.get("slots")), timeout=180)
    assert plan["plan_id"] and len(plan["slots"]) >= 16
    decision = reader.wait_json(T.executor_applied, lambda d: bool(d.get("decision_id")), timeout=180)
    assert decision["mode"] in ("auto", "force_charge", "hold", "off")
    assert reader.wait_for(T.status("executor")).text == "online"
    # the read-only user reads, never writes
    ro = User(stack.ports["BATSCHED_MQTT_HOST_PORT"], "readonly", stack.password("readonly"))
    try:
        assert ro.connect() == 0
        assert ro.publish(T.executor_mode_set, "off") == NOT_AUTHORIZED
    finally:
        ro.close()


def tls_read(port: int, ca: Path | None, password: str, topic: str, transport: str = "tcp") -> Any:
    """Log in as readonly over TLS and return the retained message on ``topic`` (or the connection error)."""
    got: dict[str, Any] = {}
    done = threading.Event()
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"tls-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5, transport=transport
    )
    c.tls_set(ca_certs=str(ca) if ca else None, cert_reqs=ssl.CERT_REQUIRED)
    c.username_pw_set("readonly", password)
    c.on_connect = lambda cl, _u, _f, rc, _p: cl.subscribe(topic, qos=1) if rc == 0 else done.set()
    c.on_message = lambda _c, _u, msg: (got.__setitem__("payload", msg.payload), done.set())
    try:
        c.connect("127.0.0.1", port, keepalive=10)
    except (ssl.SSLError, OSError) as exc:
        return exc
    c.loop_start()
    try:
        done.wait(20)
    finally:
        c.disconnect()
        c.loop_stop()
    return got.get("payload")


def test_tls_listeners_serve_the_lan_with_the_private_ca(stack: Stack, reader: Probe) -> None:
    reader.wait_json(T.plan, timeout=180)
    ca = stack.project / "secrets" / "mqtt_ca.crt"
    pw = stack.password("readonly")
    for port, transport in (("BATSCHED_MQTTS_HOST_PORT", "tcp"), ("BATSCHED_MQTT_WSS_HOST_PORT", "websockets")):
        payload = tls_read(stack.ports[port], ca, pw, T.plan, transport)
        assert isinstance(payload, bytes) and json.loads(payload)["slots"], f"{port}: {payload!r}"
        # a client that does not trust the private CA gets no connection
        refused = tls_read(stack.ports[port], None, pw, T.plan, transport)
        assert isinstance(refused, ssl.SSLError), f"{port}: {refused!r}"


def test_the_dashboard_opens_from_the_host_with_the_link_in_its_log(stack: Stack) -> None:
    port = stack.ports["BATSCHED_DASHBOARD_HOST_PORT"]
    base = f"http://127.0.0.1:{port}"
    anonymous = httpx.get(f"{base}/", timeout=10)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    link = re.search(r"open (http://localhost:(\d+)/\?token=([\w-]+))", stack.logs("dashboard"))
    assert link, "no login link in `docker compose logs dashboard`"
    assert int(link.group(2)) == port, "the link names the published port"
    with httpx.Client(base_url=base, timeout=10) as browser:
        assert browser.get(f"/?token={link.group(3)}").status_code == 303
        page = browser.get("/")
        assert page.status_code == 200 and "batsched" in page.text.lower()
        now = browser.get("/api/now")
        assert now.status_code == 200 and now.json()


INSIDE = r"""
import json, socket, threading, uuid
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

def session(user, password):
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"inside-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    if user:
        c.username_pw_set(user, password)
    state = {"acks": {}}
    ev, cond = threading.Event(), threading.Condition()
    def on_connect(_c, _u, _f, rc, _p):
        state["rc"] = int(getattr(rc, "value", rc)); ev.set()
    def on_publish(_c, _u, mid, rc, _p):
        with cond:
            state["acks"][mid] = int(getattr(rc, "value", rc)); cond.notify_all()
    c.on_connect, c.on_publish = on_connect, on_publish
    c.connect("mosquitto", 1883, keepalive=10)
    c.loop_start()
    ev.wait(10)
    def publish(topic):
        info = c.publish(topic, "inside-test", qos=1)
        with cond:
            cond.wait_for(lambda: info.mid in state["acks"], 10)
        return state["acks"].get(info.mid)
    return c, state, publish

out = {}
c, state, _ = session(None, None)
out["anonymous"] = state.get("rc"); c.loop_stop()
c, state, _ = session("planner", "wrong-password")
out["wrong_password"] = state.get("rc"); c.loop_stop()
password = open("/run/secrets/mqtt_password").read().strip()
c, state, publish = session("planner", password)
out["planner"] = state.get("rc")
out["own"] = publish("batsched/planner/inside-test")
out["battery_state"] = publish("batsched/battery/state")
out["pricing_current"] = publish("batsched/pricing/import/current")
out["executor_status"] = publish("batsched/executor/status")
c.disconnect(); c.loop_stop()
try:
    socket.create_connection(("mosquitto", 1880), timeout=5).close()
    out["healthcheck_listener"] = "reachable"
except OSError as exc:
    out["healthcheck_listener"] = type(exc).__name__
print(json.dumps(out))
"""


def test_inside_the_network_the_broker_refuses_anonymous_and_cross_service_writes(stack: Stack) -> None:
    done = stack.exec_python("planner", INSIDE)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["anonymous"] == NOT_AUTHORIZED and out["wrong_password"] != 0
    assert out["planner"] == 0 and out["own"] in (0, 16)  # 16: accepted, no subscriber
    assert out["battery_state"] == out["pricing_current"] == out["executor_status"] == NOT_AUTHORIZED, out
    # the healthcheck's password-less listener is the broker container's own loopback only
    assert out["healthcheck_listener"] in ("ConnectionRefusedError", "TimeoutError"), out


def test_stopping_the_executor_hands_the_battery_back_within_its_grace_period(stack: Stack, reader: Probe) -> None:
    ha = controller(stack)
    try:
        assert ha.publish(T.executor_mode_set, "force_charge") in (0, 16)
    finally:
        ha.close()
    deadline = time.monotonic() + 120
    while not stack.netzero_state()["config"]["grid_charging"]:
        assert time.monotonic() < deadline, f"the executor never charged: {stack.netzero_state()}"
        time.sleep(1)
    grace = stop_grace_s()
    started = time.monotonic()
    stack.compose("stop", "executor", timeout=grace + 60)
    stopped_s = time.monotonic() - started
    stack.figures["executor_stop_s"] = round(stopped_s, 1)
    config = stack.netzero_state()["config"]
    assert {k: config[k] for k in BASELINE} == BASELINE, config
    assert stopped_s < grace, f"stop took {stopped_s:.1f}s, the grace period is {grace:.0f}s"
    assert reader.wait_for(T.status("executor"), lambda m: m.text == "offline", timeout=10)
    stack.compose("start", "executor")
    stack.wait_healthy()


def sqlite(stack: Stack, service: str, db: str, query: str) -> Any:
    code = (
        "import json, sqlite3\n"
        f"db = sqlite3.connect('file:/data/{db}?mode=ro', uri=True)\n"
        f"print(json.dumps(db.execute({query!r}).fetchall()))"
    )
    done = stack.exec_python(service, code)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_down_then_up_keeps_the_journal_prices_and_planner_settings(stack: Stack, reader: Probe) -> None:
    ha = controller(stack)
    try:
        assert ha.publish(T.planner_setting_set("min_soc_pct"), "23") in (0, 16)
    finally:
        ha.close()
    reader.wait_for(T.planner_setting("min_soc_pct"), lambda m: float(m.text or "nan") == 23.0, timeout=30)
    first_decision = sqlite(
        stack, "executor", "Force_Charging.db", "SELECT decision_id FROM decisions ORDER BY ts LIMIT 1"
    )
    rates = sqlite(
        stack, "pricing", "pricing.db", "SELECT direction, start_utc, value_inc_vat_gbp FROM rates ORDER BY start_utc"
    )
    assert first_decision and rates
    stack.compose("down", "-t", "60", timeout=300)
    # The broker's volume (retained messages) goes, so nothing read after `up` can come from it.
    volume = f"{stack.name}_mosquitto-data"
    run(["docker", "volume", "rm", volume])
    started = time.monotonic()
    stack.compose("up", "-d", timeout=600)
    stack.figures["second_up_to_healthy_s"] = round(stack.wait_healthy(), 1)
    after = Probe(
        stack.ports["BATSCHED_MQTT_HOST_PORT"], subscribe="#", username="readonly", password=stack.password("readonly")
    )
    after.start(timeout=30)
    try:
        setting = after.wait_for(T.planner_setting("min_soc_pct"), timeout=60)
        assert float(setting.text) == 23.0, "the planner's settings survived down/up"
    finally:
        after.stop()
    assert (
        sqlite(stack, "executor", "Force_Charging.db", "SELECT decision_id FROM decisions ORDER BY ts LIMIT 1")
        == first_decision
    )
    kept = sqlite(
        stack, "pricing", "pricing.db", "SELECT direction, start_utc, value_inc_vat_gbp FROM rates ORDER BY start_utc"
    )
    assert {tuple(r) for r in rates} <= {tuple(r) for r in kept}
    assert time.monotonic() - started < 600
    stack.figures["memory_after_restart"] = stack.memory()
