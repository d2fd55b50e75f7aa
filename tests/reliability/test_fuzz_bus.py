"""Fuzz every subscribed topic of every service that exists, through a real broker into the real process.

Per target: one service process; ``FUZZ_EXAMPLES`` hostile payloads spread over all its topics, published without
waiting; then the final valid message. Pass: the process is alive, it still reacts correctly, and its log has no
"handler failed" and no traceback."""

from __future__ import annotations

import collections
import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.reliability.docs import KINDS
from tests.reliability.fuzzconf import DERANDOMIZE, FUZZ_EXAMPLES, TIMEOUT_S
from tests.reliability.payloads import json_payload, text_payload
from tests.reliability.system import SIM_START, SimWorld, failure_lines, module_runnable
from tests.reliability.targets import ECHO, TARGETS, CheckContext, Target

pytestmark = pytest.mark.timeout(TIMEOUT_S)

COMMAND_KINDS = {"command", "override"}
VALID_COMMANDS_PER_TOPIC = 5


def _is_valid(kind: str, payload: bytes) -> bool:
    try:
        KINDS[kind][1].model_validate_json(payload)
    except (ValueError, RecursionError):
        return False
    return True


AVAILABLE = [ECHO] + [t for t in TARGETS if module_runnable(t.module)]


@pytest.mark.skipif(not AVAILABLE, reason="no service has landed yet")
@pytest.mark.parametrize("target", AVAILABLE, ids=[t.module for t in AVAILABLE])
def test_service_survives_hostile_payloads(target: Target, spawn, probe, tmp_path) -> None:
    world = SimWorld(start=target.sim_start or SIM_START, speed=target.sim_speed).start_sims(spawn, target.sims)
    svc = spawn(target.module, env={**world.env, **dict(target.env)}, name=target.service)
    probe.wait_for(f"batsched/{target.service}/status", lambda m: m.text == "online", timeout=30)
    now = world.now()
    sent: collections.Counter[str] = collections.Counter()
    valid_commands: collections.Counter[str] = collections.Counter()

    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=DERANDOMIZE,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def publish_one(data: st.DataObject) -> None:
        sub = data.draw(st.sampled_from(target.subs), label="topic")
        payload = text_payload(data, sub.kind) if sub.text else json_payload(data, sub.kind, now)
        if sub.kind in COMMAND_KINDS and _is_valid(sub.kind, payload):
            # A valid refresh/replan makes real upstream calls or a full plan: a few prove the path, a flood
            # would measure the upstream (the command-storm budget has its own test).
            valid_commands[sub.topic] += 1
            if valid_commands[sub.topic] > VALID_COMMANDS_PER_TOPIC:
                payload = b"\x00" + payload
        retain = data.draw(st.integers(0, 19), label="retain") == 0
        probe.publish(sub.topic, payload, retain=retain, wait=False)
        sent[sub.topic] += 1

    started = time.monotonic()
    publish_one()
    published_s = time.monotonic() - started

    ctx = CheckContext(
        probe=probe, now=world.now, http_port=world.ports.get("dashboard"), data_dir=tmp_path / "data", log=svc.log
    )
    target.check(ctx)
    total_s = time.monotonic() - started

    assert svc.alive(), f"{target.module} died under fuzzing; log tail:\n{svc.log()[-3000:]}"
    failures = failure_lines(svc.log())
    assert not failures, f"{len(failures)} unhandled exception(s) in {target.module}:\n" + "\n".join(failures[:5])
    print(
        f"\nfuzz {target.module}: {sum(sent.values())} cases over {len(sent)} topics, "
        f"published in {published_s:.1f} s, consumed and checked in {total_s:.1f} s"
    )
