"""The locked-down broker: the project's mosquitto.conf, ACL and make-passwords.sh on a real Mosquitto.

A denied publish is proved to be dropped, not merely acknowledged: the watcher (the read-only user, subscribed to
everything) must see a later sentinel from the same connection, and never the denied message. Mosquitto handles
one client's publishes in order, so once the sentinel is seen the denied message can no longer arrive.
"""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from shared.bus_core import MAX_PAYLOAD_BYTES
from shared.topics import SERVICES, Topics
from tests.deploy.project_broker import (
    MOSQUITTO_DIR,
    ROOT,
    ProjectBroker,
    User,
    acl_rules,
    derived_conf,
    make_passwords,
    may,
    write_secrets,
)
from tests.support.broker import free_port, mosquitto_binary, wait_port
from tests.support.probe import Probe
from tests.support.procs import ServiceProcess
from tools import mqtt_acl
from tools.init_secrets import init_tls

T = Topics()
NOT_AUTHORIZED = 135

# A state topic each service owns (docs/architecture.md, "Channels"), and one HA discovery topic under its own node id.
OWN = {
    "pricing": [T.import_current, T.import_rates],
    "forecast": [T.forecast_pv, T.forecast_pv_today],
    "planner": [T.plan, T.plan_current, T.planner_setting("min_soc_pct")],
    "executor": [T.battery_state, T.executor_mode, T.executor_applied, T.executor_heartbeat],
    "watchdog": [T.watchdog_report],
    "accounting": [T.executor_daily_summary],
    "dashboard": [T.executor_mode_set, T.planner_replan],
}
WRITERS = ("pricing", "forecast", "planner", "executor", "watchdog", "accounting")
ALL_SERVICES = (*SERVICES, "accounting")
ALL_STATE = [t for svc in WRITERS for t in OWN[svc]]


def discovery(service: str) -> str:
    return T.ha_discovery("sensor", service, "acl_test")


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectBroker]:
    b = ProjectBroker(tmp_path_factory.mktemp("acl-broker")).start()
    for port in b.ports.values():  # every listener, not only the first the broker opens
        wait_port(port)
    yield b
    b.stop()


@pytest.fixture(scope="module")
def watcher(acl_broker: ProjectBroker) -> Iterator[Probe]:
    p = Probe(acl_broker.port, subscribe="#", username="readonly", password=acl_broker.passwords["readonly"])
    p.start()
    yield p
    p.stop()


def login(broker: ProjectBroker, user: str) -> User:
    u = User(broker.port, user, broker.passwords[user])
    assert u.connect() == 0, f"{user} could not log in"
    return u


def marker() -> str:
    return uuid.uuid4().hex


def prove_dropped(watcher: Probe, sender: User, denied: list[str], sentinel_topic: str) -> None:
    """Publish a unique payload on each denied topic, then a sentinel; the watcher sees only the sentinel."""
    tag = marker()
    for topic in denied:
        assert sender.publish(topic, tag) == NOT_AUTHORIZED, f"broker accepted {topic}"
    sentinel = marker()
    assert sender.publish(sentinel_topic, sentinel) == 0
    watcher.wait_for(sentinel_topic, lambda m: m.text == sentinel, timeout=10)
    leaked = [m.topic for m in watcher.messages if m.text == tag]
    assert leaked == [], f"denied messages arrived on {leaked}"


@pytest.mark.parametrize("service", WRITERS)
def test_a_service_writes_its_own_topics_and_no_other_services(
    acl_broker: ProjectBroker, watcher: Probe, service: str
) -> None:
    user = login(acl_broker, service)
    try:
        for topic in [*OWN[service], T.status(service), discovery(service)]:
            tag = marker()
            assert user.publish(topic, tag) == 0, f"{service} may not write its own {topic}"
            watcher.wait_for(topic, lambda m, tag=tag: m.text == tag, timeout=10)
        others = [t for t in ALL_STATE if t not in OWN[service]]
        others += [T.status(s) for s in ALL_SERVICES if s != service]
        others += [discovery(s) for s in ALL_SERVICES if s != service]
        prove_dropped(watcher, user, others, sentinel_topic=T.status(service))
    finally:
        user.close()


