"""The load benchmark's short version (slow; ``make soak``; the full one is ``make bench-load``): 100 QoS-1 state
messages a second for 5 s into the planner and the dashboard, and a few timed price publications through the
planner to the executor. Asserted: nothing lost, every service caught up. Latency is printed, not asserted (speed
goals live in the benchmark)."""

from __future__ import annotations

import pytest

from tests.reliability.system import module_runnable
from tools.bench_load import phase_a, phase_b

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(module_runnable(m) for m in ("services.planner", "services.dashboard", "services.executor")),
        reason="planner, dashboard and executor are needed",
    ),
]


def test_100_messages_a_second_lose_nothing(broker, tmp_path) -> None:
    a = phase_a(tmp_path, broker, rate=100, duration=5)
    print("\nload:", a)
    assert a["broker_lost"] == 0 and a["broker_duplicates"] == 0
    assert a["dashboard_lost"] == 0
    assert a["planner_caught_up"]


@pytest.mark.timeout(600)  # a lost executor wake-up costs a whole decision interval (60 s) per sample
def test_price_to_decision_latency_is_measured(broker, tmp_path) -> None:
    b = phase_b(tmp_path, broker, samples=5)
    print("\nlatency:", b)
    assert b["samples"] == 5 and sum(b["decision_outcomes"].values()) == 5
