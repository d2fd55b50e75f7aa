"""The bus client with broker authentication and TLS."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.broker import Broker
from tests.support.probe import Probe


def make_password_file(path: Path, users: dict[str, str]) -> Path:
    path.touch()
    for user, password in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(path), user, password], check=True, capture_output=True)
    return path


@pytest.fixture
def auth_broker(tmp_path: Path):
    pw = make_password_file(tmp_path / "passwd", {"echo": "right", "probe": "probe-pw"})
    b = Broker(tmp_path / "auth-broker", password_file=pw).start()
    yield b
    b.stop()


def test_service_with_credentials_from_a_secret_file_connects(auth_broker: Broker, spawn, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "mqtt_password").write_text("right\n")
    probe = Probe(auth_broker.port, username="probe", password="probe-pw").start()
    try:
        spawn(
            "tests.support.echo_service",
            name="echo",
            env={**auth_broker.env, "BATSCHED_MQTT_USERNAME": "echo", "BATSCHED_SECRETS_DIR": str(secrets)},
        )
        probe.wait_for("batsched/echo/status", lambda m: m.text == "online", timeout=15)
    finally:
        probe.stop()


def test_wrong_password_stops_the_service_with_a_clear_line(auth_broker: Broker, spawn) -> None:
    svc = spawn(
        "tests.support.echo_service",
        name="echo",
        env={**auth_broker.env, "BATSCHED_MQTT_USERNAME": "echo", "BATSCHED_MQTT_PASSWORD": "wrong"},
    )
    assert svc.proc is not None
    assert svc.proc.wait(20) == 2  # retrying cannot fix a password: exit and let the supervisor report it
    assert "MQTT authentication failed" in svc.log()


def test_tls_connection_with_a_private_ca(tmp_path: Path, spawn) -> None:
    d = tmp_path / "tls"
    d.mkdir()
    run = lambda *a: subprocess.run(a, cwd=d, check=True, capture_output=True)  # noqa: E731
    run(
        "openssl",
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    run(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    )
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run(
        "openssl",
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    )
    plain = Broker(tmp_path / "tls-broker")
    from tests.support.broker import free_port

    tls_port = free_port()
    plain.extra_conf = (
        f"listener {tls_port} 127.0.0.1\ncafile {d / 'ca.crt'}\ncertfile {d / 'server.crt'}\n"
        f"keyfile {d / 'server.key'}\nallow_anonymous true"
    )
    plain.start()
    try:
        probe = Probe(plain.port).start()
        spawn(
            "tests.support.echo_service",
            name="echo",
            env={
                "BATSCHED_MQTT_HOST": "127.0.0.1",
                "BATSCHED_MQTT_PORT": str(tls_port),
                "BATSCHED_MQTT_TLS": "true",
                "BATSCHED_MQTT_CA_FILE": str(d / "ca.crt"),
            },
        )
        probe.wait_for("batsched/echo/status", lambda m: m.text == "online", timeout=15)
        probe.stop()
    finally:
        plain.stop()
