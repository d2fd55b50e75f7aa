"""Clock faults on the whole simulated system (slow; ``make soak``): the run crosses both UK DST changes on a fast
simulated clock, and the clock jumps (every process restarts on a clock hours ahead, then hours behind what its
stores hold). Each: every service is back online within 15 s, no unhandled exception, the battery is safe."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.reliability.system import SimWorld, failure_lines, module_runnable
from tests.reliability.test_faults import RECOVERY_S, assert_battery_safe
from tests.reliability.world import System
from tests.support.probe import Probe

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(module_runnable(m) for m in ("services.pricing", "services.planner", "services.executor")),
        reason="pricing, planner and executor are needed",
    ),
]


def check_all(system: System, probe: Probe) -> None:
    for name, proc in system.procs.items():
        assert proc.alive(), f"{name} exited:\n{proc.log()[-2000:]}"
        assert not failure_lines(proc.log()), f"{name}: {failure_lines(proc.log())[:3]}"
    assert_battery_safe(system, probe)


@pytest.mark.timeout(400)
@pytest.mark.parametrize(
    "change",
    [datetime(2023, 10, 29, 1, 0, tzinfo=UTC), datetime(2024, 3, 31, 1, 0, tzinfo=UTC)],
    ids=["autumn-back", "spring-forward"],
)
def test_running_across_a_dst_change(change: datetime, spawn, probe: Probe) -> None:
    speed = 30.0  # one simulated hour in two minutes
    system = System(spawn, probe, world=SimWorld(start=change - timedelta(minutes=20), speed=speed)).start()
    system.wait_online(timeout=90)
    probe.wait_json("batsched/planner/plan", timeout=90)
    # Wait until the simulated clock is 20 minutes past the change, then look for plans made after it.
    after_change = (change + timedelta(minutes=20) - system.world.now()).total_seconds() / speed
    deadline = time.monotonic() + max(0.0, after_change)
    while time.monotonic() < deadline:
        probe.wait_json("batsched/executor/heartbeat", timeout=60, after=probe.mark())
    mark = probe.mark()
    plan = probe.wait_json("batsched/planner/plan", timeout=90, after=mark)
    made = datetime.fromisoformat(plan["generated_at"].replace("Z", "+00:00"))
    assert made > change, f"no plan after the change ({plan['generated_at']})"
    probe.wait_json("batsched/executor/heartbeat", timeout=60, after=mark)
    check_all(system, probe)


@pytest.mark.timeout(400)
def test_clock_jumps_forward_then_back(spawn, broker, probe: Probe) -> None:
    start = datetime(2023, 6, 12, 5, 0, tzinfo=UTC)
    system = System(spawn, probe, world=SimWorld(start=start)).start()
    system.wait_online(timeout=90)
    probe.wait_json("batsched/planner/plan", timeout=90)
    for n, jump in enumerate((timedelta(hours=6), timedelta(hours=-9))):
        for proc in list(system.procs.values()) + list(system.world.running.values()):
            proc.terminate(15)
        world = SimWorld(start=system.world.now() + jump)
        system.world = world
        system.procs = {}
        mark = probe.mark()
        again = time.monotonic()
        system.start(log_suffix=f"-after-jump-{n}")  # same data directory: the stores hold the other times
        system.wait_online(timeout=RECOVERY_S + 30, after=mark)
        took = time.monotonic() - again
        print(f"\nclock jump {jump}: every service online after {took:.1f} s")
        assert took <= RECOVERY_S + 10, f"services took {took:.1f} s to come back after a {jump} jump"
        plan = probe.wait_json("batsched/planner/plan", timeout=60, after=mark)
        assert plan["slots"], "no plan after the clock jump"
        check_all(system, probe)
