"""The simulated world for reliability tests: simulators as processes on free ports, one shared simulated clock,
and the environment every service process gets (the same names ``make run`` uses)."""

from __future__ import annotations

import importlib.util
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tests.support.broker import free_port, wait_port

# Inside the bundled real prices and household data, like ``make run``.
SIM_START = datetime(2023, 6, 12, 5, 0, tzinfo=UTC)

SIMS = {"octopus": "sim.octopus", "openmeteo": "sim.openmeteo", "netzero": "sim.netzero"}
NETZERO_TOKEN = "demo-token"
NETZERO_SITE = "1234567890"

# Log lines that mean an exception escaped to the shared machinery (bus worker, runner tasks) or was printed.
FAILURE_MARKERS = re.compile(r"handler failed|Traceback \(most recent call last\)|on-connect hook failed")


def module_runnable(module: str) -> bool:
    """``python -m module`` would run: a plain module, or a package with ``__main__``."""
    try:
        spec = importlib.util.find_spec(module)
    except (ModuleNotFoundError, ValueError):
        return False
    if spec is None:
        return False
    if spec.submodule_search_locations is None:
        return True
    try:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    except (ModuleNotFoundError, ValueError):
        return False


def failure_lines(log: str) -> list[str]:
    return [line[:400] for line in log.splitlines() if FAILURE_MARKERS.search(line)]


@dataclass
class SimWorld:
    """Simulators (where they exist) and the shared simulated clock, running at real speed by default."""

    start: datetime = SIM_START
    speed: float = 1.0
    origin: float = field(default_factory=time.time)
    ports: dict[str, int] = field(default_factory=dict)
    running: dict[str, object] = field(default_factory=dict)
    # For every process of this world, simulators and services (e.g. libfaketime's, to step their wall clock) ...
    process_env: dict[str, str] = field(default_factory=dict)
    # ... and how far that steps their wall clock from this (test) process's, in seconds.
    wall_offset_s: float = 0.0

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.time() + self.wall_offset_s - self.origin) * self.speed)

    @property
    def clock_env(self) -> dict[str, str]:
        return {
            "BATSCHED_CLOCK": "sim",
            "BATSCHED_SIM_START": self.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "BATSCHED_SIM_SPEED": repr(self.speed),
            "BATSCHED_SIM_ORIGIN": repr(self.origin),
        }

    def start_sims(self, spawn: Callable, names: list[str] | tuple[str, ...] = tuple(SIMS)) -> SimWorld:
        """Start the named simulators that exist; the others get a free port nobody listens on (connection
        refused: the service's client must cope)."""
        for name in names:
            port = free_port()
            self.ports[name] = port
            if module_runnable(SIMS[name]):
                env = {**self.process_env, **self.clock_env}
                self.running[name] = spawn(SIMS[name], env=env, args=["--port", str(port)], name=name)
        for name in self.running:
            wait_port(self.ports[name], timeout=20)
        return self

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports.get(name) or free_port()}"

    @property
    def env(self) -> dict[str, str]:
        env = {
            **self.process_env,
            **self.clock_env,
            "BATSCHED_OCTOPUS_BASE_URL": self.url("octopus"),
            "BATSCHED_OPENMETEO_URL": f"{self.url('openmeteo')}/v1/forecast",
            "BATSCHED_NETZERO_BASE_URL": f"{self.url('netzero')}/api/v1",
            "BATSCHED_NETZERO_API_KEY": NETZERO_TOKEN,
            "BATSCHED_NETZERO_SITE_ID": NETZERO_SITE,
            "BATSCHED_DASHBOARD_HOST": "127.0.0.1",
            "BATSCHED_DASHBOARD_PORT": str(self.ports.setdefault("dashboard", free_port())),
            "BATSCHED_DASHBOARD_AUTH": "local",
            "BATSCHED_HA_DISCOVERY": "false",
        }
        return env
