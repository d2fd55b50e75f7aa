"""A real Home Assistant core for the tests: started from its own venv (``tools/ha_venv.py``), onboarded through its
onboarding API for a token, the MQTT integration added through the config-flow REST API, read through REST and
the WebSocket API. Nothing of Home Assistant is imported here: it is another program, spoken to over HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

CONFIG = """\
homeassistant:
  name: batsched test home
  latitude: 51.5
  longitude: -0.12
  elevation: 10
  unit_system: metric
  time_zone: Europe/London
  currency: GBP
  country: GB
http:
  server_host: 127.0.0.1
  server_port: {port}
api:
config:
onboarding:
websocket_api:
"""


@dataclass
class HomeAssistant:
    hass: Path  # the venv's ``hass``
    config_dir: Path
    port: int
    proc: subprocess.Popen | None = None
    token: str | None = None
    starts: list[float] = field(default_factory=list)  # seconds each start took until the API answered

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.config_dir / "hass.out"

    def start(self, timeout: float = 240.0) -> HomeAssistant:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        conf = self.config_dir / "configuration.yaml"
        if not conf.exists():
            conf.write_text(CONFIG.format(port=self.port))
        t0 = time.monotonic()
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [str(self.hass), "-c", str(self.config_dir), "--skip-pip"], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = t0 + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Home Assistant exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                # 200 (onboarding list) before onboarding, 401 (needs a token) after: either way it is up
                if httpx.get(f"{self.base}/api/onboarding", timeout=2).status_code in (200, 401):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"Home Assistant did not answer in {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.5)
        self.starts.append(time.monotonic() - t0)
        return self

    def stop(self, timeout: float = 60.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # ------------------------------------------------------------------ setup through the APIs

    def onboard(self) -> str:
        """Create the owner through the onboarding API and exchange its auth code for an access token."""
        client_id = f"{self.base}/"
        r = httpx.post(
            f"{self.base}/api/onboarding/users",
            json={"client_id": client_id, "name": "Tester", "username": "tester", "password": "pw-12345678",
                  "language": "en"},
            timeout=30,
        )  # fmt: skip
        r.raise_for_status()
        r = httpx.post(
            f"{self.base}/auth/token",
            data={"grant_type": "authorization_code", "code": r.json()["auth_code"], "client_id": client_id},
            timeout=30,
        )
        r.raise_for_status()
        self.token = r.json()["access_token"]
        return self.token

    def add_mqtt(self, broker_port: int) -> dict[str, Any]:
        """The MQTT integration through its config flow (broker step), as a person would in Settings."""
        flow = self.post("/api/config/config_entries/flow", {"handler": "mqtt", "show_advanced_options": False})
        if flow.get("step_id") != "broker":
            raise AssertionError(f"unexpected MQTT config flow: {flow}")
        done = self.post(
            f"/api/config/config_entries/flow/{flow['flow_id']}", {"broker": "127.0.0.1", "port": broker_port}
        )
        if done.get("type") != "create_entry":
            raise AssertionError(f"MQTT config flow did not finish: {done}")
        return done

    # ------------------------------------------------------------------ REST and WebSocket

    @property
    def headers(self) -> dict[str, str]:
        assert self.token, "onboard() first"
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str) -> Any:
        r = httpx.get(f"{self.base}{path}", headers=self.headers, timeout=30)
        r.raise_for_status()
        return r.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        r = httpx.post(f"{self.base}{path}", headers=self.headers, json=body, timeout=30)
        r.raise_for_status()
        return r.json()

    def states(self) -> dict[str, dict[str, Any]]:
        return {s["entity_id"]: s for s in self.get("/api/states")}

    def call(self, domain: str, service: str, **data: Any) -> Any:
        return self.post(f"/api/services/{domain}/{service}", data)

    def ws(self, *commands: dict[str, Any]) -> list[Any]:
        """Send WebSocket commands (each without ``id``) after authenticating; their results, in order."""
        out = []
        with connect(f"ws://127.0.0.1:{self.port}/api/websocket", open_timeout=15) as sock:
            assert json.loads(sock.recv(15))["type"] == "auth_required"
            sock.send(json.dumps({"type": "auth", "access_token": self.token}))
            answer = json.loads(sock.recv(15))
            assert answer["type"] == "auth_ok", answer
            for n, cmd in enumerate(commands, start=1):
                sock.send(json.dumps({"id": n, **cmd}))
                while True:
                    msg = json.loads(sock.recv(30))
                    if msg.get("id") == n and msg.get("type") == "result":
                        break
                if not msg.get("success"):
                    raise AssertionError(f"WebSocket {cmd['type']} failed: {msg.get('error')}")
                out.append(msg["result"])
        return out

    def registry(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(entity registry entries, device registry entries)."""
        entities, devices = self.ws({"type": "config/entity_registry/list"}, {"type": "config/device_registry/list"})
        return entities, devices

    def entry(self, entity_id: str) -> dict[str, Any]:
        """One entity registry entry with its options (display precision lives there)."""
        return self.ws({"type": "config/entity_registry/get", "entity_id": entity_id})[0]
