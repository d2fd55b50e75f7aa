"""A private Mosquitto running the project's own ``mosquitto/mosquitto.conf``, ACL and password tooling.

Only what cannot work on a test machine is rewritten: the listeners move to free loopback ports, the password,
ACL, certificate and persistence paths move to the test's directory, and ``user root`` is added when the tests
run as root. Every other line is kept, so a directive the broker rejects fails these tests. The TLS certificate
is made by ``tools/init_secrets.py``, as for a user.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.broker import Broker, free_port
from tools.init_secrets import CA_CERT, SERVER_CERT, SERVER_KEY, init_tls
from tools.mqtt_acl import user_names

ROOT = Path(__file__).resolve().parents[2]
MOSQUITTO_DIR = ROOT / "mosquitto"


def derived_conf(
    text: str,
    ports: dict[str, int],
    workdir: Path,
    password_file: Path,
    acl_file: Path,
    tls: tuple[Path, Path] | None = None,
) -> str:
    """``ports`` maps each listener's port in mosquitto.conf ("1883", "8883", …) to the test's port; ``tls`` is the
    server certificate and key (default: the ones init_secrets made in ``workdir/secrets``)."""
    tls_cert, tls_key = tls or (workdir / "secrets" / SERVER_CERT, workdir / "secrets" / SERVER_KEY)
    out = []
    for line in text.splitlines():
        key = line.split(maxsplit=1)[0] if line.strip() and not line.startswith("#") else ""
        if key == "listener":
            out.append(f"listener {ports[line.split()[1]]} 127.0.0.1")
        elif key == "password_file":
            out.append(f"password_file {password_file}")
        elif key == "acl_file":
            out.append(f"acl_file {acl_file}")
        elif key == "certfile":
            out.append(f"certfile {tls_cert}")
        elif key == "keyfile":
            out.append(f"keyfile {tls_key}")
        elif key == "persistence_location":
            out.append(f"persistence_location {workdir}/data/")
        else:
            out.append(line)
    if os.geteuid() == 0:
        out.append("user root")  # mosquitto drops to "mosquitto" as root, which cannot read pytest's 0700 dirs
    return "\n".join(out) + "\n"


def make_passwords(secrets_dir: Path, out: Path, acl: Path = MOSQUITTO_DIR / "acl") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(MOSQUITTO_DIR / "make-passwords.sh"), str(secrets_dir), str(out), str(acl)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def write_secrets(secrets_dir: Path) -> dict[str, str]:
    secrets_dir.mkdir(parents=True, exist_ok=True)
    passwords = {}
    for user in user_names():
        passwords[user] = secrets.token_urlsafe(18)
        (secrets_dir / f"mqtt_password_{user}").write_text(passwords[user] + "\n")
    return passwords


def conf_ports(text: str) -> list[str]:
    return re.findall(r"(?m)^listener (\d+)", text)


@dataclass
class ProjectBroker(Broker):
    ws_port: int = field(default_factory=free_port)
    health_port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    wss_port: int = field(default_factory=free_port)
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def ports(self) -> dict[str, int]:
        return {
            "1880": self.health_port,
            "1883": self.port,
            "9001": self.ws_port,
            "8883": self.tls_port,
            "8884": self.wss_port,
        }

    @property
    def ca_file(self) -> Path:
        return self.workdir / "secrets" / CA_CERT

    def write_conf(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(exist_ok=True)
        if not self.passwords:
            self.passwords = write_secrets(self.workdir / "secrets")
            done = make_passwords(self.workdir / "secrets", self.workdir / "passwd")
            if done.returncode != 0:
                raise RuntimeError(f"make-passwords.sh failed: {done.stderr}")
            init_tls(self.workdir / "secrets", ["localhost", "127.0.0.1"])
        text = (MOSQUITTO_DIR / "mosquitto.conf").read_text()
        self.conf_path.write_text(
            derived_conf(text, self.ports, self.workdir, self.workdir / "passwd", MOSQUITTO_DIR / "acl")
        )


class User:
    """An MQTT v5 client logged in as one user; ``publish`` returns the broker's PUBACK reason code."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None,
        transport: str = "tcp",
        ca_file: Path | None = None,
        client_id: str | None = None,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"acltest-{username}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
            transport=transport,  # type: ignore[arg-type]
        )
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        if username is not None:
            self.client.username_pw_set(username, password)
        self.disconnected = threading.Event()
        self.client.on_disconnect = lambda *_a: self.disconnected.set()
        self.port = port
        self.connack: Any = None
        self._connack = threading.Event()
        self._acks: dict[int, Any] = {}
        self._cond = threading.Condition()
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connack = rc
        self._connack.set()

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: Any, _p: Any) -> None:
        with self._cond:
            self._acks[mid] = rc
            self._cond.notify_all()

    def connect(self, timeout: float = 10.0) -> int:
        """Connect once (no retries); returns the CONNACK reason code as an int."""
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        if not self._connack.wait(timeout):
            raise TimeoutError("no CONNACK")
        return int(getattr(self.connack, "value", self.connack))

    def publish(self, topic: str, payload: str, timeout: float = 10.0) -> int:
        info = self.client.publish(topic, payload, qos=1)
        with self._cond:
            if not self._cond.wait_for(lambda: info.mid in self._acks, timeout):
                raise TimeoutError(f"no PUBACK for {topic}")
            rc = self._acks[info.mid]
        return int(getattr(rc, "value", rc))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def acl_rules(text: str) -> dict[str, list[tuple[str, str]]]:
    """Parse an ACL file into ``{user: [(access, filter)]}``."""
    rules: dict[str, list[tuple[str, str]]] = {"": []}  # "": anonymous clients, before any user line
    user = ""
    for line in text.splitlines():
        if m := re.match(r"^user\s+(\S+)$", line):
            user = m.group(1)
            rules[user] = []
        elif m := re.match(r"^topic\s+(read|write|readwrite|deny)\s+(\S+)$", line):
            rules[user].append((m.group(1), m.group(2)))
    return rules


def may(rules: list[tuple[str, str]], access: str, topic: str) -> bool:
    """mosquitto's rule for one user: a matching deny wins, else any matching grant of that access."""
    if any(a == "deny" and mqtt.topic_matches_sub(f, topic) for a, f in rules):
        return False
    return any(a in (access, "readwrite") and mqtt.topic_matches_sub(f, topic) for a, f in rules)
