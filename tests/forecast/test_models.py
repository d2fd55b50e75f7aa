"""The pure models: load from history (what a household sees in its forecast) and the PV power model."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from services.forecast.load_model import (
    DEFAULT_MODEL_NAME,
    DEFAULT_PROFILE_KWH,
    MODEL_NAME,
    LoadModelParams,
    forecast_load,
)
from services.forecast.pv_model import PvArray, calibration_factor, power_kw
from services.forecast.store import ForecastStore
from shared.models import BatteryState
from shared.slots import local_day_slots, local_midnight


def history(days: int, end_day: date, kwh: float | np.ndarray = 0.2) -> pd.Series:
    """``days`` local days of half-hourly observations ending the day before ``end_day``."""
    start = local_midnight(end_day - timedelta(days=days))
    idx = pd.date_range(start, local_midnight(end_day), freq="30min", inclusive="left")
    values = np.full(len(idx), kwh) if np.isscalar(kwh) else np.resize(kwh, len(idx))
    return pd.Series(values, index=idx, dtype=float)


DAY = date(2024, 5, 15)


def test_without_history_the_forecast_is_the_documented_default_profile() -> None:
    result = forecast_load(pd.Series(dtype=float), local_day_slots(DAY))
    assert result.model == DEFAULT_MODEL_NAME
    assert np.array_equal(result.energy_kwh, DEFAULT_PROFILE_KWH)
    assert 7.0 < result.energy_kwh.sum() < 8.0  # a typical UK home's day


def test_a_steady_household_is_forecast_as_it_behaves() -> None:
    shape = np.where(np.arange(48) >= 34, 0.6, 0.1)  # an evening-heavy household
    result = forecast_load(history(21, DAY, shape), local_day_slots(DAY))
    assert result.model == MODEL_NAME and result.history_days == 21
    np.testing.assert_allclose(result.energy_kwh, shape)


def test_recent_days_weigh_more_than_older_ones() -> None:
    h = history(21, DAY, 0.1)
    h[h.index >= local_midnight(DAY - timedelta(days=3))] = 0.3  # the house got busier three days ago
    day_total = forecast_load(h, local_day_slots(DAY)).energy_kwh.sum()
    assert 0.2 * 48 < day_total < 0.3 * 48  # a plain 21-day mean would say 0.13 kWh a slot


def test_observations_after_now_are_never_used() -> None:
    slots = local_day_slots(DAY)
    h = history(14, DAY + timedelta(days=2), 0.2)
    before = forecast_load(h, slots).energy_kwh
    h[h.index >= slots[0]] = 5.0  # the future changes
    assert np.array_equal(forecast_load(h, slots).energy_kwh, before)


def test_ev_charging_above_the_threshold_is_left_out() -> None:
    h = history(14, DAY, 0.2)
    ev = h.index.tz_convert("Europe/London").hour.isin([1, 2, 3])
    h[ev] = 3.6  # a 7.2 kW charger, every night
    plain = forecast_load(h, local_day_slots(DAY)).energy_kwh
    excluded = forecast_load(h, local_day_slots(DAY), params=LoadModelParams(exclude_above_kwh=3.0)).energy_kwh
    assert plain.max() == pytest.approx(3.6)
    assert excluded.max() == pytest.approx(0.2)


@pytest.mark.parametrize(("day", "slots"), [(date(2024, 3, 31), 46), (date(2024, 10, 27), 50)])
def test_clock_change_days_get_46_or_50_finite_slots(day: date, slots: int) -> None:
    result = forecast_load(history(21, day, 0.25), local_day_slots(day))
    assert len(result.energy_kwh) == slots
    np.testing.assert_allclose(result.energy_kwh, 0.25)


def test_hot_panels_make_less_power_and_the_inverter_clips() -> None:
    array = PvArray(kwp=4.0, efficiency=1.0)
    cool, hot = power_kw(np.array([1000.0, 1000.0]), np.array([-9.2, 30.0]), array)
    assert cool == pytest.approx(4.0 * (1 - 0.004 * (-9.2 + 34.2 - 25)), rel=1e-6)  # T_cell = 25 °C: nameplate
    assert hot < cool
    clipped = power_kw(np.array([1000.0]), np.array([0.0]), PvArray(kwp=4.0, efficiency=1.0, inverter_kw=3.0))
    assert clipped[0] == 3.0
    assert np.isnan(power_kw(np.array([np.nan]), np.array([10.0]), array)[0])


def test_pv_calibration_is_the_observed_ratio_within_its_bounds() -> None:
    idx = pd.date_range("2024-06-20T08:00Z", periods=24, freq="30min")
    forecast = pd.Series(1.0, index=idx)
    assert calibration_factor(forecast * 0.9, forecast, (0.7, 1.3), 10.0) == pytest.approx(0.9)
    assert calibration_factor(forecast * 0.2, forecast, (0.7, 1.3), 10.0) == 0.7  # a shaded week cannot sink it
    assert calibration_factor(forecast * 5, forecast, (0.7, 1.3), 10.0) == 1.3
    assert calibration_factor(forecast[:5] * 0.9, forecast, (0.7, 1.3), 10.0) is None  # too little to judge


def test_the_store_counts_each_observation_once_and_survives_a_clock_set_back(tmp_path) -> None:
    store = ForecastStore(tmp_path / "forecast.db")
    t = datetime(2024, 6, 21, 12, 5, tzinfo=UTC)

    def state(at: datetime, w: float) -> BatteryState:
        return BatteryState(generated_at=at, valid_until=at + timedelta(minutes=5), observed_at=at, soc_pct=50,
                            load_power_w=w)  # fmt: skip

    assert store.record(state(t, 1000))
    assert not store.record(state(t, 1000))  # the retained message again after a reconnect
    assert store.record(state(t + timedelta(minutes=10), 2000))
    assert store.load_history(t - timedelta(hours=1)).values[-1] == pytest.approx(0.75)  # mean 1.5 kW × 0.5 h
    assert store.record(state(t - timedelta(days=3), 400))  # the demo started again from an earlier time
    assert len(store.load_history(t - timedelta(days=4))) == 2
    store.close()
