"""The shared bus client against a real Mosquitto: liveness, reconnection, wills, bad input, commands."""

from __future__ import annotations

import json
import random
import threading
import time

import pytest

from shared.bus import Bus
from shared.models import BatteryState, BusHealth
from shared.settings import ServiceSettings
from shared.topics import BATTERY_STATE, Topics
from tests.support.broker import Broker
from tests.support.probe import Probe

PREFIX = "batsched"
STATE = {
    "generated_at": "2025-01-15T16:07:00Z",
    "valid_until": "2025-01-15T16:12:00Z",
    "observed_at": "2025-01-15T16:07:00Z",
    "soc_pct": 41.0,
}


def start_echo(spawn, **env):
    return spawn("tests.support.echo_service", env=env, name="echo")


def online(m) -> bool:
    return m.text == "online"


def test_service_publishes_online_then_offline_on_sigterm(spawn, probe: Probe) -> None:
    svc = start_echo(spawn)
    probe.wait_for(f"{PREFIX}/echo/status", online, timeout=15)
    mark = probe.mark()
    assert svc.terminate() == 0
    probe.wait_for(f"{PREFIX}/echo/status", lambda m: m.text == "offline", timeout=10, after=mark)


def test_sigkill_makes_the_broker_publish_the_will(spawn, probe: Probe) -> None:
    svc = start_echo(spawn, BATSCHED_MQTT_KEEPALIVE_S="5")
    probe.wait_for(f"{PREFIX}/echo/status", online, timeout=15)
    mark = probe.mark()
    svc.kill()
    # The socket closes with the process, so the broker sends the will at once (no keepalive wait).
    msg = probe.wait_for(f"{PREFIX}/echo/status", lambda m: m.text == "offline", timeout=10, after=mark)
    assert msg.text == "offline"


def test_reconnects_and_resubscribes_after_broker_sigkill(spawn, broker: Broker) -> None:
    start_echo(spawn)
    first = Probe(broker.port).start()
    first.wait_for(f"{PREFIX}/echo/status", online, timeout=15)
    first.stop()

    broker.kill()
    broker.start()  # same port, empty broker: retained state and subscriptions are gone
    probe = Probe(broker.port).start()
    try:
        probe.wait_for(f"{PREFIX}/echo/status", online, timeout=15)
        # Re-subscribed: a valid message is processed again.
        mark = probe.mark()
        probe.publish(f"{PREFIX}/echo/in", STATE)
        out = probe.wait_json(f"{PREFIX}/echo/out", timeout=10, after=mark)
        assert out["soc_pct"] == 41.0
    finally:
        probe.stop()


def _malformed_payloads(n: int) -> list[bytes | str]:
    rnd = random.Random(1234)
    naive = {**STATE, "observed_at": "2025-01-15T16:07:00"}
    bases: list[bytes | str] = [
        b"",
        b"not json",
        b"\xff\xfe\x00garbage",
        "{",
        "[]",
        "null",
        "42",
        json.dumps({**STATE, "soc_pct": "forty"}),
        json.dumps({**STATE, "soc_pct": 250}),
        json.dumps({**STATE, "soc_pct": float("nan")}),
        json.dumps(naive),
        json.dumps({"generated_at": "yesterday"}),
        json.dumps({**STATE, "valid_until": None}),
        b"{" + b'"a":' * 10 + b"1",
        b"x" * 2_000_000,  # over the size limit
        json.dumps({**STATE, "soc_pct": [1] * 10_000}),
    ]
    out: list[bytes | str] = []
    for i in range(n):
        base = bases[i % len(bases)]
        if i >= len(bases) and isinstance(base, str):
            base = base[: rnd.randrange(len(base) + 1)] if base else base
        out.append(base if base != b"" else b"\x00")
    return out


def test_a_thousand_malformed_payloads_do_not_stop_the_service(spawn, probe: Probe) -> None:
    svc = start_echo(spawn)
    probe.wait_for(f"{PREFIX}/echo/status", online, timeout=15)
    for payload in _malformed_payloads(1000):
        probe.publish(f"{PREFIX}/echo/in", payload, wait=False)
    mark = probe.mark()
    probe.publish(f"{PREFIX}/echo/in", {**STATE, "soc_pct": 77.5})
    out = probe.wait_json(f"{PREFIX}/echo/out", lambda d: d["soc_pct"] == 77.5, timeout=30, after=mark)
    assert out["n"] >= 1
    assert svc.alive()
    # Every bad one was logged and dropped; the valid truncations that still parse are not counted as bad.
    assert svc.log().count("invalid payload dropped") >= 900