@pytest.mark.parametrize("controller", ["dashboard", "homeassistant"])
def test_controllers_send_setters_and_commands_but_never_state(
    acl_broker: ProjectBroker, watcher: Probe, controller: str
) -> None:
    user = login(acl_broker, controller)
    try:
        for topic in (T.executor_mode_set, T.executor_dry_run_set, T.planner_setting_set("min_soc_pct")):
            tag = marker()
            assert user.publish(topic, tag) == 0
            watcher.wait_for(topic, lambda m, tag=tag: m.text == tag, timeout=10)
        # forging a command's result or a service's status is state too
        denied = [*ALL_STATE, T.status("executor"), f"{T.planner_replan}/result"]
        prove_dropped(watcher, user, denied, sentinel_topic=T.planner_replan)
    finally:
        user.close()


def test_the_read_only_user_reads_everything_and_cannot_publish(acl_broker: ProjectBroker, watcher: Probe) -> None:
    reader = login(acl_broker, "readonly")
    pricing = login(acl_broker, "pricing")
    try:
        tag = marker()
        for topic in [*ALL_STATE, T.executor_mode_set, T.planner_replan, discovery("pricing"), "homeassistant/status"]:
            assert reader.publish(topic, tag) == NOT_AUTHORIZED, topic
        # Each refused PUBACK came after the broker dropped the message; a later message from anyone follows it.
        sentinel = marker()
        assert pricing.publish(T.import_current, sentinel) == 0
        watcher.wait_for(T.import_current, lambda m: m.text == sentinel, timeout=10)
        assert [m.topic for m in watcher.messages if m.text == tag] == []
    finally:
        reader.close()
        pricing.close()


@pytest.mark.parametrize("listener", ["1883", "9001", "8883", "8884"])
def test_anonymous_and_wrong_passwords_are_refused_on_every_client_listener(
    acl_broker: ProjectBroker, listener: str
) -> None:
    port = acl_broker.ports[listener]
    transport = "websockets" if listener in ("9001", "8884") else "tcp"
    ca = acl_broker.ca_file if listener in ("8883", "8884") else None
    anonymous = User(port, None, None, transport, ca)
    wrong = User(port, "executor", "not-the-password", transport, ca)
    unknown = User(port, "intruder", "x", transport, ca)
    old_public = User(port, "healthcheck", "healthcheck", transport, ca)  # the public login of earlier releases
    try:
        for client in (anonymous, wrong, unknown, old_public):
            assert client.connect() == NOT_AUTHORIZED
    finally:
        for c in (anonymous, wrong, unknown, old_public):
            c.close()


def test_websockets_listener_serves_mqtt_explorer(acl_broker: ProjectBroker, watcher: Probe) -> None:
    ws = User(acl_broker.ws_port, "homeassistant", acl_broker.passwords["homeassistant"], transport="websockets")
    try:
        assert ws.connect() == 0
        tag = marker()
        assert ws.publish(T.executor_mode_set, tag) == 0
        watcher.wait_for(T.executor_mode_set, lambda m: m.text == tag, timeout=10)
    finally:
        ws.close()


