"""The pricing fixtures (tests/pricing/conftest.py) with a fake Octopus whose Agile days reach 2024-10-27."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.clock import FixedClock
from sim.datasets import agile_prices_through
from sim.octopus import FakeOctopus
from tests.pricing.conftest import clock, pricing  # noqa: F401 - the same fixtures

PRICES_UNTIL = "2025-01-01"


@pytest.fixture
def fake(clock: FixedClock) -> Iterator[FakeOctopus]:  # noqa: F811
    api = FakeOctopus(clock, prices=agile_prices_through(PRICES_UNTIL)).start()
    yield api
    api.stop()
