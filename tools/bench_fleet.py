"""``make bench-fleet``: N simulated homes on one Mosquitto (prefix ``batsched/site-NNNN`` each), planned by a
shared-subscription group of fleet planner processes (``python -m services.fleet``), issue #10 "Fleet scale".

1. Start ``--workers`` planner processes (group ``$share/planners/…``).
2. Publish every home's state, retained: battery state, PV and load forecasts, one planner setting.
3. Barrier: each process answers ``batsched/fleet/cmd/sync`` once it holds every home's state.
4. Publish a new import price series for every home (``batsched/site-NNNN/pricing/import/rates``) as fast as the
   broker takes them: the "new price publication".
5. Wait for every home's ``planner/plan`` that used those prices. Printed: time until the last home was replanned,
   plans per second, per-home latency from its price publication (p50/p99/max), plans per process, and homes
   planned more or less than once.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from shared.topics import FLEET_SYNC, PLAN, Topics, across_homes, result_topic
from tests.reliability import docs
from tests.reliability.system import SimWorld
from tests.support.broker import Broker
from tools.bench_load import Spawner, pct

ROOT = "batsched"
FLEET = Topics(ROOT)
SYNC = FLEET.of(FLEET_SYNC)


def home(site: str) -> Topics:
    return Topics(f"{ROOT}/{site}")


class PlanWatcher:
    """Records each home's plans (arrival time, the prices' stamp) without keeping the payloads."""

    def __init__(self, port: int) -> None:
        self.arrivals: dict[str, list[tuple[float, str]]] = {}
        self.results: list[dict] = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        ready = threading.Event()
        self.client.on_connect = lambda c, *_: (
            c.subscribe([(across_homes(ROOT, PLAN).filter, 1), (result_topic(SYNC), 1)]),
            ready.set(),
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not ready.wait(10):
            raise TimeoutError("watcher could not connect")

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        now = time.monotonic()
        if msg.topic == result_topic(SYNC):
            with self.cond:
                self.results.append(json.loads(msg.payload))
                self.cond.notify_all()
            return
        site = msg.topic.split("/")[1]
        text = msg.payload[:4000].decode(errors="replace")
        marker = '"rates_generated_at":"'
        i = text.find(marker)
        stamp = text[i + len(marker) : i + len(marker) + 27] if i >= 0 else ""
        with self.cond:
            self.arrivals.setdefault(site, []).append((now, stamp))
            self.cond.notify_all()

    def wait(self, predicate: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("fleet benchmark: timed out waiting")
                self.cond.wait(left)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publisher(port: int) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def run(homes: int, workers: int, root_dir: Path) -> dict[str, Any]:
    broker = Broker(root_dir / "broker", extra_conf="max_inflight_messages 1000").start()
    spawn = Spawner(root_dir, broker)
    world = SimWorld()
    watcher = PlanWatcher(broker.port)
    pub = publisher(broker.port)
    try:
        env = {**world.env, "BATSCHED_LOG_LEVEL": "warning", "BATSCHED_HA_DISCOVERY": "false"}
        for w in range(1, workers + 1):
            spawn("services.fleet", env={**env, "BATSCHED_FLEET_WORKER": str(w)}, name=f"fleet-{w}")
        sites = [f"site-{i:04d}" for i in range(1, homes + 1)]
        now = world.now()
        pv, load = json.dumps(docs.energy_forecast(now, "pv")), json.dumps(docs.energy_forecast(now, "load"))
        t_state = time.monotonic()
        infos = []
        for i, site in enumerate(sites):
            state = docs.battery_state(now, soc=float(10 + i % 80))
            state["valid_until"] = docs.z(now + timedelta(hours=2))
            t = home(site)
            infos.append(pub.publish(t.battery_state, json.dumps(state), qos=1, retain=True))
            infos.append(pub.publish(t.forecast_pv, pv, qos=1, retain=True))
            infos.append(pub.publish(t.forecast_load, load, qos=1, retain=True))
            infos.append(pub.publish(t.planner_setting("min_soc_pct"), str(10 + i % 20), qos=1, retain=True))
        for info in infos:
            info.wait_for_publish(60)
        # Barrier: every process answers once it has taken in every home (retained state also reaches a process
        # that connected late).
        deadline = time.monotonic() + 300
        while True:
            rid = f"sync-{time.monotonic_ns()}"
            pub.publish(SYNC, json.dumps({"request_id": rid}), qos=1)
            try:
                # Short: a process still starting up misses the command; the next round asks again.
                watcher.wait(lambda r=rid: sum(1 for x in watcher.results if x.get("request_id") == r) >= workers, 3)
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
                continue
            answers = [x["data"] for x in watcher.results if x.get("request_id") == rid]
            if all(a.get("homes_with_battery") == homes for a in answers):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"planners never saw every home: {answers}")
        state_s = time.monotonic() - t_state

        # The new price publication: one series per home.
        rates = docs.rate_series(world.now(), n=72)
        rates["generated_at"] = docs.z(world.now()).replace("Z", ".123456Z")
        stamp = rates["generated_at"][:-1]
        body = json.dumps(rates)
        sent: dict[str, float] = {}
        t0 = time.monotonic()
        for site in sites:
            sent[site] = time.monotonic()
            pub.publish(home(site).import_rates, body, qos=1, retain=True)
        publish_s = time.monotonic() - t0

        def done() -> bool:
            return all(any(s.startswith(stamp) for _, s in watcher.arrivals.get(site, ())) for site in sites)

        watcher.wait(done, timeout=600)
        t_end = time.monotonic()
        latencies, counts = [], []
        for site in sites:
            mine = [t for t, s in watcher.arrivals[site] if s.startswith(stamp)]
            counts.append(len(mine))
            latencies.append(min(mine) - sent[site])
        rid = "final-stats"
        pub.publish(SYNC, json.dumps({"request_id": rid}), qos=1)
        watcher.wait(lambda: sum(1 for x in watcher.results if x.get("request_id") == rid) >= workers, 60)
        per_worker = {x["data"]["worker"]: x["data"]["planned"] for x in watcher.results if x.get("request_id") == rid}
        mean_ms = [x["data"]["mean_plan_ms"] for x in watcher.results if x.get("request_id") == rid]
        total = t_end - t0
        return {
            "homes": homes,
            "workers": workers,
            "state_load_s": round(state_s, 1),
            "price_publish_s": round(publish_s, 2),
            "all_replanned_s": round(total, 2),
            "plans_per_s": round(homes / total, 1),
            "latency_p50_s": round(pct(latencies, 50), 2),
            "latency_p99_s": round(pct(latencies, 99), 2),
            "latency_max_s": round(max(latencies), 2),
            "planned_per_worker": per_worker,
            "mean_plan_ms_per_worker": mean_ms,
            "homes_planned_twice_or_more": sum(1 for c in counts if c > 1),
            "homes_not_planned": sum(1 for c in counts if c == 0),
        }
    finally:
        watcher.stop()
        pub.disconnect()
        pub.loop_stop()
        spawn.stop_all()
        broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--homes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--workdir", help="keep logs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        for homes in args.homes:
            for workers in args.workers:
                r = run(homes, workers, Path(args.workdir or tmp) / f"{homes}-{workers}")
                results.append(r)
                if not args.json:
                    print(
                        f"{homes:>5} homes, {workers} planner process(es): all replanned {r['all_replanned_s']} s "
                        f"after the price publication began ({r['plans_per_s']} plans/s); per-home latency "
                        f"p50 {r['latency_p50_s']} s, p99 {r['latency_p99_s']} s, max {r['latency_max_s']} s; "
                        f"plans per process {r['planned_per_worker']} (mean plan {r['mean_plan_ms_per_worker']} ms); "
                        f"planned twice {r['homes_planned_twice_or_more']}, never {r['homes_not_planned']}; "
                        f"publishing the prices took {r['price_publish_s']} s, loading state {r['state_load_s']} s",
                        flush=True,
                    )
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
