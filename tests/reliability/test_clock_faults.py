"""Clock faults on the whole simulated system (slow; ``make soak``): the run crosses both UK DST changes on a fast
simulated clock; the clock jumps (every process restarts on a clock hours ahead, then hours behind what its
stores hold); and the wall clock steps under the running processes, like an NTP step (libfaketime). Each: every
service is back online (or keeps heartbeating) within 15 s, no unhandled exception, the battery is safe."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.reliability.faketime import WallClock, find_libfaketime
from tests.reliability.system import SimWorld, failure_lines, module_runnable
from tests.reliability.test_faults import RECOVERY_S, assert_battery_safe
from tests.reliability.world import System
from tests.support.prereqs import needs
from tests.support.probe import Probe, Seen

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


LIBFAKETIME = find_libfaketime()
HEARTBEAT_S = 60.0  # the executor's decision interval (its default): a heartbeat at least this often


def at(doc: dict, key: str = "generated_at") -> datetime:
    return datetime.fromisoformat(doc[key].replace("Z", "+00:00"))


def first_after(probe: Probe, topic: str, ok, timeout: float, after: float) -> float:
    """Seconds from the mark ``after`` until the first message on ``topic`` that ``ok(doc, arrived)`` accepts;
    ``arrived`` is the message's arrival, in seconds after the mark."""

    def accept(m: Seen) -> bool:
        return bool(m.payload) and ok(m.json(), m.at - after)

    return round(probe.wait_for(topic, accept, timeout=timeout, after=after).at - after, 2)


def back_in_step(probe: Probe, now: datetime, mark: float, big: bool) -> dict[str, float]:
    """Seconds from the step (``mark``, when the world's time was ``now``) until each service worked in the new
    time: its message says it was made at the moment it arrived (not in the time before the step)."""
    bound = RECOVERY_S if big else HEARTBEAT_S + RECOVERY_S

    def then(arrived: float) -> datetime:
        return now + timedelta(seconds=arrived)

    def made_then(d: dict, arrived: float) -> bool:
        return abs(at(d) - then(arrived)) < timedelta(seconds=3)

    def current_slot(d: dict, arrived: float) -> bool:
        return at(d, "slot_start") <= then(arrived) < at(d, "slot_end")

    def plan_for_then(d: dict, arrived: float) -> bool:  # made in the new time, from inputs of the new time
        t = then(arrived)
        return (
            made_then(d, arrived)
            and d["status"] == "ok"
            and any(at(s, "start") <= t < at(s, "end") for s in d["slots"])
        )

    took = {
        "executor heartbeat": first_after(probe, "batsched/executor/heartbeat", made_then, bound, mark),
        "executor decision": first_after(probe, "batsched/executor/applied", made_then, bound, mark),
    }
    if big:  # a small step stays in the same slot: nothing else is due
        took["current price"] = first_after(probe, "batsched/pricing/import/current", current_slot, RECOVERY_S, mark)
        took["load forecast"] = first_after(probe, "batsched/forecast/load", made_then, RECOVERY_S, mark)
        took["plan"] = first_after(probe, "batsched/planner/plan", plan_for_then, 30, mark)
    return took


@pytest.mark.timeout(600)
@needs("libfaketime")
def test_wall_clock_steps_under_the_running_processes(spawn, probe: Probe, tmp_path) -> None:
    """The wall clock of every running process (services and simulators: they share the simulated time, derived
    from it) steps +6 h, then -9 h, then -5 s, as NTP would step it, without any restart. After the big steps every
    service works in the new time within 15 s: the executor decides and heartbeats, the prices and the load
    forecast move to the new slot, the planner publishes a plan for it; after the small one the usual rhythm goes
    on. Nothing goes offline, nothing restores the battery behind the executor's back, no unhandled exception."""
    assert LIBFAKETIME is not None
    wall = WallClock(tmp_path / "faketime-offset", LIBFAKETIME)
    world = SimWorld(start=datetime(2023, 6, 12, 5, 0, tzinfo=UTC), process_env=wall.env)
    system = System(spawn, probe, world=world).start()
    system.wait_online(timeout=90)
    for topic in ("planner/plan", "executor/applied", "pricing/import/current", "forecast/load", "forecast/pv"):
        probe.wait_json(f"batsched/{topic}", timeout=90)  # started up: the first of each is out
    began = probe.mark()
    figures: dict[str, dict[str, float]] = {}
    for step in (timedelta(hours=6), timedelta(hours=-9), timedelta(seconds=-5)):
        mark = probe.mark()
        wall.step(step.total_seconds())
        world.wall_offset_s = wall.offset_s
        took = back_in_step(probe, world.now(), mark, big=abs(step) > timedelta(minutes=5))
        name = f"{step.total_seconds():+.0f} s"
        figures[name] = took
        print(f"\nwall clock step {name}: seconds until", json.dumps(took))
        sim_now = at(system.netzero(), "now")
        assert abs(sim_now - world.now()) < timedelta(minutes=2), f"the simulated Powerwall is at {sim_now}"
        check_all(system, probe)
    offline = [m.topic for m in probe.on("batsched/+/status") if m.at >= began and m.text != "online"]
    assert not offline, f"went offline during the steps: {offline}"
    reports = [m.json() for m in probe.on("batsched/executor/watchdog") if m.at >= began and m.payload]
    assert not [r for r in reports if r["state"] == "restored"], f"the watchdog stepped in: {reports}"
    print("wall clock steps, seconds until back:", json.dumps(figures))
