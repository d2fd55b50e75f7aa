"""``python -m tools.healthcheck``, run as Compose runs it: a separate process, exit status and one line."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.deploy.project_broker import ROOT, ProjectBroker, User
from tests.support.broker import Broker, free_port
from tests.support.probe import Probe


def healthcheck(*args: str, env: dict[str, str] | None = None, secrets: Path | None = None) -> tuple[int, str]:
    full = {
        **os.environ,
        "BATSCHED_SECRETS_DIR": str(secrets or ROOT / "no-such-secrets-dir"),
        **(env or {}),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tools.healthcheck", *args, "--timeout", "3"],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done.returncode, done.stderr.strip()


def test_healthy_while_the_service_runs_and_unhealthy_after_it_dies(spawn, broker: Broker, probe: Probe) -> None:
    svc = spawn("tests.support.echo_service", name="echo")
    probe.wait_for("batsched/echo/status", lambda m: m.text == "online", timeout=15)
    assert healthcheck("echo", env=broker.env) == (0, "")
    mark = probe.mark()
    svc.kill()
    probe.wait_for("batsched/echo/status", lambda m: m.text == "offline", timeout=10, after=mark)
    code, why = healthcheck("echo", env=broker.env)
    assert code == 1 and "'offline'" in why


def test_unhealthy_when_the_service_never_reported(broker: Broker) -> None:
    code, why = healthcheck("planner", env=broker.env)
    assert code == 1 and "no status on batsched/planner/status" in why


def test_unhealthy_when_the_broker_is_down() -> None:
    code, why = healthcheck("planner", env={"BATSCHED_MQTT_HOST": "127.0.0.1", "BATSCHED_MQTT_PORT": str(free_port())})
    assert code == 1 and "cannot reach the broker" in why


def test_logs_in_with_the_containers_own_user_and_secret_file(tmp_path: Path) -> None:
    broker = ProjectBroker(tmp_path / "broker").start()
    try:
        pricing = User(broker.port, "pricing", broker.passwords["pricing"])
        assert pricing.connect() == 0
        pricing.client.publish("batsched/pricing/status", "online", qos=1, retain=True).wait_for_publish(5)
        pricing.close()
        secrets = tmp_path / "run-secrets"
        secrets.mkdir()
        (secrets / "mqtt_password").write_text(broker.passwords["pricing"] + "\n")  # Compose secret target name
        env = {**broker.env, "BATSCHED_MQTT_USERNAME": "pricing"}
        assert healthcheck("pricing", env=env, secrets=secrets) == (0, "")
        (secrets / "mqtt_password").write_text("wrong\n")
        code, why = healthcheck("pricing", env=env, secrets=secrets)
        assert code == 1 and "refused" in why
    finally:
        broker.stop()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_http_and_tcp_checks(http_port: int) -> None:
    assert healthcheck("--http", f"http://127.0.0.1:{http_port}/healthz") == (0, "")
    code, why = healthcheck("--http", f"http://127.0.0.1:{http_port}/broken")
    assert code == 1 and "503" in why
    assert healthcheck("--tcp", f"127.0.0.1:{http_port}") == (0, "")
    code, why = healthcheck("--tcp", f"127.0.0.1:{free_port()}")
    assert code == 1 and "not accepting" in why


def test_the_images_default_check_finds_the_service_of_the_container(tmp_path: Path, broker: Broker) -> None:
    from tools.healthcheck import service_from_env

    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"/sbin/docker-init\0--\0python\0-m\0services.executor.watchdog\0")
    assert service_from_env(str(cmdline)) == "watchdog"
    cmdline.write_bytes(b"python\0-m\0sim.octopus\0--port\0008080\0")
    assert service_from_env(str(cmdline)) is None
    code, why = healthcheck("--from-env", env={**broker.env, "BATSCHED_SERVICE": "planner"})
    assert code == 1 and "batsched/planner/status" in why
