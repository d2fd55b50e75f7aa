"""PV energy per half-hour slot from Open-Meteo irradiance and air temperature. Pure (no I/O).

Open-Meteo's radiation variables (not ``_instant``) are means over the *preceding* interval: the value stamped
``T`` covers ``(T − interval, T]``. So an hourly value stamped 11:00 is the 10:00–11:00 mean and feeds the 10:00
and 10:30 slots, never 11:00. Values are spread on a 15-minute grid, then summed into half-hour slots; a slot
with any unknown quarter (NaN, missing) is a gap (``None``), never zero.

Power model (temperature-corrected, the common GTI form): cell temperature by the Ross model
``T_cell = T_air + k · GTI`` (k = 0.0342 °C·m²/W), then
``P = kWp · GTI/1000 · (1 + γ · (T_cell − 25)) · η`` with γ = −0.004 /°C and η the system efficiency, capped at
the inverter's AC limit when one is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shared.timeseries import SlotSeries, as_slot_series

QUARTER = timedelta(minutes=15)
SLOT = timedelta(minutes=30)
ROSS_K = 0.0342  # °C per W/m²
GAMMA = -0.004  # power temperature coefficient per °C (crystalline silicon)
MODEL_NAME = "gti-temp-v1"
CALIBRATED_MODEL_NAME = "gti-temp-v1-calibrated"


class PvArray(BaseModel):
    """One PV array: where it is, which way it faces, how big it is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "pv"
    latitude: float = Field(51.75, ge=-90, le=90)
    longitude: float = Field(-1.26, ge=-180, le=180)
    tilt: float = Field(30.0, ge=0, le=90, description="0 = horizontal, 90 = vertical")
    azimuth: float = Field(0.0, ge=-180, le=180, description="Open-Meteo convention: 0 = south, -90 = east")
    kwp: float = Field(4.0, gt=0, le=1000)
    efficiency: float = Field(0.86, gt=0, le=1.0, description="system efficiency (0.86 = PVGIS's 14 % loss)")
    inverter_kw: float | None = Field(None, gt=0, description="AC limit; None = no clipping")


@dataclass(frozen=True)
class IrradianceSeries:
    """What Open-Meteo returned for one array: values stamped at the *end* of their interval (UTC)."""

    times: np.ndarray  # int64 UNIX seconds, the stamp T of each value
    interval_s: int  # 3600 (hourly) or 900 (minutely_15)
    gti_w_m2: np.ndarray  # float, NaN = unknown
    temperature_c: np.ndarray  # float, NaN = unknown


def power_kw(gti_w_m2: np.ndarray, temperature_c: np.ndarray, array: PvArray) -> np.ndarray:
    """AC power (kW) of ``array`` for each irradiance / temperature pair; NaN in, NaN out."""
    gti = np.clip(np.asarray(gti_w_m2, dtype=float), 0.0, None)
    t_cell = np.asarray(temperature_c, dtype=float) + ROSS_K * gti
    factor = 1.0 + GAMMA * (t_cell - 25.0)
    power = array.kwp * gti / 1000.0 * np.clip(factor, 0.0, None) * array.efficiency
    if array.inverter_kw is not None:
        power = np.minimum(power, array.inverter_kw)
    return power


def quarter_energy(series: IrradianceSeries, array: PvArray) -> dict[int, float]:
    """kWh per 15-minute quarter (keyed by the quarter's UTC start, UNIX s); unknown quarters map to NaN."""
    if series.interval_s % 900 or series.interval_s <= 0:
        raise ValueError(f"unsupported interval {series.interval_s} s: expected a multiple of 15 minutes")
    per_value = series.interval_s // 900
    power = power_kw(series.gti_w_m2, series.temperature_c, array)
    out: dict[int, float] = {}
    for stamp, p in zip(series.times.astype(np.int64), power, strict=True):
        start = int(stamp) - series.interval_s  # the value covers (T - interval, T]
        for q in range(per_value):
            out[start + q * 900] = float(p) * 0.25
    return out


def slot_energy(
    series_by_array: Sequence[tuple[IrradianceSeries, PvArray]], slots: Sequence[datetime]
) -> list[float | None]:
    """Total kWh of all arrays for each half-hour slot start; ``None`` where any array lacks a quarter."""
    quarters = [quarter_energy(series, array) for series, array in series_by_array]
    out: list[float | None] = []
    for slot in slots:
        t0 = int(slot.astimezone(UTC).timestamp())
        total = 0.0
        for table in quarters:
            a, b = table.get(t0, np.nan), table.get(t0 + 900, np.nan)
            total += a + b
        out.append(round(total, 4) if np.isfinite(total) else None)
    return out


def covered_slots(series: IrradianceSeries) -> tuple[datetime, datetime] | None:
    """The UTC span ``[start, end)`` of whole half-hour slots the series covers, or None when empty."""
    if len(series.times) == 0:
        return None
    first = int(series.times.min()) - series.interval_s
    last = int(series.times.max())
    start = datetime.fromtimestamp(first, UTC)
    end = datetime.fromtimestamp(last, UTC)
    # Round inwards to slot boundaries.
    if start.minute % 30 or start.second:
        start = start.replace(minute=0 if start.minute < 30 else 30, second=0) + SLOT
    end = end.replace(minute=0 if end.minute < 30 else 30, second=0)
    return (start, end) if end > start else None


def calibration_factor(
    observed_kwh: SlotSeries | Any,
    forecast_kwh: SlotSeries | Any,
    bounds: tuple[float, float],
    min_forecast_kwh: float,
) -> float | None:
    """A scale for the PV forecast learned from what the panels really made: Σ observed / Σ forecast over the
    half-hours both know, clamped to ``bounds``. None (no calibration) until the forecast in those half-hours
    adds up to ``min_forecast_kwh``, so a few cloudy slots cannot swing it. Either series may be a pandas
    ``Series`` indexed by aware slot starts."""
    obs, fc = as_slot_series(observed_kwh), as_slot_series(forecast_kwh)
    _, i, j = np.intersect1d(obs.starts_s, fc.starts_s, return_indices=True)
    o, f = obs.values[i], fc.values[j]
    both = ~np.isnan(o) & ~np.isnan(f)
    total = float(f[both].sum())
    if total < min_forecast_kwh or total <= 0:
        return None
    lo, hi = bounds
    return float(min(hi, max(lo, float(o[both].sum()) / total)))
