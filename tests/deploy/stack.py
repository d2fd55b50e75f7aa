"""The Compose stack on a real engine, for tests/deploy/test_stack.py (``make test-compose`` starts the engine).

A copy of what a user checks out (compose files, Dockerfile, mosquitto/, the sources) goes into a fresh folder,
``tools/init_secrets.py`` makes its secrets, certificate and ``.env`` there as for a user, and ``.env`` moves
every host port to a free port on 127.0.0.1. Nothing of the checkout's own ``.env`` or ``secrets/`` is used.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
CHECKOUT = (
    "compose.yaml",
    "compose.sim.yaml",
    "Dockerfile",
    ".dockerignore",
    ".env.example",
    "pyproject.toml",
    "mosquitto",
    "shared",
    "services",
    "sim",
    "tools",
)
SERVICES = ("pricing", "forecast", "planner", "executor", "watchdog", "accounting", "dashboard")
SIMULATORS = ("fake-octopus", "fake-open-meteo", "netzero-sim")
CONTAINERS = ("mosquitto", *SERVICES, *SIMULATORS)
PORTS = (
    "BATSCHED_MQTT_HOST_PORT",
    "BATSCHED_MQTT_WS_HOST_PORT",
    "BATSCHED_MQTTS_HOST_PORT",
    "BATSCHED_MQTT_WSS_HOST_PORT",
    "BATSCHED_DASHBOARD_HOST_PORT",
)
IMAGE = "batsched:0.1.0"


def compose_command() -> list[str]:
    """``docker compose`` (v2) where the plugin exists, else Debian's ``docker-compose`` (1.29)."""
    v2 = subprocess.run(["docker", "compose", "version"], capture_output=True, timeout=30, check=False)
    return ["docker", "compose"] if v2.returncode == 0 else ["docker-compose"]


def run(cmd: list[str], timeout: float = 120, check: bool = True, **kw: Any) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    if check and done.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


@dataclass
class Stack:
    state: Path  # BATSCHED_STACK_STATE: where the run script looks for the project to take down
    name: str = "batschedci"
    ports: dict[str, int] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def project(self) -> Path:
        return self.state / "project"

    def prepare(self, sim_start: str) -> None:
        if self.project.exists():
            shutil.rmtree(self.project)
        self.project.mkdir(parents=True)
        for name in CHECKOUT:
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, self.project / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copy2(src, self.project / name)
        run([sys.executable, "tools/init_secrets.py"], cwd=self.project)  # as a user does: secrets/, TLS, .env
        self.ports = {name: free_port() for name in PORTS}
        lines = [f"{name}={port}" for name, port in self.ports.items()]
        lines += [
            f"{bind}=127.0.0.1" for bind in ("BATSCHED_MQTT_BIND", "BATSCHED_MQTTS_BIND", "BATSCHED_DASHBOARD_BIND")
        ]
        lines.append(f"BATSCHED_SIM_START={sim_start}")
        with (self.project / ".env").open("a") as env:
            env.write(
                "\n# make test-compose: host ports off the machine's own, on loopback\n" + "\n".join(lines) + "\n"
            )
        down = [*self.base(), "down", "-v", "--remove-orphans", "-t", "60"]
        (self.state / "compose-down").write_text(shlex.join(down) + "\n")

    def base(self) -> list[str]:
        return [*compose_command(), "-p", self.name, "-f", "compose.yaml", "-f", "compose.sim.yaml"]

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BATSCHED_")}  # nothing exported
        return run([*self.base(), *args], timeout=timeout, check=check, cwd=self.project, env=env)

    def build(self) -> float:
        args = [
            a for line in os.environ.get("BATSCHED_BUILD_ARGS", "").splitlines() if line for a in ("--build-arg", line)
        ]
        started = time.monotonic()
        # one image for every service, and the simulators' (the same plus pandas: the Dockerfile's sim target)
        self.compose("build", *args, "pricing", "fake-octopus", timeout=1800)
        return time.monotonic() - started

    def cid(self, service: str) -> str:
        out = self.compose("ps", "-q", service).stdout.split()
        if not out:
            raise RuntimeError(f"no container for {service}")
        return out[0]

    def states(self) -> dict[str, str]:
        """Service -> its health ("healthy", "starting", "unhealthy"), or its state when it has no healthcheck."""
        ids = self.compose("ps", "-q").stdout.split()
        if not ids:
            return {}
        fmt = (
            '{{index .Config.Labels "com.docker.compose.service"}} '
            "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}"
        )
        out = run(["docker", "inspect", "-f", fmt, *ids]).stdout
        return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())

    def wait_healthy(self, timeout: float = 420) -> float:
        started = time.monotonic()
        states: dict[str, str] = {}
        while time.monotonic() - started < timeout:
            states = self.states()
            if set(states) >= set(CONTAINERS) and all(states[c] == "healthy" for c in CONTAINERS):
                return time.monotonic() - started
            time.sleep(1)
        raise TimeoutError(f"not all healthy after {timeout:.0f}s: {states}\n{self.logs()[-6000:]}")

    def logs(self, *services: str) -> str:
        return self.compose("logs", "--no-color", *services, check=False).stdout

    def exec_python(self, service: str, code: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return run(["docker", "exec", "-i", self.cid(service), "python", "-"], input=code, timeout=timeout, check=False)

    def netzero_state(self) -> dict[str, Any]:
        code = (
            "import urllib.request\n"
            "print(urllib.request.urlopen('http://127.0.0.1:18082/_state', timeout=10).read().decode())"
        )
        done = self.exec_python("netzero-sim", code)
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        return json.loads(done.stdout)

    def password(self, user: str) -> str:
        return (self.project / "secrets" / f"mqtt_password_{user}").read_text().strip()

    def memory(self) -> dict[str, str]:
        ids = self.compose("ps", "-q").stdout.split()
        out = run(["docker", "stats", "--no-stream", "--format", "{{.ID}} {{.MemUsage}}", *ids], timeout=120).stdout
        names = run(["docker", "inspect", "-f", '{{.Id}} {{index .Config.Labels "com.docker.compose.service"}}', *ids])
        service = {line.split()[0][:12]: line.split()[1] for line in names.stdout.splitlines()}
        return {
            service.get(line.split()[0][:12], line.split()[0]): line.split(" ", 1)[1].split(" / ")[0]
            for line in out.splitlines()
        }

    def image_mb(self, tag: str) -> float:
        return int(run(["docker", "image", "inspect", "-f", "{{.Size}}", tag]).stdout.strip()) / 1e6
