"""``make bench-load``: QoS 1 state traffic through a real Mosquitto into the real services, and the end-to-end
latency from a price publication to the executor's decision (issue #10 "Load").

Phase A (throughput and loss): ``--rate`` battery-state messages a second (QoS 1, each with a unique
``observed_at``) for ``--duration`` seconds into the planner and the dashboard. Counted:
- broker delivery: a probe subscriber checks the sequence (every message once);
- the dashboard: rows its SQLite history holds for the run (the service's own record of what it handled);
- the planner: its next plan names the last state it saw (``inputs.battery_observed_at``).

Phase B (latency): ``--samples`` price publications (``pricing/import/rates``), one after the other, with the real
planner and executor against the NetZero simulator. Measured per sample: publication → ``planner/plan`` that used
those prices → ``executor/applied`` for that plan (the executor's decision), as seen by a probe on the bus.

Everything runs on a private broker on a free port with a simulated clock at real speed. Prints the figures.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from shared.topics import Topics
from tests.reliability import docs
from tests.reliability.system import SimWorld
from tests.support.broker import Broker
from tests.support.probe import Probe
from tests.support.procs import ServiceProcess

PREFIX = "batsched"
T = Topics(PREFIX)


class Spawner:
    """Service processes for the benchmark (the same entry points and environment as the tests)."""

    def __init__(self, root: Path, broker: Broker) -> None:
        self.root, self.broker, self.procs = root, broker, []

    def __call__(self, module: str, env: dict[str, str] | None = None, args: list[str] | None = None, name: str = ""):
        full = {**self.broker.env, "BATSCHED_DATA_DIR": str(self.root / "data"), **(env or {})}
        proc = ServiceProcess(module, full, self.root / "logs" / f"{name or module}.log", args).start()
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for p in reversed(self.procs):  # services before the simulators they restore state through
            p.terminate(10)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def online(probe: Probe, service: str, timeout: float = 60) -> None:
    probe.wait_for(T.status(service), lambda m: m.text == "online", timeout=timeout)


# ------------------------------------------------------------------------------------------------ phase A


def phase_a(root: Path, broker: Broker, rate: float, duration: float) -> dict[str, Any]:
    world = SimWorld()
    spawn = Spawner(root / "a", broker)
    probe = Probe(broker.port, subscribe=T.all).start()
    try:
        spawn("services.planner", env={**world.env, "BATSCHED_PLANNER_DEBOUNCE_S": "0.2"}, name="planner")
        spawn("services.dashboard", env=world.env, name="dashboard")
        online(probe, "planner")
        online(probe, "dashboard")

        base = world.now().replace(microsecond=0)
        n = int(rate * duration)
        received: dict[int, int] = {}
        delays: list[float] = []
        sent_at: dict[int, float] = {}
        lock = threading.Lock()

        def on_count(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
            try:
                seq = int(json.loads(msg.payload)["load_power_w"])
            except (ValueError, KeyError, TypeError):
                return
            if seq < 0:  # the barrier message
                return
            with lock:
                received[seq] = received.get(seq, 0) + 1
                if seq in sent_at:
                    delays.append(time.monotonic() - sent_at[seq])

        counter = _client(broker.port, T.battery_state, on_count)
        pub = _client(broker.port)
        infos = []
        start = time.monotonic()
        for i in range(n):
            due = start + i / rate
            while (left := due - time.monotonic()) > 0:
                time.sleep(min(left, 0.005))  # pacing the publisher to the requested rate
            # One simulated second apart: each message has its own observed_at (the wire format has seconds).
            doc = docs.battery_state(base + timedelta(seconds=i), soc=float(i % 90) + 5)
            doc["load_power_w"] = float(i)  # the sequence number, checked by the counting subscriber
            doc["valid_until"] = docs.z(base + timedelta(seconds=i + 3600))
            sent_at[i] = time.monotonic()
            infos.append(pub.publish(T.battery_state, json.dumps(doc), qos=1))
        for info in infos:
            info.wait_for_publish(30)
        send_s = time.monotonic() - start

        # Barrier: a distinctive last state; once a service shows it, it has handled everything before it.
        last = base + timedelta(seconds=n)
        final = docs.battery_state(last, soc=63.7)
        final["valid_until"] = docs.z(last + timedelta(hours=1))
        final["load_power_w"] = -1.0  # not a sequence number
        mark = probe.mark()
        probe.publish(T.battery_state, json.dumps(final))
        probe.publish(T.planner_replan, json.dumps(docs.command("bench-barrier")))
        want = docs.z(last)
        plan = probe.wait_json(
            T.plan,
            lambda d: (d.get("inputs") or {}).get("battery_observed_at", "").startswith(want[:19]),
            timeout=120,
            after=mark,
        )
        planner_caught_up = bool(plan)
        dash = next(p for p in spawn.procs if "dashboard" in str(p.log_path))
        _wait_dashboard(dash, world, "63.7")
        drain_s = time.monotonic() - start - send_s
        dash.terminate(15)
        rows = _count_rows(root / "a" / "data" / "dashboard.db", base, last)
        counter.disconnect()
        pub.disconnect()
        missing = [i for i in range(n) if i not in received]
        dupes = sum(1 for v in received.values() if v > 1)
        return {
            "sent": n,
            "rate_per_s": round(n / send_s, 1),
            "broker_delivered": len(received),
            "broker_lost": len(missing),
            "broker_duplicates": dupes,
            "broker_p50_ms": round(pct(delays, 50) * 1000, 2),
            "broker_p99_ms": round(pct(delays, 99) * 1000, 2),
            "dashboard_rows": rows,
            "dashboard_lost": n - rows,
            "planner_caught_up": planner_caught_up,
            "drain_s": round(drain_s, 2),
        }
    finally:
        spawn.stop_all()
        probe.stop()


def _client(port: int, topic: str | None = None, on_message: Any = None) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(100)
    ready = threading.Event()

    def on_connect(client: mqtt.Client, *_a: Any) -> None:
        if topic:
            client.subscribe(topic, qos=1)
        ready.set()

    c.on_connect = on_connect
    if on_message:
        c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.loop_start()
    if not ready.wait(10):
        raise TimeoutError("benchmark client could not connect")
    if topic:  # make sure the subscription is in place: a round trip through the broker
        got = threading.Event()
        c.message_callback_add("bench/sync", lambda *_: got.set())
        c.subscribe("bench/sync", qos=1)
        while not got.is_set():
            c.publish("bench/sync", "x", qos=1)
            got.wait(0.2)
    return c


def _wait_dashboard(proc: ServiceProcess, world: SimWorld, needle: str, timeout: float = 120) -> None:
    import re

    import httpx

    tokens = re.findall(r"token=([A-Za-z0-9_\-]+)", proc.log())
    if not tokens:
        raise RuntimeError("the dashboard printed no local login link")
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=f"http://127.0.0.1:{world.ports['dashboard']}", timeout=10) as web:
        web.get("/", params={"token": tokens[-1]}, follow_redirects=True)  # the newest link: each works once
        while needle not in web.get("/api/now").text:
            if time.monotonic() > deadline:
                raise TimeoutError("the dashboard never showed the final state")
            time.sleep(0.1)  # polling an HTTP view (it has no event to wait on), bounded by the deadline


def _count_rows(db: Path, first, last) -> int:
    with sqlite3.connect(db) as con:
        (n,) = con.execute(
            "SELECT COUNT(*) FROM battery WHERE observed_at >= ? AND observed_at < ?",
            (first.replace(microsecond=0).isoformat(), last.replace(microsecond=0).isoformat()),
        ).fetchone()
    return int(n)


# ------------------------------------------------------------------------------------------------ phase B


def phase_b(root: Path, broker: Broker, samples: int) -> dict[str, Any]:
    world = SimWorld()
    spawn = Spawner(root / "b", broker)
    world.start_sims(spawn, ("netzero",))
    probe = Probe(broker.port, subscribe=T.all).start()
    try:
        env = {**world.env, "BATSCHED_PLANNER_DEBOUNCE_S": "0"}
        spawn("services.executor", env=env, name="executor")
        spawn("services.planner", env=env, name="planner")
        online(probe, "executor")
        online(probe, "planner")
        probe.wait_json(T.battery_state, timeout=60)  # the executor has read the simulator once
        to_plan: list[float] = []
        to_decision: list[float] = []
        outcomes: dict[str, int] = {}
        for i in range(samples):
            now = world.now()
            rates = docs.rate_series(now)
            rates["generated_at"] = docs.z(now).replace("Z", f".{i + 1:06d}Z")
            mark = probe.mark()
            t0 = time.monotonic()
            probe.publish(T.import_rates, json.dumps(rates), retain=True)
            stamp = rates["generated_at"][:-1]  # the plan names the rates it used (inputs.rates_generated_at)
            try:
                plan_msg = probe.wait_for(T.plan, lambda m, s=stamp: s in m.text, timeout=30, after=mark)
            except TimeoutError:
                seen = [json.loads(m.payload).get("inputs") for m in probe.on(T.plan)[-3:]]
                raise TimeoutError(f"no plan used rates {stamp}; last plans' inputs: {seen}") from None

            def for_these_rates(m: Any, s: str = stamp, since: float = mark) -> bool:
                # The planner may replan on the same prices (a new battery state); any of those plans counts.
                ids = {p.json()["plan_id"] for p in probe.on(T.plan) if p.at >= since and s in p.text}
                return bool(m.payload) and m.json().get("plan_id") in ids

            applied = probe.wait_for(T.executor_applied, for_these_rates, timeout=90, after=mark)
            to_plan.append(plan_msg.at - t0)
            to_decision.append(applied.at - t0)
            outcome = applied.json().get("outcome", "?")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        return {
            "samples": samples,
            "price_to_plan_p50_ms": round(pct(to_plan, 50) * 1000, 1),
            "price_to_plan_p99_ms": round(pct(to_plan, 99) * 1000, 1),
            "price_to_decision_p50_ms": round(pct(to_decision, 50) * 1000, 1),
            "price_to_decision_p99_ms": round(pct(to_decision, 99) * 1000, 1),
            "price_to_decision_max_ms": round(max(to_decision) * 1000, 1),
            "price_to_decision_mean_ms": round(statistics.fmean(to_decision) * 1000, 1),
            "decision_outcomes": outcomes,
        }
    finally:
        spawn.stop_all()
        probe.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="state messages per second (phase A)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of traffic (phase A)")
    parser.add_argument("--samples", type=int, default=100, help="price publications timed (phase B)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.add_argument("--workdir", help="keep logs and data here (default: a temporary directory)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        root = Path(args.workdir or tmp)
        broker = Broker(root / "broker").start()
        try:
            a = phase_a(root, broker, args.rate, args.duration)
            b = phase_b(root, broker, args.samples)
        finally:
            broker.stop()
    result = {"load": a, "latency": b}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"Phase A: {a['sent']} QoS-1 battery states at {a['rate_per_s']} msg/s into planner + dashboard")
    print(
        f"  broker: delivered {a['broker_delivered']}, lost {a['broker_lost']}, duplicates {a['broker_duplicates']}, "
        f"publish->subscriber p50 {a['broker_p50_ms']} ms p99 {a['broker_p99_ms']} ms"
    )
    print(f"  dashboard: stored {a['dashboard_rows']} of {a['sent']} (lost {a['dashboard_lost']})")
    print(f"  planner: caught up with the last state: {a['planner_caught_up']}; drained {a['drain_s']} s after sending")
    print(f"Phase B: {b['samples']} price publications -> planner -> executor (NetZero simulator)")
    print(f"  price -> plan:     p50 {b['price_to_plan_p50_ms']} ms, p99 {b['price_to_plan_p99_ms']} ms")
    print(
        f"  price -> decision: p50 {b['price_to_decision_p50_ms']} ms, p99 {b['price_to_decision_p99_ms']} ms, "
        f"max {b['price_to_decision_max_ms']} ms; outcomes {b['decision_outcomes']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
