"""Use an existing broker (docs/integrations.md): a household's own Mosquitto, its users and rules untouched, with
batsched's users added exactly as the documentation says, and the services logged in as they are in Compose.

The household broker is a plain configuration (one listener, passwords, an ACL with a Zigbee bridge's rules), not
the project's mosquitto.conf. The documented steps: append ``python -m tools.mqtt_acl --users-only`` to its ACL and
add each user's password with ``mosquitto_passwd -b``. The real planner and a stand-in for every other service
(each logged in with its own secret file, as compose.external-broker.yaml runs them) must come online and pass
their container healthcheck; nobody may write another's topics, the bridge's included.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import yaml

from shared.topics import Topics
from tests.deploy.project_broker import ROOT, User
from tests.support.broker import Broker
from tests.support.probe import Probe
from tests.support.procs import ServiceProcess
from tools.mqtt_acl import user_names

T = Topics()
NOT_AUTHORIZED = 135
SERVICES = ("pricing", "forecast", "planner", "executor", "watchdog", "accounting", "dashboard")
HOUSEHOLD_ACL = """\
# the household's own rules, before batsched
user zigbee2mqtt
topic readwrite zigbee2mqtt/#
topic write homeassistant/+/+/+/config
"""


def add_user(passwd: Path, user: str, password: str) -> None:
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True)


def test_the_override_points_every_service_at_the_external_broker() -> None:
    override = yaml.safe_load((ROOT / "compose.external-broker.yaml").read_text())["services"]
    assert set(override) == set(SERVICES)
    for name, svc in override.items():
        assert svc["environment"]["BATSCHED_MQTT_HOST"].startswith("${BATSCHED_EXTERNAL_MQTT_HOST:?"), name


def test_batsched_runs_on_a_household_broker_with_the_documented_users_and_acl(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    passwd = tmp_path / "passwd"
    passwd.touch()
    add_user(passwd, "zigbee2mqtt", "zigbee-pw")
    # the documented steps
    users_only = subprocess.run(
        [sys.executable, "-m", "tools.mqtt_acl", "--users-only"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    acl.write_text(HOUSEHOLD_ACL + "\n" + users_only)
    passwords = {user: secrets.token_urlsafe(18) for user in user_names()}
    for user, password in passwords.items():
        add_user(passwd, user, password)

    broker = Broker(tmp_path / "household", password_file=passwd, acl_file=acl).start()
    watcher = Probe(broker.port, subscribe="#", username="readonly", password=passwords["readonly"]).start()
    procs: dict[str, ServiceProcess] = {}
    try:
        for name in SERVICES:
            secret_dir = tmp_path / f"secrets-{name}"
            secret_dir.mkdir()
            (secret_dir / "mqtt_password").write_text(passwords[name] + "\n")
            env = {
                **broker.env,
                "BATSCHED_MQTT_USERNAME": name,
                "BATSCHED_SECRETS_DIR": str(secret_dir),
                "BATSCHED_DATA_DIR": str(tmp_path / f"data-{name}"),
            }
            module, args = (
                ("services.planner", None) if name == "planner" else ("tests.deploy.stand_in_service", [name])
            )
            procs[name] = ServiceProcess(module, env, tmp_path / "logs" / f"{name}.log", args).start()
        for name in SERVICES:
            watcher.wait_for(T.status(name), lambda m: m.text == "online", timeout=60)
        watcher.wait_for(T.planner_setting("min_soc_pct"), timeout=30)  # the real planner's own retained state
        # the Compose healthcheck of a service, logged in as that service
        planner_secrets = tmp_path / "secrets-planner"
        check = subprocess.run(
            [sys.executable, "-m", "tools.healthcheck", "planner", "--timeout", "5"],
            cwd=ROOT,
            env={
                **os.environ,
                **broker.env,
                "BATSCHED_MQTT_USERNAME": "planner",
                "BATSCHED_SECRETS_DIR": str(planner_secrets),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stderr
        # batsched's users and the household's stay apart
        planner = User(broker.port, "planner", passwords["planner"])
        bridge = User(broker.port, "zigbee2mqtt", "zigbee-pw")
        try:
            assert planner.connect() == 0 and bridge.connect() == 0
            assert planner.publish("zigbee2mqtt/bridge/request/restart", "x") == NOT_AUTHORIZED
            assert planner.publish(T.battery_state, "x") == NOT_AUTHORIZED
            assert bridge.publish(T.executor_mode_set, "off") == NOT_AUTHORIZED
            assert bridge.publish("zigbee2mqtt/bridge/state", "online") in (0, 16)  # its own rules still work
        finally:
            planner.close()
            bridge.close()
        anonymous = User(broker.port, None, None)
        assert anonymous.connect() == NOT_AUTHORIZED
        anonymous.close()
        for name, proc in procs.items():
            assert proc.alive(), f"{name} exited: {proc.log()[-1500:]}"
    finally:
        for proc in procs.values():
            proc.kill()
        watcher.stop()
        broker.stop()
