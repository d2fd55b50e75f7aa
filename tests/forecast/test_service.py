"""The forecast service as a process, against a real broker and the fake Open-Meteo over real HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from services.forecast.openmeteo_client import OpenMeteoClient, make_session
from services.forecast.pv_model import PvArray, slot_energy
from services.forecast.store import ForecastStore
from shared.models import BatteryState, EnergyForecast, PvToday
from shared.slots import local_day_slots
from tests.forecast.conftest import NOON, control
from tests.support.broker import Broker
from tests.support.probe import Probe

PV = "batsched/forecast/pv"
LOAD = "batsched/forecast/load"
PV_TODAY = "batsched/forecast/pv/today"
REFRESH = "batsched/forecast/cmd/refresh"


def env(sim, start: datetime = NOON, **extra: str) -> dict[str, str]:
    return {
        "BATSCHED_OPENMETEO_URL": sim.url,
        "BATSCHED_OPENMETEO_CACHE": "off",
        "BATSCHED_OPENMETEO_RETRIES": "0",
        "BATSCHED_OPENMETEO_TIMEOUT_S": "2",
        "BATSCHED_CLOCK": "sim",
        "BATSCHED_SIM_START": start.isoformat(),
        "BATSCHED_SIM_SPEED": "1",
        "BATSCHED_SIM_ORIGIN": repr(time.time()),
        **extra,
    }


def forecast(probe: Probe, topic: str, after: float | None = None, timeout: float = 15) -> EnergyForecast:
    return EnergyForecast.model_validate(probe.wait_json(topic, timeout=timeout, after=after))


def test_publishes_pv_and_load_forecasts_and_todays_pv(spawn, probe: Probe, openmeteo) -> None:
    spawn("services.forecast", env=env(openmeteo))
    pv = forecast(probe, PV)
    load = forecast(probe, LOAD)
    today = PvToday.model_validate(probe.wait_json(PV_TODAY))
    day = local_day_slots(NOON.date())
    assert pv.kind == "pv" and pv.source == "open-meteo" and pv.model == "gti-temp-v1"
    assert [s.start for s in pv.slots][: len(day)] == day  # from local midnight, every half-hour
    assert all(s.energy_kwh is not None for s in pv.slots)
    assert pv.generated_at < pv.valid_until <= pv.slots[-1].end
    assert today.date == NOON.date() and 5 < today.energy_kwh < 40  # a 4 kWp array on midsummer day
    assert load.source == "default-profile" and len(load.slots) >= 96  # no history yet
    discovery = probe.wait_json("homeassistant/sensor/batsched_forecast/pv_forecast_today/config")
    assert discovery["state_topic"] == PV_TODAY


@pytest.mark.parametrize(
    ("openmeteo", "slots"),
    [(datetime(2024, 3, 31, 12, tzinfo=UTC), 46), (datetime(2024, 10, 27, 12, tzinfo=UTC), 50)],
    indirect=["openmeteo"],
)
def test_clock_change_days_have_46_or_50_slots(spawn, probe: Probe, openmeteo, slots: int) -> None:
    now = openmeteo.clock.now()
    spawn("services.forecast", env=env(openmeteo, start=now))
    day = local_day_slots(now.date())
    assert len(day) == slots
    for topic in (PV, LOAD):
        f = forecast(probe, topic)
        got = [s.start for s in f.slots if day[0] <= s.start <= day[-1]]
        assert got == day
        assert all(s.energy_kwh is not None for s in f.slots if s.start in day)


def test_unknown_values_are_published_as_gaps(spawn, probe: Probe, openmeteo) -> None:
    gap = NOON.replace(hour=13)
    control(openmeteo, patches=[{"from": gap.isoformat(), "to": (gap + timedelta(hours=1)).isoformat(), "value": None}])
    spawn("services.forecast", env=env(openmeteo))
    pv = forecast(probe, PV)
    gaps = [s.start for s in pv.slots if s.energy_kwh is None]
    assert gaps == [gap, gap + timedelta(minutes=30)]
    assert pv.energy_at(gap - timedelta(minutes=30)) > 0


def test_api_errors_keep_the_last_good_forecast_with_its_real_validity(
    spawn, probe: Probe, broker: Broker, openmeteo
) -> None:
    e = env(openmeteo, BATSCHED_FORECAST_REFRESH_COOLDOWN_S="0")  # three refreshes in a row, on purpose
    svc = spawn("services.forecast", env=e)
    good = forecast(probe, PV)

    for failure in ("500", "garbage", "timeout"):
        control(openmeteo, failure=failure)
        mark = probe.mark()
        result = probe_request(probe, {"request_id": f"r-{failure}"})
        assert result["status"] == "error" and "PV forecast not refreshed" in result["error"]
        assert not [m for m in probe.on(PV) if m.at >= mark]  # nothing replaced the good forecast
        assert forecast(probe, LOAD, after=mark).generated_at > good.generated_at  # load still refreshed

    # Restart everything while Open-Meteo is still failing: the stored forecast comes back unchanged.
    svc.kill()
    broker.kill()
    broker.start()  # an empty broker: no retained messages survive
    fresh = Probe(broker.port).start()
    try:
        spawn("services.forecast", env={**e, "BATSCHED_MQTT_PORT": str(broker.port)}, name="forecast-2")
        again = forecast(fresh, PV)
        assert again.source == "store"
        assert (again.generated_at, again.valid_until, again.slots) == (good.generated_at, good.valid_until, good.slots)
    finally:
        fresh.stop()


def test_refresh_commands_sooner_than_a_minute_apart_reach_open_meteo_once(spawn, probe: Probe, openmeteo) -> None:
    spawn("services.forecast", env=env(openmeteo))
    forecast(probe, PV)
    assert probe_request(probe, {"request_id": "first"})["status"] == "ok"
    served = openmeteo.state.requests
    again = probe_request(probe, {"request_id": "again"})
    assert again["status"] == "error" and "try again in" in again["error"]
    assert openmeteo.state.requests == served


def probe_request(probe: Probe, body: dict) -> dict:
    mark = probe.mark()
    probe.publish(REFRESH, body)
    return probe.wait_json(f"{REFRESH}/result", lambda d: d["request_id"] == body["request_id"], after=mark)


def test_load_forecast_follows_the_observed_household(spawn, probe: Probe, openmeteo, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = ForecastStore(data / "forecast.db")
    t = NOON - timedelta(days=5)
    while t < NOON - timedelta(minutes=5):  # five days of a steady 1 kW house, one observation a slot
        store.record(_state(t, load_w=1000.0))
        t += timedelta(minutes=30)
    store.close()
    spawn("services.forecast", env=env(openmeteo))
    load = forecast(probe, LOAD)
    assert load.source == "history" and load.model == "weekday-blend-v1"
    tomorrow = [s.energy_kwh for s in load.slots if s.start >= NOON + timedelta(hours=12)]
    assert tomorrow and all(v == pytest.approx(0.5) for v in tomorrow)

    # A new observation over the bus lands in the history (a retained repeat of it is not counted twice).
    state = _state(NOON + timedelta(seconds=30), load_w=3000.0)
    probe.publish("batsched/battery/state", state.model_dump_json(), retain=True)
    probe.publish("batsched/battery/state", state.model_dump_json())
    result = probe_request(probe, {"request_id": "after-state"})
    assert result["status"] == "ok"
    check = ForecastStore(data / "forecast.db")
    try:
        assert check.load_history(NOON).values[-1] == pytest.approx(1.5)  # 3 kW for half an hour
    finally:
        check.close()


def _state(at: datetime, load_w: float) -> BatteryState:
    return BatteryState(
        generated_at=at, valid_until=at + timedelta(minutes=5), observed_at=at, soc_pct=50.0, load_power_w=load_w
    )


def test_pv_forecast_is_calibrated_by_what_the_panels_really_made(spawn, probe: Probe, openmeteo, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    store = ForecastStore(data / "forecast.db")
    yesterday = [NOON - timedelta(days=1, hours=4) + timedelta(minutes=30 * i) for i in range(16)]
    store.save_pv_model_energy({t: 1.0 for t in yesterday})  # forecast 2 kW a slot; the panels made 1.8 kW
    for t in yesterday:
        store.record(BatteryState(generated_at=t, valid_until=t + timedelta(minutes=5), observed_at=t + timedelta(
            minutes=10), soc_pct=50.0, solar_power_w=1800.0))  # fmt: skip
    store.close()
    spawn("services.forecast", env=env(openmeteo))
    pv = forecast(probe, PV)
    raw = OpenMeteoClient(openmeteo.url, make_session("off", None, 0, 0), 5, "minutely_15", 3).fetch(PvArray())
    expected = slot_energy([(raw, PvArray())], [NOON])[0]
    assert pv.model == "gti-temp-v1-calibrated"
    assert pv.energy_at(NOON) == pytest.approx(expected * 0.9, abs=0.002)