def test_the_healthcheck_reads_the_uptime_on_its_own_loopback_listener_and_nothing_else(
    acl_broker: ProjectBroker, watcher: Probe
) -> None:
    """The broker container's healthcheck command (compose.yaml), run against the test broker."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    check = [a.replace("$$", "$") for a in compose["services"]["mosquitto"]["healthcheck"]["test"][1:]]
    assert "-P" not in check and "-u" not in check, "no password to publish"
    at = check.index("-p") + 1
    check[at] = str(acl_broker.ports[check[at]])
    up = subprocess.run(check, capture_output=True, text=True, timeout=15)
    assert up.returncode == 0 and up.stdout.strip().endswith("seconds"), up.stderr
    # its listener is the container's loopback: nothing outside the broker container reaches it
    assert re.search(r"(?m)^listener 1880 127\.0\.0\.1$", (MOSQUITTO_DIR / "mosquitto.conf").read_text())
    # and an anonymous client there may read the uptime only
    anonymous = User(acl_broker.health_port, None, None)
    try:
        assert anonymous.connect() == 0
        assert anonymous.publish(T.executor_mode_set, "off") == NOT_AUTHORIZED
    finally:
        anonymous.close()
    sub = subprocess.run(
        ["mosquitto_sub", "-p", str(acl_broker.health_port), "-t", T.plan, "-C", "1", "-W", "2"],
        capture_output=True,
        text=True,
        timeout=15,
    )
    assert sub.stdout == "", "anonymous clients read nothing of batsched"


def test_no_client_takes_over_a_services_id_without_its_password(acl_broker: ProjectBroker) -> None:
    """MQTT lets a new connection with a client's id push that client off; only after a successful login."""
    executor_id = f"batsched-executor-{uuid.uuid4().hex[:6]}"
    executor = User(acl_broker.port, "executor", acl_broker.passwords["executor"], client_id=executor_id)
    attackers = [
        User(acl_broker.port, None, None, client_id=executor_id),
        User(acl_broker.port, "healthcheck", "healthcheck", client_id=executor_id),
        User(acl_broker.ws_port, "executor", "guess", transport="websockets", client_id=executor_id),
    ]
    try:
        assert executor.connect() == 0
        for attacker in attackers:
            assert attacker.connect() == NOT_AUTHORIZED
        assert not executor.disconnected.is_set()
        assert executor.publish(T.executor_heartbeat, "still here") in (0, 16)
    finally:
        for c in (executor, *attackers):
            c.close()


def test_tls_listeners_with_the_private_ca(acl_broker: ProjectBroker, watcher: Probe) -> None:
    """MQTT Explorer, Home Assistant, Node-RED on the LAN: 8883 (mqtts) and 8884 (wss), trusting mqtt_ca.crt."""
    for port, transport in ((acl_broker.tls_port, "tcp"), (acl_broker.wss_port, "websockets")):
        ha = User(port, "homeassistant", acl_broker.passwords["homeassistant"], transport, acl_broker.ca_file)
        try:
            assert ha.connect() == 0
            tag = marker()
            assert ha.publish(T.executor_mode_set, tag) == 0
            watcher.wait_for(T.executor_mode_set, lambda m, tag=tag: m.text == tag, timeout=10)
        finally:
            ha.close()
        untrusting = User(port, "homeassistant", acl_broker.passwords["homeassistant"], transport, ca_file=None)
        untrusting.client.tls_set()  # the system's CAs only: the private CA's certificate is refused
        with pytest.raises(ssl.SSLError):
            untrusting.connect()
        untrusting.close()


def test_messages_above_the_services_limit_are_refused_by_the_broker(acl_broker: ProjectBroker, watcher: Probe) -> None:
    conf = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
    limit = int(re.search(r"(?m)^message_size_limit (\d+)$", conf).group(1))
    assert limit == MAX_PAYLOAD_BYTES, "the broker refuses what the services would drop"
    pricing = login(acl_broker, "pricing")
    other = login(acl_broker, "pricing")
    try:
        tag = marker()
        pricing.client.publish(T.import_rates, tag + "x" * (limit + 1 - len(tag)), qos=1)
        assert pricing.disconnected.wait(10), "the sender of an oversized message is disconnected"
        sentinel = marker()
        assert other.publish(T.import_current, sentinel) == 0  # the broker goes on serving everyone else
        watcher.wait_for(T.import_current, lambda m: m.text == sentinel, timeout=10)
        assert not [m for m in watcher.messages if m.text.startswith(tag)]
    finally:
        pricing.close()
        other.close()


def mqtt_connect_packet(user: str, password: str) -> bytes:
    def s(text: str) -> bytes:
        return len(text.encode()).to_bytes(2, "big") + text.encode()

    body = (
        s("MQTT")
        + bytes([4, 0xC2])
        + (30).to_bytes(2, "big")
        + s(f"cap-{uuid.uuid4().hex[:8]}")
        + s(user)
        + s(password)
    )
    return bytes([0x10, len(body)]) + body


