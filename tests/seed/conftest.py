"""Fixtures of the seed tests: the executor's window board serving its commands on the test broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.executor.windows import WindowBoard, WindowStore
from shared.bus import Bus
from shared.clock import RealClock
from shared.logging import get_logger
from shared.models import WindowAddCommand, WindowDeleteCommand
from shared.slots import parse_hhmm
from tests.dashboard.helpers import settings

LONDON = ZoneInfo("Europe/London")
PEAK = (parse_hhmm("16:00"), parse_hhmm("19:00"))


@pytest.fixture
def board(tmp_path: Path, broker) -> Iterator[WindowBoard]:
    s = settings(tmp_path, mqtt_port=broker.port)
    bus = Bus(s, "executor")
    store = WindowStore(tmp_path / "exec" / "Force_Charging.db")
    b = WindowBoard(store, bus, RealClock(), PEAK, LONDON, (10.0, 100.0), get_logger("test"))
    bus.command(bus.topics.executor_window_add, b.on_add, WindowAddCommand)
    bus.command(bus.topics.executor_window_delete, b.on_delete, WindowDeleteCommand)
    bus.on_connect(b.publish)
    bus.start()
    assert bus.wait_connected(10)
    yield b
    bus.stop()
    store.close()
