"""compose.yaml and compose.sim.yaml: valid Compose files, healthy-by-construction, no secrets, pinned images.

No Docker engine is needed: the files are checked against the Compose specification's JSON Schema
(``check-jsonschema --builtin-schema vendor.compose-spec``) and their invariants are asserted from the parsed YAML.
``docker-compose config -q`` runs as well where that binary exists.
"""

from __future__ import annotations

import itertools
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.prereqs import needs
from tools import init_secrets, mqtt_acl, settings_doc
from tools.launcher import components

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
SIM = ROOT / "compose.sim.yaml"
EXTERNAL = ROOT / "compose.external-broker.yaml"
SERVICES = {"pricing", "forecast", "planner", "executor", "watchdog", "accounting", "dashboard"}
SIMULATORS = {"fake-octopus", "fake-open-meteo", "netzero-sim"}
SIM_PUBLIC_VALUES = {"BATSCHED_NETZERO_API_KEY": "demo-token"}  # the simulator's built-in token
SECRETISH = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|PRIVATE", re.I)


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def module_of(service: dict[str, Any]) -> str:
    cmd = service["command"]
    assert cmd[:2] == ["python", "-m"], cmd
    return cmd[2]


@pytest.mark.parametrize("path", [COMPOSE, SIM, EXTERNAL], ids=lambda p: p.name)
def test_validates_against_the_compose_specification(path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@needs("docker-compose")
def test_docker_compose_accepts_the_files_with_nothing_exported(tmp_path: Path) -> None:
    """`up`, `ps`, `logs`, `down` need no variable in the shell: every one has its default in the files."""
    for name in ("compose.yaml", "compose.sim.yaml", ".env.example"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "mosquitto", tmp_path / "mosquitto")
    (tmp_path / ".env").write_text("")
    for name in {Path(s["file"]).name for s in load(COMPOSE)["secrets"].values()}:
        (tmp_path / "secrets").mkdir(exist_ok=True)
        (tmp_path / "secrets" / name).write_text("x\n")
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin"}
    done = subprocess.run(
        ["docker-compose", "-f", "compose.yaml", "-f", "compose.sim.yaml", "config"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "WARNING" not in done.stderr, done.stderr
    config = yaml.safe_load(done.stdout)
    published = {(p["published"] if isinstance(p, dict) else p) for p in config["services"]["mosquitto"]["ports"]}
    assert published, config["services"]["mosquitto"]["ports"]


def test_the_stack_has_the_broker_and_every_service() -> None:
    services = load(COMPOSE)["services"]
    assert set(services) == {"mosquitto", *SERVICES}
    assert set(load(SIM)["services"]) == SIMULATORS | SERVICES


def test_every_container_has_a_healthcheck_and_restarts_unless_stopped() -> None:
    base = load(COMPOSE)["services"]
    sim = load(SIM)["services"]
    for name, svc in [*base.items(), *((n, s) for n, s in sim.items() if n in SIMULATORS)]:
        check = svc.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] == "CMD", f"{name}: exec form, no shell"
        assert svc.get("restart") == "unless-stopped", name


def test_services_wait_for_a_healthy_broker_and_check_their_own_status() -> None:
    base = load(COMPOSE)["services"]
    for name in SERVICES:
        svc = base[name]
        assert svc["depends_on"]["mosquitto"]["condition"] == "service_healthy", name
        assert svc.get("init") is True, f"{name}: signals must reach Python (clean offline, baseline restore)"
        test = svc["healthcheck"]["test"]
        assert test[1:4] == ["python", "-m", "tools.healthcheck"], name
        assert test[4] == name or (name == "dashboard" and test[4:6] == ["--http", "http://127.0.0.1:5000/healthz"])
    for name, svc in load(SIM)["services"].items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert cond["condition"] == "service_healthy", f"{name} -> {dep}"


def test_each_service_runs_its_own_entry_point() -> None:
    known = {c.module for c in components({"octopus": 1, "openmeteo": 2, "netzero": 3})}
    base = load(COMPOSE)["services"]
    sim = load(SIM)["services"]
    modules = {module_of(base[n]) for n in SERVICES} | {module_of(sim[n]) for n in SIMULATORS}
    assert known <= modules, "everything `make run` starts runs in the stack too"
    for extra in modules - known:
        assert extra.startswith("services.") and extra.split(".")[1] in SERVICES, extra
    assert module_of(base["watchdog"]) == "services.executor.watchdog"


def test_images_are_pinned() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for path in (COMPOSE, SIM):
        for name, svc in load(path)["services"].items():
            image = svc.get("image")
            if image is None:
                continue  # an override entry: the image comes from compose.yaml
            default = re.sub(r"^\$\{[A-Z_]+:-(.+)\}$", r"\1", image)
            assert "latest" not in default, f"{name}: {image}"
            repo, _, tag = default.rpartition(":")
            assert repo and re.fullmatch(r"\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"
            if repo == "eclipse-mosquitto":
                assert tag.startswith("2.0."), "Mosquitto 2.0.x: the ACL semantics the tests check"
            elif path == SIM:  # the simulators: the services' image plus pandas (the Dockerfile's sim target)
                assert default == f"batsched-sim:{version}", f"{name}: the image is tagged with the project version"
                assert svc["build"] == {"context": ".", "target": "sim"}, f"{name}: built from the sim target"
            else:
                assert default == f"batsched:{version}", f"{name}: the image is tagged with the project version"


def secretish(key: str) -> bool:
    secret_envs = {
        n.upper() for g in settings_doc.collect().values() for s in g if s.secret for n in (s.env, *s.legacy)
    }
    return key.upper() in secret_envs or (bool(SECRETISH.search(key)) and not key.endswith(("_DIR", "_FILE")))


def test_no_secret_value_is_in_the_files() -> None:
    base = load(COMPOSE)
    for name, svc in base["services"].items():
        for key, value in env_of(svc).items():
            assert not secretish(key), f"{name}: {key}={value!r} belongs in secrets:"
    for name, svc in load(SIM)["services"].items():
        for key, value in env_of(svc).items():
            if secretish(key):
                assert SIM_PUBLIC_VALUES.get(key) == value, f"{name}: {key} is not a simulator value"
    for secret in base["secrets"].values():
        assert set(secret) == {"file"} and secret["file"].startswith("./secrets/")
    assert "secrets/" in (ROOT / ".gitignore").read_text().split()
    for path in (COMPOSE, SIM):  # a password on a command line is visible to `docker inspect`
        for name, svc in load(path)["services"].items():
            for argv in (svc.get("command") or [], (svc.get("healthcheck") or {}).get("test") or []):
                for flag, value in itertools.pairwise(argv):
                    assert flag not in ("-P", "--pw", "--password"), f"{name}: a password in {argv} ({value})"


def test_every_secret_setting_is_mounted_as_a_file_named_after_it() -> None:
    """The targets are the lower-case setting names that pydantic-settings reads from /run/secrets."""
    secret_fields = {s.field for group in settings_doc.collect().values() for s in group if s.secret}
    base = load(COMPOSE)
    mounted: set[str] = set()
    for name in SERVICES:
        svc = base["services"][name]
        targets = {}
        for entry in svc.get("secrets", []):
            src, target = (entry, entry) if isinstance(entry, str) else (entry["source"], entry["target"])
            assert src in base["secrets"], src
            targets[target] = src
        assert targets["mqtt_password"] == f"mqtt_password_{name}", "each service has its own MQTT password"
        assert env_of(svc)["BATSCHED_MQTT_USERNAME"] == name
        assert env_of(svc)["BATSCHED_SECRETS_DIR"] == "/run/secrets"
        mounted |= set(targets)
    missing = secret_fields - mounted
    assert not missing, f"secret settings no container receives: {missing}"


def test_the_broker_gets_a_password_for_every_acl_user_and_the_locked_down_config() -> None:
    broker = load(COMPOSE)["services"]["mosquitto"]
    users = mqtt_acl.user_names()
    assert sorted(broker["secrets"]) == sorted(
        [*(f"mqtt_password_{u}" for u in users), "mqtt_server_crt", "mqtt_server_key"]
    )
    assert "./mosquitto:/mosquitto/config:ro" in broker["volumes"]
    assert any(v.startswith("mosquitto-data:/mosquitto/data") for v in broker["volumes"])
    assert broker["entrypoint"] == ["sh", "/mosquitto/config/entrypoint.sh"]
    conf = (ROOT / "mosquitto" / "mosquitto.conf").read_text()
    for line in ("allow_anonymous false", "password_file /mosquitto/auth/passwd", "acl_file /mosquitto/auth/acl"):
        assert f"\n{line}\n" in conf
    entry = (ROOT / "mosquitto" / "entrypoint.sh").read_text()
    assert '"$auth_dir/passwd"' in entry and '"$auth_dir/acl"' in entry and "exec mosquitto -c" in entry


PUBLISHED = re.compile(r"^\$\{(\w+):-([\d.]+)\}:\$\{(\w+):-(\d+)\}:(\d+)$")


def test_host_ports_and_addresses_come_from_env_with_the_documented_defaults() -> None:
    """Plain MQTT on loopback by default, TLS and the dashboard on the LAN; .env.example lists each variable."""
    documented = {name: default for name, default, _ in settings_doc.COMPOSE_PORTS}
    example = settings_doc.ENV_EXAMPLE.read_text()
    published: dict[str, tuple[str, str]] = {}
    services = load(COMPOSE)["services"]
    for name in ("mosquitto", "dashboard"):
        for entry in services[name]["ports"]:
            m = PUBLISHED.match(entry)
            assert m, f"{name}: {entry} does not come from .env"
            bind, bind_default, port, port_default, container = m.groups()
            assert documented[bind] == bind_default and documented[port] == port_default, entry
            assert f"#{bind}={bind_default}" in example and f"#{port}={port_default}" in example
            published[container] = (bind_default, port_default)
    assert published["1883"][0] == published["9001"][0] == "127.0.0.1", "plain MQTT stays on this host"
    assert published["1883"][1] != "1883", "the household's own broker usually holds 1883"
    assert published["8883"][0] == published["8884"][0] == published["5000"][0] == "0.0.0.0"
    conf = (ROOT / "mosquitto" / "mosquitto.conf").read_text()
    assert sorted(set(published) - {"5000"}) == sorted(re.findall(r"(?m)^listener (\d+)$", conf))
    assert re.search(r"(?m)^listener 1880 127\.0\.0\.1$", conf), "the healthcheck's listener is never published"


def test_named_volumes_hold_the_broker_and_every_sqlite_store() -> None:
    base = load(COMPOSE)
    declared = set(base["volumes"])
    for name in sorted(SERVICES):
        svc = base["services"][name]
        mounts = [v for v in svc["volumes"] if v.endswith(":/data")]
        assert len(mounts) == 1 and mounts[0].split(":")[0] in declared, name
        assert env_of(svc)["BATSCHED_DATA_DIR"] == "/data"
    # the watchdog restores the baseline the executor persisted in its journal
    assert base["services"]["watchdog"]["volumes"] == base["services"]["executor"]["volumes"]
    assert "mosquitto-data" in declared


def test_init_secrets_creates_every_mounted_file_once(tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text("#X=1\n")
    created, to_fill = init_secrets.init(tmp_path / "secrets", root=tmp_path)
    files = {p.name: p for p in (tmp_path / "secrets").iterdir()}
    wanted = {Path(s["file"]).name for s in load(COMPOSE)["secrets"].values()}
    # the CA stays on the host: its certificate is for the clients, its key never leaves secrets/
    assert set(files) == wanted | {init_secrets.CA_CERT, init_secrets.CA_KEY} and ".env" in created
    assert files[init_secrets.CA_KEY].stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "secrets").stat().st_mode & 0o777 == 0o700
    assert len(files["mqtt_password_executor"].read_text().strip()) >= 24
    assert files["netzero_api_key"].read_text() == "" and "netzero_api_key" in to_fill
    files["netzero_api_key"].write_text("mine\n")
    before = files["mqtt_password_pricing"].read_text()
    cert = files[init_secrets.SERVER_CERT].read_text()
    created_again, to_fill_again = init_secrets.init(tmp_path / "secrets", root=tmp_path)
    assert created_again == [] and files["mqtt_password_pricing"].read_text() == before
    assert files[init_secrets.SERVER_CERT].read_text() == cert, "a valid certificate is kept"
    assert "netzero_api_key" not in to_fill_again and files["netzero_api_key"].read_text() == "mine\n"