def test_the_mqtt_listener_takes_at_most_max_connections(tmp_path: Path) -> None:
    """A runaway client cannot exhaust the broker. mosquitto miscounts connections closed before their CONNECT
    (upstream issue 1460), so this broker is not probed with empty connections: it is ready when its log says so."""
    conf = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
    limit = int(re.search(r"(?ms)^listener 1883$.*?^max_connections (\d+)$", conf).group(1))
    broker = ProjectBroker(tmp_path / "broker")
    broker.write_conf()
    log_path = tmp_path / "broker.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([mosquitto_binary(), "-c", str(broker.conf_path)], stdout=log, stderr=log)
    socks: list[socket.socket] = []
    try:
        deadline = time.monotonic() + 10
        while f"listen socket on port {broker.wss_port}" not in log_path.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log_path.read_text()
            time.sleep(0.05)
        answers = []
        for _ in range(limit + 3):
            s = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
            socks.append(s)
            try:
                s.sendall(mqtt_connect_packet("readonly", broker.passwords["readonly"]))  # a client id each
                answers.append(s.recv(4))
            except OSError:
                answers.append(b"")
        served = sum(a == b"\x20\x02\x00\x00" for a in answers)
        assert served == limit, f"{served} of {len(answers)} connections served, the limit is {limit}"
        assert answers[:limit] == [b"\x20\x02\x00\x00"] * limit, "CONNACK for each client up to the limit"
        assert answers[limit:] == [b""] * 3, "connections past the limit are closed unserved"
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        proc.wait(10)


def test_make_passwords_names_every_missing_secret_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mqtt_password_pricing").write_text("pw\n")
    out = tmp_path / "passwd"
    done = make_passwords(tmp_path / "secrets", out)
    assert done.returncode != 0
    assert "mqtt_password_planner" in done.stderr and "mqtt_password_readonly" in done.stderr
    assert "mqtt_password_pricing" not in done.stderr
    assert not out.exists()


def test_make_passwords_hashes_every_acl_user(tmp_path: Path) -> None:
    passwords = write_secrets(tmp_path / "secrets")
    out = tmp_path / "passwd"
    done = make_passwords(tmp_path / "secrets", out)
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(":", 1) for line in out.read_text().splitlines())
    assert set(lines) == set(mqtt_acl.user_names())
    assert all(h.startswith("$7$") for h in lines.values())  # PBKDF2-SHA512, never plain text
    hashes = "".join(lines.values())
    assert not any(pw in hashes for pw in passwords.values())
    assert out.stat().st_mode & 0o077 == 0


# ---- the table itself: one writer per topic across the whole tree (no broker needed)


def owner(name: str, topic: str) -> str:
    rel = topic.removeprefix("batsched/")
    if name == "watchdog_report":
        return "watchdog"
    if name == "executor_daily_summary":
        return "accounting"
    first = rel.split("/")[0]
    return "executor" if first == "battery" else first


def test_every_topic_in_the_tree_has_exactly_its_owner_as_service_writer() -> None:
    rules = acl_rules(mqtt_acl.render())
    services = [u for u in rules if u in ALL_SERVICES]
    for name, topic in T.tree().items():
        writers = {u for u in services if may(rules[u], "write", topic)}
        expected = {owner(name, topic)}
        if topic.endswith("/set") or "/cmd/" in topic:
            expected.add("dashboard")  # the service clears retained commands; controllers send them
        assert writers == expected, f"{topic}: writers {sorted(writers)}, expected {sorted(expected)}"


def test_committed_acl_is_generated_from_the_table() -> None:
    assert (MOSQUITTO_DIR / "acl").read_text() == mqtt_acl.render(), "run `python -m tools.mqtt_acl`"


def test_acl_for_a_fleet_prefix_keeps_homes_apart() -> None:
    rules = acl_rules(mqtt_acl.render("batsched/site-0042"))
    home = Topics("batsched/site-0042")
    assert may(rules["planner"], "write", home.plan)
    assert not may(rules["planner"], "write", Topics("batsched/site-0043").plan)
    assert may(rules["executor"], "write", home.ha_discovery("select", "executor", "mode"))


