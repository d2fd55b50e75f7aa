"""Fixtures for the forecast tests: the fake Open-Meteo server on a free port, on a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests

from shared.clock import FixedClock
from sim.openmeteo import OpenMeteoSim

NOON = datetime(2024, 6, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def openmeteo(request: pytest.FixtureRequest) -> Iterator[OpenMeteoSim]:
    """The fake server; ``@pytest.mark.parametrize("openmeteo", [datetime], indirect=True)`` sets its clock."""
    now = getattr(request, "param", NOON)
    sim = OpenMeteoSim(clock=FixedClock(now), hang_s=30).start()
    yield sim
    sim.stop()


def control(sim: OpenMeteoSim, **body: object) -> dict:
    """Flip the fake server's switches over its HTTP control endpoint (as a person would with curl)."""
    r = requests.post(sim.url.replace("/v1/forecast", "/control"), json=body, timeout=5)
    r.raise_for_status()
    return r.json()
