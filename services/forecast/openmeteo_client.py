"""Open-Meteo through ``openmeteo-requests`` (FlatBuffers), with an HTTP cache and retries: the only I/O for PV.

One request per PV array (each has its own tilt and azimuth). The decoded response is checked before use: a body
that is not a FlatBuffers answer, a variable in the wrong place, or a time axis that makes no sense raises
``OpenMeteoError`` (and empties the cache so a bad body is not served again).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import openmeteo_requests
import requests
import requests_cache
from openmeteo_sdk.Variable import Variable
from retry_requests import retry

from services.forecast.pv_model import IrradianceSeries, PvArray

VARIABLES = ("global_tilted_irradiance", "temperature_2m")
_EXPECTED = (Variable.global_tilted_irradiance, Variable.temperature)
MAX_VALUES = 16 * 24 * 4 + 93 * 24 * 4  # 16 forecast days + 92 past days of quarters: more is not Open-Meteo


class OpenMeteoError(Exception):
    """Open-Meteo could not give a usable forecast (HTTP error, timeout, garbage body, bad shape)."""


def make_session(cache: str, cache_path: Path | None, expire_s: float, retries: int) -> requests.Session:
    """A requests session with a cache (sqlite file, memory or none) and retries on 5xx and timeouts."""
    if cache == "off" or expire_s <= 0:
        base: requests.Session = requests.Session()
    elif cache == "memory":
        base = requests_cache.CachedSession(backend="memory", expire_after=expire_s)
    else:
        if cache_path is None:
            raise ValueError("a sqlite cache needs a path")
        base = requests_cache.CachedSession(str(cache_path), backend="sqlite", expire_after=expire_s)
    return retry(base, retries=retries, backoff_factor=0.2, status_to_retry=(500, 502, 503, 504))


class OpenMeteoClient:
    def __init__(self, url: str, session: requests.Session, timeout_s: float, resolution: str, days: int) -> None:
        self.url = url
        self.session = session
        self.timeout_s = timeout_s
        self.resolution = resolution
        self.days = days
        self._client = openmeteo_requests.Client(session=session)

    def params(self, array: PvArray) -> dict[str, Any]:
        return {
            "latitude": array.latitude,
            "longitude": array.longitude,
            "tilt": array.tilt,
            "azimuth": array.azimuth,
            self.resolution: ",".join(VARIABLES),
            "forecast_days": self.days,
            "past_days": 1,  # so today's local day is whole even in summer time (it starts at 23:00 UTC)
            "timezone": "GMT",
        }

    def fetch(self, array: PvArray, fresh: bool = False) -> IrradianceSeries:
        """The array's irradiance and temperature; ``fresh`` skips the cache (a refresh a person asked for)."""
        extra: dict[str, Any] = {}
        if fresh and isinstance(self.session, requests_cache.CachedSession):
            extra["force_refresh"] = True
        try:
            responses = self._client.weather_api(self.url, params=self.params(array), timeout=self.timeout_s, **extra)
        except Exception as exc:  # openmeteo-requests re-raises everything as OpenMeteoRequestsError
            raise OpenMeteoError(_short(str(exc))) from exc
        try:
            return self._decode(responses)
        except OpenMeteoError:
            self._forget_cached()
            raise
        except Exception as exc:  # a garbage body fails deep inside the FlatBuffers reader
            self._forget_cached()
            raise OpenMeteoError(f"undecodable response: {type(exc).__name__}: {_short(str(exc))}") from exc

    def _decode(self, responses: list[Any]) -> IrradianceSeries:
        if len(responses) != 1:
            raise OpenMeteoError(f"expected one response, got {len(responses)}")
        r = responses[0]
        block = r.Minutely15() if self.resolution == "minutely_15" else r.Hourly()
        if block is None:
            raise OpenMeteoError(f"response has no {self.resolution} block")
        start, end, interval = int(block.Time()), int(block.TimeEnd()), int(block.Interval())
        if interval not in (900, 3600) or end <= start or (end - start) % interval:
            raise OpenMeteoError(f"bad time axis: time={start} time_end={end} interval={interval}")
        n = (end - start) // interval
        if n > MAX_VALUES:
            raise OpenMeteoError(f"time axis of {n} values is longer than any forecast")
        if block.VariablesLength() < len(VARIABLES):
            raise OpenMeteoError(f"expected {len(VARIABLES)} variables, got {block.VariablesLength()}")
        columns = []
        for i, (name, expected) in enumerate(zip(VARIABLES, _EXPECTED, strict=True)):
            var = block.Variables(i)
            if var.Variable() != expected:
                raise OpenMeteoError(f"variable {i} is {var.Variable()}, expected {name}")
            values = var.ValuesAsNumpy()
            values = np.full(0, np.nan) if values is None or isinstance(values, int) else values.astype(float)
            # Missing values at the end of the axis are unknown, not zero.
            if len(values) < n:
                values = np.concatenate([values, np.full(n - len(values), np.nan)])
            columns.append(values[:n])
        # Stamps: value i is stamped start + i·interval and covers the interval before its stamp.
        times = start + interval * np.arange(n, dtype=np.int64)
        return IrradianceSeries(times=times, interval_s=interval, gti_w_m2=columns[0], temperature_c=columns[1])

    def _forget_cached(self) -> None:
        cache = getattr(self.session, "cache", None)
        if cache is not None:
            cache.clear()


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
