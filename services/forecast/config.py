"""Forecast service settings (env prefix ``BATSCHED_``)."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from services.forecast.pv_model import PvArray
from shared.settings import ServiceSettings


class ForecastSettings(ServiceSettings):
    openmeteo_url: str = Field(
        "https://api.open-meteo.com/v1/forecast", description="Open-Meteo forecast endpoint (…/v1/forecast)"
    )
    pv_arrays: Annotated[list[PvArray], NoDecode] = Field(
        default_factory=lambda: [PvArray()],
        description='PV arrays as a JSON list, e.g. [{"latitude":51.75,"longitude":-1.26,"tilt":30,'
        '"azimuth":-35,"kwp":3.95,"efficiency":0.86}] (azimuth: 0 = south, -90 = east, 90 = west)',
    )
    openmeteo_resolution: Literal["minutely_15", "hourly"] = Field(
        "minutely_15", description="Open-Meteo time step to request"
    )
    forecast_days: Annotated[int, Field(ge=1, le=16)] = Field(3, description="Days of PV forecast to request")
    openmeteo_timeout_s: Annotated[float, Field(gt=0, le=120)] = Field(10.0, description="HTTP timeout per try")
    openmeteo_retries: Annotated[int, Field(ge=0, le=10)] = Field(3, description="HTTP retries (5xx, timeouts)")
    openmeteo_cache: Literal["sqlite", "memory", "off"] = Field(
        "sqlite", description="HTTP cache: openmeteo_cache.sqlite in data_dir, memory, or off"
    )
    openmeteo_cache_s: Annotated[float, Field(ge=0)] = Field(900.0, description="HTTP cache lifetime (clock s)")
    pv_refresh_s: Annotated[float, Field(gt=0)] = Field(3600.0, description="PV forecast refresh period (clock s)")
    pv_retry_s: Annotated[float, Field(gt=0)] = Field(300.0, description="Retry period after a failed fetch")
    forecast_refresh_cooldown_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        60.0, description="A refresh command sooner than this after the last one is refused (spares Open-Meteo)"
    )
    pv_max_age_s: Annotated[float, Field(gt=0)] = Field(
        12 * 3600.0, description="A PV forecast is valid this long after it was made (capped at its last slot)"
    )
    pv_calibration: bool = Field(True, description="Scale the PV forecast by observed/forecast PV (bounded)")
    pv_calibration_days: Annotated[int, Field(ge=1, le=60)] = Field(14, description="Calibration look-back (days)")
    pv_calibration_min: Annotated[float, Field(gt=0, le=1)] = Field(0.7, description="Lowest calibration factor")
    pv_calibration_max: Annotated[float, Field(ge=1, le=3)] = Field(1.3, description="Highest calibration factor")
    pv_calibration_min_kwh: Annotated[float, Field(gt=0)] = Field(
        10.0, description="Forecast energy (kWh) the look-back must hold before calibration starts"
    )
    load_horizon_h: Annotated[float, Field(gt=0, le=24 * 14)] = Field(
        48.0, description="Load forecast covers from local midnight today to the end of the local day this far ahead"
    )
    load_max_age_s: Annotated[float, Field(gt=0)] = Field(
        6 * 3600.0, description="A load forecast is valid this long after it was made"
    )
    load_history_days: Annotated[int, Field(ge=7, le=3650)] = Field(60, description="Days of observed load kept")
    load_exclude_above_kw: Annotated[float, Field(gt=0)] | None = Field(
        6.0, description="Half-hours whose mean load is above this (an EV, a one-off) are left out of the model"
    )
    postcode: str | None = Field(
        None,
        description="UK postcode of the site: its location (looked up once, then cached) is used for the PV arrays "
        "when BATSCHED_PV_ARRAYS is not set",
    )
    postcode_url: str = Field("https://api.postcodes.io", description="Postcode lookup service (postcodes.io API)")
    pv_latitude: Annotated[float, Field(ge=-90, le=90)] | None = Field(
        None, description="Site latitude when the postcode cannot be looked up"
    )
    pv_longitude: Annotated[float, Field(ge=-180, le=180)] | None = Field(
        None, description="Site longitude when the postcode cannot be looked up"
    )

    @field_validator("postcode")
    @classmethod
    def _postcode(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return " ".join(value.upper().split())

    @field_validator("postcode_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def pv_arrays_given(self) -> bool:
        """Whether BATSCHED_PV_ARRAYS was set, with each array's location (the seed's PV constants carry none)."""
        source = self.seed_resolution.sources.get("pv_arrays")
        return source is not None and source.kind in ("env", "secret_file")

    @field_validator("pv_arrays", mode="before")
    @classmethod
    def _parse_arrays(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError('not JSON: give a list like [{"kwp": 4, "tilt": 30, "azimuth": 0}]') from None
        if isinstance(value, dict):
            value = [value]
        if isinstance(value, list) and not value:
            raise ValueError("at least one PV array is needed")
        return value

    @property
    def cache_expire_s(self) -> float:
        """The HTTP cache works in real seconds; under the demo's fast clock it shrinks with the speed."""
        return self.openmeteo_cache_s / self.sim_speed if self.clock == "sim" else self.openmeteo_cache_s
