"""PV arrays from the environment: a JSON list (or one object); a mistake is one clear line and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from services.forecast.config import ForecastSettings
from shared.settings import build_settings, describe_error


def test_arrays_are_read_from_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "BATSCHED_PV_ARRAYS", '[{"name": "east", "azimuth": -90, "kwp": 2}, {"name": "west", "azimuth": 90}]'
    )
    arrays = build_settings(ForecastSettings).pv_arrays
    assert [(a.name, a.azimuth, a.kwp) for a in arrays] == [("east", -90, 2), ("west", 90, 4.0)]


def test_one_default_array_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BATSCHED_PV_ARRAYS", raising=False)
    assert len(build_settings(ForecastSettings).pv_arrays) == 1


@pytest.mark.parametrize(("value", "why"), [('[{"kwp": -1}]', "greater than 0"), ("[]", "at least one PV array")])
def test_a_bad_array_is_named_in_the_error(monkeypatch: pytest.MonkeyPatch, value: str, why: str) -> None:
    monkeypatch.setenv("BATSCHED_PV_ARRAYS", value)
    with pytest.raises(ValidationError) as err:
        build_settings(ForecastSettings)
    message = describe_error(ForecastSettings, err.value)
    assert message.startswith("BATSCHED_PV_ARRAYS is invalid") and why in message


def test_a_setting_that_is_not_json_stops_the_service_with_one_line(tmp_path) -> None:
    env = {**os.environ, "BATSCHED_PV_ARRAYS": "not json", "BATSCHED_SECRETS_DIR": str(tmp_path / "none")}
    done = subprocess.run(
        [sys.executable, "-m", "services.forecast"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "batsched-forecast: configuration error: BATSCHED_PV_ARRAYS is invalid: Value error, not JSON: give a list "
        'like [{"kwp": 4, "tilt": 30, "azimuth": 0}]'
    )
