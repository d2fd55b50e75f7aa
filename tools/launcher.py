"""``make run``: the whole system on one machine with no accounts and no Docker.

Starts a private MQTT broker (``mosquitto`` when installed, else the pure-Python ``amqtt``) on a port that does
not collide with 1883, the simulators (fake Octopus, fake Open-Meteo, NetZero simulator) replaying real data, and
every service in simulation mode on a shared fast clock. Ctrl-C (or SIGTERM) stops everything and leaves no
process behind.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIM_START = "2024-02-12T13:00:00Z"  # a winter weekday in the bundled data: cheap nights, little sun


@dataclass
class Component:
    name: str
    module: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    def available(self) -> bool:
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(preferred: int) -> int:
    if port_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def broker_command(port: int, run_dir: Path) -> tuple[list[str], str]:
    """The broker to run and the MQTT protocol version the services should speak to it."""
    mosquitto = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if mosquitto:
        conf = run_dir / "mosquitto.conf"
        lines = [f"listener {port} 127.0.0.1", "allow_anonymous true", "persistence false", "log_dest stderr"]
        if os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n")
        return [mosquitto, "-c", str(conf)], "5"
    return [sys.executable, "-m", "tools.embedded_broker", "--port", str(port)], "3.1.1"


def components(ports: dict[str, int]) -> list[Component]:
    sims = [
        Component("fake-octopus", "sim.octopus", ["--port", str(ports["octopus"])]),
        Component("fake-open-meteo", "sim.openmeteo", ["--port", str(ports["openmeteo"])]),
        Component("netzero-sim", "sim.netzero", ["--port", str(ports["netzero"])]),
    ]
    services = [
        Component("pricing", "services.pricing"),
        Component("forecast", "services.forecast"),
        Component("planner", "services.planner"),
        Component("executor", "services.executor"),
        Component("watchdog", "services.executor.watchdog"),
        Component("accounting", "services.accounting"),
        Component("dashboard", "services.dashboard"),
    ]
    return sims + services


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default=os.environ.get("BATSCHED_RUN_DIR", str(ROOT / ".run")))
    parser.add_argument("--broker-port", type=int, default=int(os.environ.get("BATSCHED_RUN_BROKER_PORT", "11883")))
    parser.add_argument("--dashboard-port", type=int, default=int(os.environ.get("BATSCHED_DASHBOARD_PORT", "5000")))
    parser.add_argument("--sim-start", default=os.environ.get("BATSCHED_SIM_START", DEFAULT_SIM_START))
    parser.add_argument("--speed", type=float, default=float(os.environ.get("BATSCHED_SIM_SPEED", "60")))
    args = parser.parse_args(argv)

    run_dir = Path(args.run_dir).resolve()
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    datetime.fromisoformat(args.sim_start.replace("Z", "+00:00"))  # fail early on a bad start time

    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    broker_port = pick_port(args.broker_port)
    ports = {"octopus": pick_port(18080), "openmeteo": pick_port(18081), "netzero": pick_port(18082)}
    broker_cmd, protocol = broker_command(broker_port, run_dir)
    common = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "BATSCHED_MQTT_HOST": "127.0.0.1",
        "BATSCHED_MQTT_PORT": str(broker_port),
        "BATSCHED_MQTT_PROTOCOL": protocol,
        "BATSCHED_DATA_DIR": str(run_dir / "data"),
        "BATSCHED_CLOCK": "sim",
        "BATSCHED_SIM_START": args.sim_start,
        "BATSCHED_SIM_SPEED": str(args.speed),
        "BATSCHED_SIM_ORIGIN": repr(time.time()),
        "BATSCHED_OCTOPUS_BASE_URL": f"http://127.0.0.1:{ports['octopus']}",
        "BATSCHED_OPENMETEO_URL": f"http://127.0.0.1:{ports['openmeteo']}/v1/forecast",
        "BATSCHED_NETZERO_BASE_URL": f"http://127.0.0.1:{ports['netzero']}/api/v1",
        "BATSCHED_NETZERO_API_KEY": "demo-token",
        "BATSCHED_NETZERO_SITE_ID": "1234567890",
        "BATSCHED_DASHBOARD_PORT": str(args.dashboard_port),
        "BATSCHED_DASHBOARD_HOST": "127.0.0.1",
        "BATSCHED_DASHBOARD_AUTH": "local",
        "BATSCHED_SECRETS_DIR": str(run_dir / "secrets"),
    }

    procs: list[tuple[str, subprocess.Popen]] = []

    def launch(name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(run_dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - closed when the launcher exits
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        procs.append((name, proc))
        return proc

    launch("broker", broker_cmd, common)
    if not wait_port(broker_port, 10):
        print("batsched: the MQTT broker did not start; see .run/logs/broker.log", file=sys.stderr)
        stop_all(procs)
        return 1
    started = []
    for comp in components(ports):
        if comp.available():
            launch(comp.name, [sys.executable, "-m", comp.module, *comp.args], {**common, **comp.env})
            started.append(comp.name)
    (run_dir / "pids").write_text("\n".join(str(p.pid) for _, p in procs) + "\n")

    print(f"batsched is running (simulated clock from {args.sim_start}, {args.speed:g}x).", flush=True)
    print(f"  MQTT broker:  mqtt://127.0.0.1:{broker_port}  (MQTT Explorer, mosquitto_sub -p {broker_port} -t '#' -v)")
    print(f"  started:      {', '.join(started) or 'no services yet'}")
    if "dashboard" in started:
        print(
            f"  dashboard:    http://localhost:{args.dashboard_port}  (the login token is in .run/logs/dashboard.log)"
        )
    print(f"  logs:         {os.path.relpath(run_dir / 'logs', Path.cwd())}/", flush=True)
    print("Press Ctrl-C to stop.", flush=True)

    reported: set[str] = set()
    while not stopping:
        for name, proc in procs:
            if proc.poll() is not None and name not in reported:
                reported.add(name)
                print(f"batsched: {name} exited with status {proc.returncode}; see its log", file=sys.stderr)
        if "broker" in reported:
            break
        time.sleep(0.2)
    stop_all(procs)
    print("batsched stopped.", flush=True)
    return 0


def stop_all(procs: list[tuple[str, subprocess.Popen]], timeout: float = 15.0) -> None:
    """SIGTERM everything (services first, broker last so they can say offline), then SIGKILL stragglers."""
    services = [(n, p) for n, p in procs if n != "broker"]
    broker = [(n, p) for n, p in procs if n == "broker"]
    for group in (services, broker):
        for _, proc in group:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + timeout
        for _, proc in group:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


if __name__ == "__main__":
    raise SystemExit(main())
