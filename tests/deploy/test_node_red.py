"""examples/node-red/flow.json: importable as is, wired to the plan topics, and its functions read real payloads.

The import format is a JSON array of nodes whose wires and config references resolve. The two function nodes are
run under Node.js (when installed) with a stand-in ``node`` object, on payloads made by the project's own models.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.models import Plan, PlanNow
from shared.topics import Topics
from tests.support.prereqs import needs
from tools.settings_doc import COMPOSE_PORTS

FLOW = Path(__file__).resolve().parents[2] / "examples" / "node-red" / "flow.json"
T = Topics()
START = datetime(2024, 1, 15, 1, 0, tzinfo=UTC)


def nodes() -> list[dict[str, Any]]:
    data = json.loads(FLOW.read_text())
    assert isinstance(data, list)
    return data


def by_name(name: str) -> dict[str, Any]:
    return next(n for n in nodes() if n.get("name") == name)


def test_flow_is_an_importable_node_array() -> None:
    flow = nodes()
    ids = [n["id"] for n in flow]
    assert len(ids) == len(set(ids)) and all(n.get("type") for n in flow)
    tabs = {n["id"] for n in flow if n["type"] == "tab"}
    brokers = {n["id"]: n for n in flow if n["type"] == "mqtt-broker"}
    assert len(tabs) == 1 and len(brokers) == 1
    for n in flow:
        if n["type"] not in ("tab", "mqtt-broker"):
            assert n["z"] in tabs, n["id"]
        for outputs in n.get("wires", []):
            assert all(target in ids for target in outputs), n["id"]
    broker = next(iter(brokers.values()))
    assert broker["credentials"]["user"] == "readonly" and not broker["credentials"]["password"]
    # the address a Compose user has on the Docker host: the plain MQTT port compose.yaml publishes on loopback
    host_port = dict((n, d) for n, d, _ in COMPOSE_PORTS)["BATSCHED_MQTT_HOST_PORT"]
    assert (broker["broker"], broker["port"]) == ("localhost", host_port)
    ins = {n["topic"]: n for n in flow if n["type"] == "mqtt in"}
    assert {T.plan_current, T.plan} <= set(ins)
    for n in ins.values():
        assert n["broker"] in brokers and n["qos"] == "1"
        assert "#" not in n["topic"] and "+" not in n["topic"], "exact topics: the read-only user sees them all"
    for topic in (T.plan_current, T.plan):
        fn = next(x for x in flow if x["id"] == ins[topic]["wires"][0][0])
        assert fn["type"] == "function" and ins[topic]["datatype"] == "json"
        assert any(next(x for x in flow if x["id"] == w)["type"] == "debug" for w in fn["wires"][0])


def slot(i: int, action: str, **extra: Any) -> dict[str, Any]:
    start = START + timedelta(minutes=30 * i)
    return {
        "start": start,
        "end": start + timedelta(minutes=30),
        "action": action,
        "reason": "cheapest_needed" if action == "charge" else "self_use",
        "expected_soc_pct": 40 + i,
        **extra,
    }


def envelope() -> dict[str, Any]:
    return {"generated_at": START, "valid_until": START + timedelta(hours=6)}


def run_function(name: str, payload: Any) -> dict[str, Any]:
    code = by_name(name)["func"]
    script = (
        "const statuses = [];\n"
        "const node = {status: (s) => statuses.push(s), warn: () => {}, error: () => {}};\n"
        f"const msg = {{topic: 't', payload: {json.dumps(payload)}}};\n"
        f"const out = (function (msg, node) {{\n{code}\n}})(msg, node);\n"
        "console.log(JSON.stringify({out: out, statuses: statuses}));\n"
    )
    done = subprocess.run([shutil.which("node") or "node", "-e", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


needs_node = needs("node")


@needs_node
def test_current_action_function_reads_a_plan_now() -> None:
    now = PlanNow(
        **envelope(),
        plan_id="p1",
        slot=slot(0, "charge", target_soc_pct=80, value_inc_vat=0.0712),
        next_charge_start=START,
    )
    result = run_function("current action", json.loads(now.model_dump_json()))
    assert result["out"]["payload"]["action"] == "charge"
    assert result["out"]["payload"]["target_soc_pct"] == 80
    text = result["statuses"][-1]["text"]
    assert text.startswith("charge until") and "to 80%" in text and "7.12p/kWh" in text
    empty = run_function("current action", json.loads(PlanNow(**envelope(), plan_id="p1", slot=None).model_dump_json()))
    assert empty["out"] is None and "no slot" in empty["statuses"][-1]["text"]
    cleared = run_function("current action", "")
    assert cleared["out"] is None and cleared["statuses"][-1]["text"] == "no plan"


@needs_node
def test_plan_summary_function_reads_a_plan() -> None:
    slots = [
        slot(0, "self_use"),
        slot(1, "charge", target_soc_pct=60, grid_import_kwh=1.6, value_inc_vat=0.05),
        slot(2, "charge", target_soc_pct=80, grid_import_kwh=1.5, value_inc_vat=0.06),
        slot(3, "hold"),
    ]
    plan = Plan(**envelope(), plan_id="p2", slots=slots, expected_cost_gbp=1.234)
    result = run_function("plan summary", json.loads(plan.model_dump_json()))
    out = result["out"]["payload"]
    assert out["slots"] == 4 and len(out["charge_slots"]) == 2 and out["grid_charge_kwh"] == 3.1
    assert "2 charge slots" in result["statuses"][-1]["text"] and "£1.23" in result["statuses"][-1]["text"]