def test_the_broker_containers_entrypoint_builds_its_auth_and_starts(tmp_path: Path) -> None:
    """mosquitto/entrypoint.sh as the container runs it, with the image's paths moved under tmp_path."""
    conf = tmp_path / "config"
    conf.mkdir()
    for name in ("acl", "make-passwords.sh", "entrypoint.sh"):
        shutil.copy(MOSQUITTO_DIR / name, conf / name)
    ports = {p: free_port() for p in ("1880", "1883", "9001", "8883", "8884")}
    port = ports["1883"]
    auth = tmp_path / "auth"
    text = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
    (conf / "mosquitto.conf").write_text(
        derived_conf(text, ports, tmp_path, auth / "passwd", auth / "acl", (auth / "server.crt", auth / "server.key"))
    )
    (tmp_path / "data").mkdir()
    passwords = write_secrets(tmp_path / "run-secrets")
    # the certificate as compose.yaml mounts it: secrets mqtt_server_crt / mqtt_server_key
    init_tls(tmp_path / "tls", ["127.0.0.1"])
    shutil.copy(tmp_path / "tls" / "mqtt_server.crt", tmp_path / "run-secrets" / "mqtt_server_crt")
    shutil.copy(tmp_path / "tls" / "mqtt_server.key", tmp_path / "run-secrets" / "mqtt_server_key")
    env = {
        "PATH": f"{Path(mosquitto_binary()).parent}:/usr/bin:/bin",
        "MOSQUITTO_CONF_DIR": str(conf),
        "MOSQUITTO_SECRETS_DIR": str(tmp_path / "run-secrets"),
        "MOSQUITTO_AUTH_DIR": str(auth),
        "MOSQUITTO_DATA_DIR": str(tmp_path / "data"),
    }
    log = open(tmp_path / "broker.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(["sh", str(conf / "entrypoint.sh")], env=env, stdout=log, stderr=log)
    try:
        wait_port(port)
        assert (auth / "passwd").stat().st_mode & 0o777 == 0o600
        assert (auth / "server.key").stat().st_mode & 0o777 == 0o600
        assert (auth / "acl").read_text() == (MOSQUITTO_DIR / "acl").read_text()
        executor = User(port, "executor", passwords["executor"])
        assert executor.connect() == 0
        # accepted with nobody subscribed is v5 reason 16 "no matching subscribers"; refused is 135
        assert executor.publish(T.battery_state, "x") in (0, 16)
        assert executor.publish(T.plan, "x") == NOT_AUTHORIZED
        executor.close()
        anonymous = User(port, None, None)
        assert anonymous.connect() == NOT_AUTHORIZED
        anonymous.close()
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_every_services_own_bus_traffic_passes_the_acl(tmp_path: Path) -> None:
    """Each service user, logged in from its secret file as Compose does: online, HA discovery, and the will."""
    broker = ProjectBroker(tmp_path / "broker").start()
    watcher = Probe(broker.port, subscribe="#", username="readonly", password=broker.passwords["readonly"]).start()
    procs = {}
    try:
        for name in WRITERS:
            secrets_dir = tmp_path / f"secrets-{name}"
            secrets_dir.mkdir()
            (secrets_dir / "mqtt_password").write_text(broker.passwords[name] + "\n")
            env = {**broker.env, "BATSCHED_MQTT_USERNAME": name, "BATSCHED_SECRETS_DIR": str(secrets_dir)}
            procs[name] = ServiceProcess(
                "tests.deploy.stand_in_service", env, tmp_path / "logs" / f"{name}.log", [name]
            ).start()
        for name in WRITERS:
            watcher.wait_for(T.status(name), lambda m: m.text == "online", timeout=20)
            config = T.ha_discovery("binary_sensor", name, f"{name}_status")
            watcher.wait_for(config, lambda m: bool(m.payload), timeout=10)
        mark = watcher.mark()
        procs["executor"].kill()
        watcher.wait_for(T.status("executor"), lambda m: m.text == "offline", timeout=10, after=mark)
    finally:
        for proc in procs.values():
            proc.kill()
        watcher.stop()
        broker.stop()
