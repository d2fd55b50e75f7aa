""".env.example and the README's configuration table are generated from the settings models and kept current."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

import services
from tools import settings_doc


def test_committed_env_example_and_readme_table_are_current() -> None:
    assert settings_doc.main(["--check"]) == 0, "run `python -m tools.settings_doc` and commit the result"


@pytest.fixture
def fake_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ``services.zz_fake.config`` module outside the real service folders."""
    pkg = tmp_path / "zz_fake"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "config.py").write_text(
        textwrap.dedent(
            """
            from typing import Literal
            from pydantic import Field, SecretStr
            from shared.settings import ServiceSettings, env

            class FakeSettings(ServiceSettings):
                fake_api_key: SecretStr = Field(validation_alias=env("fake_api_key", "FAKE_KEY"), description="Key")
                fake_site_id: str = Field(validation_alias=env("fake_site_id", "SITE_ID"), description="Site")
                fake_mode: Literal["a", "b"] = Field("a", description="Mode | pipe")
                mqtt_port: int = 2883
            """
        )
    )
    monkeypatch.setattr(services, "__path__", [*services.__path__, str(tmp_path)])
    yield "zz_fake"
    for name in [m for m in sys.modules if m.startswith("services.zz_fake")]:
        del sys.modules[name]


def test_a_new_services_settings_are_found_and_documented(fake_service: str) -> None:
    groups = settings_doc.collect()
    fake = {s.env: s for s in groups[fake_service]}
    assert set(fake) == {"BATSCHED_FAKE_API_KEY", "BATSCHED_FAKE_SITE_ID", "BATSCHED_FAKE_MODE"}  # base fields once
    env_text = settings_doc.render_env(groups)
    # a secret never gets a value line, only where its file goes
    assert "BATSCHED_FAKE_API_KEY=" not in env_text and "file `fake_api_key`" in env_text
    assert "# REQUIRED: Site (also read from SITE_ID)\n#BATSCHED_FAKE_SITE_ID=\n" in env_text
    assert "#BATSCHED_FAKE_MODE=a" in env_text and "(also read from SITE_ID)" in env_text
    table = settings_doc.render_table(groups)
    assert "| `BATSCHED_FAKE_SITE_ID` | **required** | Site; also `SITE_ID` |" in table
    assert "Mode \\| pipe (`a`, `b`)" in table  # a pipe cannot break the table
    assert "`BATSCHED_FAKE_API_KEY` | secret file `fake_api_key`" in table


def test_every_base_setting_is_in_env_example() -> None:
    text = settings_doc.ENV_EXAMPLE.read_text()
    for name, info in settings_doc.ServiceSettings.model_fields.items():
        s = settings_doc.describe(name, info)
        assert s.env in text, s.env
