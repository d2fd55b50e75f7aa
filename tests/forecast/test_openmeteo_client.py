"""The Open-Meteo client against the fake server over real HTTP: FlatBuffers decoding, interval alignment,
gaps for unknown values, and every failure mode turned into one clear error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import requests

from services.forecast.openmeteo_client import OpenMeteoClient, OpenMeteoError, make_session
from services.forecast.pv_model import PvArray, covered_slots, power_kw, slot_energy
from shared.slots import iter_slots
from sim.openmeteo import OpenMeteoSim
from tests.forecast.conftest import NOON, control

ARRAY = PvArray(latitude=51.75, longitude=-1.26, tilt=30, azimuth=-35, kwp=4.0, efficiency=0.9)
DAY = NOON.replace(hour=0)


def client(sim: OpenMeteoSim, resolution: str = "minutely_15", timeout_s: float = 5.0) -> OpenMeteoClient:
    return OpenMeteoClient(sim.url, make_session("off", None, 0, retries=0), timeout_s, resolution, days=2)


def at(hh: int, mm: int = 0) -> datetime:
    return DAY + timedelta(hours=hh, minutes=mm)


def day_energy(sim: OpenMeteoSim, resolution: str) -> dict[datetime, float | None]:
    series = client(sim, resolution).fetch(ARRAY)
    slots = list(iter_slots(DAY, DAY + timedelta(days=1)))
    return dict(zip(slots, slot_energy([(series, ARRAY)], slots), strict=True))


@pytest.mark.parametrize("resolution", ["minutely_15", "hourly"])
def test_flatbuffers_answer_decodes_to_the_same_values_as_the_json_answer(openmeteo, resolution: str) -> None:
    series = client(openmeteo, resolution).fetch(ARRAY)
    doc = requests.get(openmeteo.url, params={**client(openmeteo, resolution).params(ARRAY)}, timeout=5).json()
    block = doc[resolution]
    stamps = [int(datetime.fromisoformat(t).replace(tzinfo=UTC).timestamp()) for t in block["time"]]
    assert series.interval_s == (900 if resolution == "minutely_15" else 3600)
    assert list(series.times) == stamps  # 1 past day + 2 forecast days from UTC midnight
    assert len(stamps) == 3 * 86400 // series.interval_s
    np.testing.assert_allclose(series.gti_w_m2, block["global_tilted_irradiance"], atol=0.01)
    np.testing.assert_allclose(series.temperature_c, block["temperature_2m"], atol=0.01)
    assert series.gti_w_m2.max() > 300  # a June day's real irradiance shape, not zeros


@pytest.mark.parametrize("resolution", ["minutely_15", "hourly"])
def test_an_hour_of_sun_lands_in_the_two_slots_it_covers(openmeteo, resolution: str) -> None:
    # 500 W/m² during 10:00-11:00 UTC only. Hourly, Open-Meteo stamps that mean at 11:00 (it covers the hour
    # before its stamp): it must feed the 10:00 and 10:30 slots, not 11:00.
    control(openmeteo, base="zero", patches=[{"from": at(10).isoformat(), "to": at(11).isoformat(), "value": 500}])
    energy = day_energy(openmeteo, resolution)
    expected = float(power_kw(np.array([500.0]), np.array([_temp(openmeteo, resolution)]), ARRAY)[0]) * 0.5
    lit = {t for t, e in energy.items() if e}
    assert lit == {at(10), at(10, 30)}
    assert energy[at(10)] == pytest.approx(expected, rel=0.02)
    assert energy[at(9, 30)] == 0.0 and energy[at(11)] == 0.0


def test_a_quarter_hour_of_sun_fills_half_of_one_slot(openmeteo) -> None:
    control(
        openmeteo, base="zero", patches=[{"from": at(10, 15).isoformat(), "to": at(10, 30).isoformat(), "value": 800}]
    )
    energy = day_energy(openmeteo, "minutely_15")
    assert {t for t, e in energy.items() if e} == {at(10)}
    expected = float(power_kw(np.array([800.0]), np.array([_temp(openmeteo, "minutely_15", at(10, 30))]), ARRAY)[0])
    assert energy[at(10)] == pytest.approx(expected * 0.25, rel=0.01)


@pytest.mark.parametrize("resolution", ["minutely_15", "hourly"])
def test_unknown_values_become_gaps_not_zeros(openmeteo, resolution: str) -> None:
    control(openmeteo, patches=[{"from": at(12).isoformat(), "to": at(13).isoformat(), "value": None}])
    energy = day_energy(openmeteo, resolution)
    assert energy[at(12)] is None and energy[at(12, 30)] is None
    assert energy[at(11, 30)] and energy[at(13)]  # sunny neighbours still known
    assert energy[at(1)] == 0.0  # night is a known zero, not a gap


def test_unknown_temperature_is_a_gap_too(openmeteo) -> None:
    control(openmeteo, patches=[{"variable": "temperature_2m", "from": at(14).isoformat(),
                                 "to": at(14, 15).isoformat(), "value": None}])  # fmt: skip
    energy = day_energy(openmeteo, "minutely_15")
    assert [t for t, e in energy.items() if e is None] == [at(13, 30)]  # the value stamped 14:00 covers 13:45-14:00


@pytest.mark.parametrize("failure", ["500", "garbage", "html", "timeout"])
def test_every_failure_is_one_clear_error(openmeteo, failure: str) -> None:
    control(openmeteo, failure=failure)
    with pytest.raises(OpenMeteoError):
        client(openmeteo, timeout_s=0.5).fetch(ARRAY)
    assert control(openmeteo)["requests"] == 1


def test_the_server_refuses_an_unknown_variable_like_the_real_api(openmeteo) -> None:
    r = requests.get(openmeteo.url, params={"latitude": 51, "longitude": 0, "hourly": "sunshine_colour"}, timeout=5)
    assert r.status_code == 400 and r.json()["error"] is True


def test_a_cached_answer_is_used_until_a_fresh_one_is_asked_for(openmeteo, tmp_path) -> None:
    c = OpenMeteoClient(openmeteo.url, make_session("sqlite", tmp_path / "c.sqlite", 600, 0), 5, "hourly", 2)
    first = c.fetch(ARRAY)
    control(openmeteo, base="zero")
    assert np.array_equal(c.fetch(ARRAY).gti_w_m2, first.gti_w_m2)  # served from the cache
    assert control(openmeteo)["requests"] == 1
    assert np.nanmax(c.fetch(ARRAY, fresh=True).gti_w_m2) == 0.0


def _temp(sim: OpenMeteoSim, resolution: str, stamp: datetime | None = None) -> float:
    """The temperature the fake server reports at the stamp that closes the lit interval."""
    series = client(sim, resolution).fetch(ARRAY)
    t = int((stamp or at(11)).timestamp())
    return float(series.temperature_c[list(series.times).index(t)])


@pytest.mark.parametrize("resolution", ["minutely_15", "hourly"])
def test_values_missing_from_the_end_of_the_answer_are_gaps(openmeteo, resolution: str) -> None:
    control(openmeteo, truncate=2)  # the time axis says 3 days; the last two values of each variable are absent
    series = client(openmeteo, resolution).fetch(ARRAY)
    _, end = covered_slots(series)  # the half-hours the time axis covers (values cover the interval before a stamp)
    last = list(iter_slots(end - timedelta(hours=3), end))
    energy = dict(zip(last, slot_energy([(series, ARRAY)], last), strict=True))
    missing = 2 * series.interval_s // 1800 if resolution == "hourly" else 1  # 2 hours = 4 slots; 2 quarters = 1
    assert [t for t, e in energy.items() if e is None] == last[-missing:]
    assert all(e == 0.0 for e in list(energy.values())[:-missing])  # night: known zeros


def test_variables_come_back_in_the_order_asked(openmeteo) -> None:
    import openmeteo_requests
    from openmeteo_sdk.Variable import Variable

    om = openmeteo_requests.Client(session=requests.Session())
    params = {"latitude": 51.75, "longitude": -1.26, "hourly": "temperature_2m,global_tilted_irradiance_instant"}
    hourly = om.weather_api(openmeteo.url, params=params)[0].Hourly()
    got = [hourly.Variables(i).Variable() for i in range(hourly.VariablesLength())]
    assert got == [Variable.temperature, Variable.global_tilted_irradiance_instant]
    assert hourly.Variables(0).Altitude() == 2  # temperature_2m
    assert hourly.Interval() == 3600 and (hourly.TimeEnd() - hourly.Time()) == 7 * 86400  # forecast_days default 7
