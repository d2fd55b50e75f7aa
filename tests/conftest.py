"""Shared fixtures: a private Mosquitto per test, a recording MQTT probe, service processes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hyp_settings

from tests.support.broker import Broker
from tests.support.contract import violations
from tests.support.probe import Probe
from tests.support.procs import ServiceProcess

hyp_settings.register_profile("ci", deadline=None, max_examples=200)
hyp_settings.register_profile("long", deadline=None, max_examples=10_000)
hyp_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# One line per optional tool that is missing (Chromium, Node.js, …), saying how to install it.
pytest_plugins = ["tests.support.prereqs"]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker").start()
    yield b
    b.kill()  # no persistence to flush: SIGKILL ends it at once (SIGTERM costs mosquitto ~0.1 s per test)


@pytest.fixture
def probe(broker: Broker) -> Iterator[Probe]:
    """Records every message; when the test ends, each JSON payload a service published is validated against its
    channel's published JSON Schema (``tests/support/contract.py``)."""
    p = Probe(broker.port).start()
    yield p
    p.stop()
    problems = violations([(m.topic, m.payload) for m in p.messages], Probe.published)
    assert problems == [], "payloads that do not match schemas/:\n" + "\n".join(problems[:10])


@pytest.fixture
def spawn(tmp_path: Path, broker: Broker) -> Iterator:
    """Start ``python -m <module>`` wired to the test broker; everything is killed at the end of the test."""
    started: list[ServiceProcess] = []

    def _spawn(
        module: str, env: dict[str, str] | None = None, args: list[str] | None = None, name: str | None = None
    ) -> ServiceProcess:
        full_env = {**broker.env, "BATSCHED_DATA_DIR": str(tmp_path / "data"), **(env or {})}
        proc = ServiceProcess(module, full_env, tmp_path / "logs" / f"{name or module}.log", args).start()
        started.append(proc)
        return proc

    yield _spawn
    for proc in started:
        proc.kill()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
