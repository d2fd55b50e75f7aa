"""Command-topic hygiene under hostile use: a retained command found at start-up is never
executed, not even through the empty message that clearing it sends back to the service itself."""

from __future__ import annotations

import json

from tests.support.probe import Probe

PING = "batsched/echo/cmd/ping"


def test_a_cleared_retained_command_does_not_run_as_an_empty_command(spawn, probe: Probe) -> None:
    mark = probe.mark()
    probe.publish(PING, json.dumps({"request_id": "stale-1"}), retain=True)
    spawn("tests.support.echo_service", name="echo")
    probe.wait_for("batsched/echo/status", lambda m: m.text == "online", timeout=15)
    # The service clears the retained command (an empty retained publish)...
    probe.wait_for(PING, lambda m: m.payload == b"", timeout=10, after=mark)
    # ...then a fresh command is a barrier: the worker handles messages in order.
    probe.publish(PING, json.dumps({"request_id": "fresh-1"}))
    probe.wait_json(f"{PING}/result", lambda d: d.get("request_id") == "fresh-1", timeout=10, after=mark)
    answered = [m.json().get("request_id") for m in probe.on(f"{PING}/result") if m.at >= mark and m.payload]
    assert answered == ["fresh-1"], f"commands executed besides the fresh one: {answered}"
