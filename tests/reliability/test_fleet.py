"""The fleet planner group on a real broker: two processes share the homes through ``$share/planners/…``; a new
price publication for every home gets each home planned exactly once, on its own topic."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.reliability import docs
from tests.reliability.system import SimWorld
from tests.support.probe import Probe

HOMES = [f"site-{i:04d}" for i in range(1, 21)]


def answer_from(request_id: str, worker: str):
    return lambda d: d.get("request_id") == request_id and d.get("data", {}).get("worker") == worker


def test_two_planner_processes_plan_every_home_exactly_once(spawn, probe: Probe) -> None:
    world = SimWorld()
    for worker in ("1", "2"):
        spawn("services.fleet", env={**world.env, "BATSCHED_FLEET_WORKER": worker}, name=f"fleet-{worker}")
    for worker in ("1", "2"):
        probe.wait_for(f"batsched/fleet-planner-{worker}/status", lambda m: m.text == "online", timeout=30)
    now = world.now()
    for i, site in enumerate(HOMES):
        state = docs.battery_state(now, soc=20.0 + i)
        state["valid_until"] = docs.z(now + timedelta(hours=1))
        probe.publish(f"batsched/{site}/battery/state", json.dumps(state), retain=True, wait=False)
    # Barrier: both processes hold every home before the prices come.
    mark = probe.mark()
    probe.publish("batsched/fleet/cmd/sync", json.dumps({"request_id": "sync-1"}))
    for worker in ("1", "2"):
        probe.wait_json("batsched/fleet/cmd/sync/result", answer_from("sync-1", worker), 30, mark)
    answers = [m.json()["data"] for m in probe.on("batsched/fleet/cmd/sync/result") if m.at >= mark]
    assert sorted(a["worker"] for a in answers) == ["1", "2"]
    assert all(a["homes_with_battery"] == len(HOMES) for a in answers), answers

    rates = docs.rate_series(world.now())
    rates["generated_at"] = docs.z(world.now()).replace("Z", ".654321Z")
    mark = probe.mark()
    for site in HOMES:
        probe.publish(f"batsched/{site}/pricing/import/rates", json.dumps(rates), retain=True, wait=False)
    for site in HOMES:
        plan = probe.wait_json(f"batsched/{site}/planner/plan", lambda d: "654321" in str(d["inputs"]), 60, mark)
        assert plan["slots"] and plan["inputs"]["soc_pct"] == 20.0 + HOMES.index(site)

    mark2 = probe.mark()
    probe.publish("batsched/fleet/cmd/sync", json.dumps({"request_id": "sync-2"}))
    for worker in ("1", "2"):
        probe.wait_json("batsched/fleet/cmd/sync/result", answer_from("sync-2", worker), 30, mark2)
    planned = {
        m.json()["data"]["worker"]: m.json()["data"]["planned"]
        for m in probe.on("batsched/fleet/cmd/sync/result")
        if m.at >= mark2
    }
    assert sum(planned.values()) == len(HOMES), f"each home once: {planned}"
    assert all(n > 0 for n in planned.values()), f"both processes took a share: {planned}"
    per_home = {s: sum(1 for m in probe.on(f"batsched/{s}/planner/plan") if m.at >= mark) for s in HOMES}
    assert set(per_home.values()) == {1}, per_home
