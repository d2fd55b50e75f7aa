"""Settings: environment, secrets files, the seed app's variable names, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field, SecretStr

from shared.settings import ServiceSettings, build_settings, env

ROOT = Path(__file__).resolve().parents[2]


class NetZeroLike(ServiceSettings):
    netzero_api_key: SecretStr = Field(validation_alias=env("netzero_api_key", "NETZERO_API_KEY"))
    netzero_site_id: str = Field(validation_alias=env("netzero_site_id", "NETZERO_SITE_ID", "SITE_ID"))
    authorized_emails: str = Field("", validation_alias=env("authorized_emails", "AUTHORIZED_EMAILS"))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "NETZERO_API_KEY",
        "NETZERO_SITE_ID",
        "SITE_ID",
        "AUTHORIZED_EMAILS",
        "BATSCHED_MQTT_PORT",
        "BATSCHED_NETZERO_API_KEY",
        "BATSCHED_NETZERO_SITE_ID",
        "BATSCHED_MQTT_PREFIX",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BATSCHED_SECRETS_DIR", str(tmp_path / "absent"))


def test_defaults_and_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    s = build_settings(ServiceSettings)
    assert (s.mqtt_host, s.mqtt_port, s.mqtt_prefix, s.timezone) == ("127.0.0.1", 1883, "batsched", "Europe/London")
    monkeypatch.setenv("BATSCHED_MQTT_PORT", "18883")
    monkeypatch.setenv("BATSCHED_MQTT_PREFIX", "batsched/site-0042")
    s = build_settings(ServiceSettings)
    assert (s.mqtt_port, s.mqtt_prefix) == (18883, "batsched/site-0042")


def test_seed_aliases_are_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETZERO_API_KEY", "tok")
    monkeypatch.setenv("SITE_ID", "42")
    monkeypatch.setenv("AUTHORIZED_EMAILS", "a@example.com,b@example.com")
    s = build_settings(NetZeroLike)
    assert s.netzero_api_key.get_secret_value() == "tok"
    assert s.netzero_site_id == "42"
    assert s.authorized_emails == "a@example.com,b@example.com"
    monkeypatch.setenv("NETZERO_SITE_ID", "43")
    monkeypatch.delenv("SITE_ID")
    assert build_settings(NetZeroLike).netzero_site_id == "43"


def test_prefixed_name_wins_over_the_seed_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NETZERO_API_KEY", "old")
    monkeypatch.setenv("BATSCHED_NETZERO_API_KEY", "new")
    monkeypatch.setenv("SITE_ID", "1")
    assert build_settings(NetZeroLike).netzero_api_key.get_secret_value() == "new"


def test_secrets_are_read_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "netzero_api_key").write_text("from-file\n")
    (secrets / "mqtt_password").write_text("pw")
    monkeypatch.setenv("BATSCHED_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("SITE_ID", "1")
    s = build_settings(NetZeroLike)
    assert s.netzero_api_key.get_secret_value() == "from-file"
    assert s.mqtt_password is not None and s.mqtt_password.get_secret_value() == "pw"
    assert "from-file" not in repr(s)  # secrets never print


def _run(code: str, env_extra: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "BATSCHED_SECRETS_DIR": str(tmp_path / "absent"), **env_extra}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)


CODE = (
    "from tests.foundation.test_settings import NetZeroLike\n"
    "from shared.settings import load_settings\n"
    "load_settings(NetZeroLike, 'executor')\n"
)


def test_missing_required_secret_is_one_clear_line(tmp_path: Path) -> None:
    out = _run(CODE, {"SITE_ID": "1"}, tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert (
        "configuration error" in lines[0] and "BATSCHED_NETZERO_API_KEY" in lines[0] and "NETZERO_API_KEY" in lines[0]
    )
    assert "required" in lines[0]


def test_wrong_setting_names_the_setting(tmp_path: Path) -> None:
    out = _run(CODE, {"SITE_ID": "1", "NETZERO_API_KEY": "x", "BATSCHED_MQTT_PORT": "not-a-port"}, tmp_path)
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1
    assert "BATSCHED_MQTT_PORT" in out.stderr and "invalid" in out.stderr
    out = _run(CODE, {"SITE_ID": "1", "NETZERO_API_KEY": "x", "BATSCHED_TIMEZONE": "Mars/Olympus"}, tmp_path)
    assert out.returncode == 2 and "BATSCHED_TIMEZONE" in out.stderr
