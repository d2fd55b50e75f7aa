"""The whole simulated system for fault injection: a real Mosquitto, the three simulators and every service that
exists, each as its own process, on one shared simulated clock."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from tests.reliability.system import SimWorld, module_runnable
from tests.support.probe import Probe
from tests.support.procs import ServiceProcess

# (status-topic name, module); the order they start in.
SERVICES = (
    ("pricing", "services.pricing"),
    ("forecast", "services.forecast"),
    ("planner", "services.planner"),
    ("executor", "services.executor"),
    ("watchdog", "services.executor.watchdog"),
    ("dashboard", "services.dashboard"),
    ("accounting", "services.accounting"),
)
# Every service with a SQLite store, and its status-topic name.
STORES = {
    "services.pricing": "pricing",
    "services.forecast": "forecast",
    "services.executor": "executor",
    "services.dashboard": "dashboard",
    "services.accounting": "accounting",
}
# Retained state each service must put back after a broker restart (from its own store or memory).
RETAINED = {
    "pricing": ("batsched/pricing/import/rates", "batsched/pricing/import/current"),
    "forecast": ("batsched/forecast/pv", "batsched/forecast/load"),
    "planner": ("batsched/planner/plan", "batsched/planner/min_soc_pct"),
    "executor": ("batsched/executor/mode", "batsched/battery/state"),
}


@dataclass
class System:
    spawn: Any
    probe: Probe
    world: SimWorld = field(default_factory=SimWorld)
    procs: dict[str, ServiceProcess] = field(default_factory=dict)

    def start(self, extra_env: dict[str, str] | None = None, log_suffix: str = "") -> System:
        self.world.start_sims(self.spawn)
        return self.start_services(extra_env, log_suffix)

    def start_services(
        self, extra_env: dict[str, str] | None = None, log_suffix: str = "", names: tuple[str, ...] | None = None
    ) -> System:
        """Start the services (``names``, or all that exist) once the simulators run (e.g. after a switch)."""
        self.env = {**self.world.env, **(extra_env or {})}
        for name, module in SERVICES:
            if (names is None or name in names) and module_runnable(module):
                self.procs[name] = self.spawn(module, env=self.env, name=f"{name}{log_suffix}")
        return self

    def restart(self, name: str) -> ServiceProcess:
        module = dict(SERVICES)[name]
        self.procs[name] = self.spawn(module, env=self.env, name=f"{name}-again")
        return self.procs[name]

    def wait_online(self, names: list[str] | None = None, timeout: float = 60, after: float | None = None) -> None:
        for name in names or list(self.procs):
            self.probe.wait_for(f"batsched/{name}/status", lambda m: m.text == "online", timeout=timeout, after=after)

    def netzero(self, path: str = "/_state", body: dict | None = None) -> dict:
        url = f"{self.world.url('netzero')}{path}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def sim_control(self, sim: str, body: dict, path: str = "/_control") -> dict:
        req = urllib.request.Request(f"{self.world.url(sim)}{path}", data=json.dumps(body).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())


def seconds_since(mark: float) -> float:
    return time.monotonic() - mark