def test_commands_and_setters_answer_on_their_result_topics(spawn, probe: Probe) -> None:
    start_echo(spawn)
    probe.wait_for(f"{PREFIX}/echo/status", online, timeout=15)
    topic = f"{PREFIX}/echo/cmd/ping"
    probe.publish(topic, {"request_id": "r1"})
    ok = probe.wait_json(f"{topic}/result", lambda d: d["request_id"] == "r1")
    assert ok["status"] == "ok" and ok["data"] == {"pong": True}
    probe.publish(topic, {"request_id": "r2", "reason": "fail"})
    err = probe.wait_json(f"{topic}/result", lambda d: d["request_id"] == "r2")
    assert err["status"] == "error" and "asked to fail" in err["error"]
    probe.publish(topic, {"request_id": "r3", "reason": "crash"})
    crash = probe.wait_json(f"{topic}/result", lambda d: d["request_id"] == "r3")
    assert crash["status"] == "error" and "internal error" in crash["error"]
    probe.publish(topic, "not json")
    bad = probe.wait_json(f"{topic}/result", lambda d: d["request_id"] == "unknown")
    assert bad["status"] == "error"

    # A setter answers on its result topic too: ok, or why it refused (and the refused value changes nothing).
    topic = f"{PREFIX}/echo/level/set"
    probe.publish(topic, "7")
    ok = probe.wait_json(f"{topic}/result", lambda d: d["data"].get("value") == "7")
    assert ok["status"] == "ok"
    assert probe.wait_for(f"{PREFIX}/echo/level").text == "7"
    for value, why in (("11", "outside 0-10"), ("loud", "could not convert")):
        probe.publish(topic, value)
        answer = probe.wait_json(f"{topic}/result", lambda d, v=value: d["data"].get("value") == v)
        assert answer["status"] == "error" and why in answer["error"], answer
    assert probe.latest(f"{PREFIX}/echo/level").text == "7"  # a refused value changes nothing


def test_a_retained_command_is_cleared_and_not_executed(spawn, probe: Probe) -> None:
    topic = f"{PREFIX}/echo/cmd/ping"
    probe.publish(topic, {"request_id": "left-behind"}, retain=True)
    start_echo(spawn)
    probe.wait_for(f"{PREFIX}/echo/status", online, timeout=15)
    probe.wait_for(topic, lambda m: (m.payload == b"" and m.retain is False) or m.payload == b"", timeout=10)
    assert not [m for m in probe.on(f"{topic}/result") if b"left-behind" in m.payload]
    fresh = Probe(probe.port).start()  # a new subscriber sees no retained command any more
    try:
        fresh.publish("probe/sync", "x")
        assert not [m for m in fresh.on(topic) if m.retain and m.payload]
    finally:
        fresh.stop()


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
def test_both_protocol_versions_work(spawn, probe: Probe, protocol: str) -> None:
    start_echo(spawn, BATSCHED_MQTT_PROTOCOL=protocol)
    probe.wait_for(f"{PREFIX}/echo/status", online, timeout=15)
    probe.publish(f"{PREFIX}/echo/in", STATE)
    assert probe.wait_json(f"{PREFIX}/echo/out")["soc_pct"] == 41.0


def test_fleet_prefix(spawn, probe: Probe) -> None:
    start_echo(spawn, BATSCHED_MQTT_PREFIX="batsched/site-0042")
    probe.wait_for("batsched/site-0042/echo/status", online, timeout=15)
    probe.publish("batsched/site-0042/echo/in", STATE)
    assert probe.wait_json("batsched/site-0042/echo/out")["soc_pct"] == 41.0


def test_a_full_inbox_drops_and_counts_and_the_service_says_so_on_its_health_topic(
    broker: Broker, probe: Probe
) -> None:
    settings = ServiceSettings(_secrets_dir=None, mqtt_port=broker.port, mqtt_inbox_max=100)
    bus = Bus(settings, "slowpoke")
    bus.health_every_s = 0.2
    release = threading.Event()
    handled: list[float] = []

    def slow(s: BatteryState | None) -> None:
        release.wait(30)  # the first message holds the worker; the rest pile up in the inbox
        handled.append(s.soc_pct if s else -1)

    bus.subscribe(BATTERY_STATE, slow)
    bus.start()
    health_topic = Topics().health("slowpoke")
    try:
        probe.wait_for(health_topic, lambda m: BusHealth.model_validate_json(m.payload).connects == 1, timeout=15)
        for i in range(400):
            probe.publish(Topics().battery_state, {**STATE, "soc_pct": i % 100}, wait=False)
        # One message in the handler, 100 queued: the other 299 must be dropped, and counted as they are.
        deadline = time.monotonic() + 20
        while bus.counters().dropped_overflow < 299 and time.monotonic() < deadline:
            time.sleep(0.02)
        mark = probe.mark()
        release.set()
        report = probe.wait_json(health_topic, lambda d: d["received"] == 101, timeout=15, after=mark)
        assert report["dropped_overflow"] == 299 and report["inbox_max"] == 100
        assert len(handled) == 101
    finally:
        release.set()
        bus.stop()
