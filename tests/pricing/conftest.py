"""Pricing fixtures: the fake Octopus on a free port and the pricing service in-process on a shared FixedClock.

The service runs exactly as ``run_service`` wires it (same ``PricingService.wire``), with a real bus to the test
broker, a real SQLite store and real HTTP to the fake; only the clock is a ``FixedClock`` that the test moves.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import CapturingLogger

from services.pricing.config import PricingSettings
from services.pricing.service import PricingService
from shared.bus import Bus
from shared.clock import FixedClock
from shared.runner import ServiceContext
from sim.octopus import FakeOctopus
from tests.support.broker import Broker

DEFAULT_START = datetime.fromisoformat("2023-06-12T10:00:00+00:00")


class Running:
    def __init__(self, ctx: ServiceContext[PricingSettings], service: PricingService, logs: CapturingLogger) -> None:
        self.ctx = ctx
        self.service = service
        self._logs = logs

    def logs(self) -> list[dict[str, Any]]:
        return [{"level": c.method_name, **c.kwargs} for c in list(self._logs.calls)]

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [entry for entry in self.logs() if entry.get("event") == event]


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(DEFAULT_START)


@pytest.fixture
def fake(clock: FixedClock) -> Iterator[FakeOctopus]:
    api = FakeOctopus(clock).start()
    yield api
    api.stop()


@pytest.fixture
def pricing(broker: Broker, tmp_path: Path, clock: FixedClock, fake: FakeOctopus):
    """``pricing(**settings)`` starts the service; it is stopped at the end (or earlier with ``.stop()``)."""
    running: list[ServiceContext] = []

    def start(**overrides: Any) -> Running:
        values: dict[str, Any] = {
            "mqtt_host": "127.0.0.1",
            "mqtt_port": broker.port,
            "data_dir": tmp_path / "data",
            "octopus_base_url": fake.url,
            "octopus_region": "J",
            "http_timeout_s": 5.0,  # generous: a loaded CI machine must not turn into a timeout test
            "http_backoff_s": 0.05,
            **overrides,
        }
        settings = PricingSettings(_secrets_dir=None, **values)
        logs = CapturingLogger()
        log = structlog.wrap_logger(logs, processors=[])
        ctx = ServiceContext(name="pricing", settings=settings, clock=clock, bus=Bus(settings, "pricing"), log=log)
        service = PricingService(ctx)
        service.wire()
        ctx.bus.start()
        ctx.start_tasks()
        running.append(ctx)
        return Running(ctx, service, logs)

    yield start
    for ctx in running:
        if not ctx.stop.is_set():
            ctx.shutdown()
