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
from shared.peak import PeakWindow
from shared.topics import EXECUTOR_WINDOW_ADD, EXECUTOR_WINDOW_DELETE
from tests.dashboard.helpers import settings

LONDON = ZoneInfo("Europe/London")
PEAK = PeakWindow.parse("16:00", "19:00", LONDON)


@pytest.fixture
def board(tmp_path: Path, broker) -> Iterator[WindowBoard]:
    s = settings(tmp_path, mqtt_port=broker.port)
    bus = Bus(s, "executor")
    store = WindowStore(tmp_path / "exec" / "Force_Charging.db")
    b = WindowBoard(store, bus, RealClock(), PEAK, LONDON, (10.0, 100.0), get_logger("test"))
    bus.command(EXECUTOR_WINDOW_ADD, b.on_add)
    bus.command(EXECUTOR_WINDOW_DELETE, b.on_delete)
    bus.on_connect(b.publish)
    bus.start()
    assert bus.wait_connected(10)
    yield b
    bus.stop()
    store.close()
