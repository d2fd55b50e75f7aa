"""A fake Open-Meteo forecast API: ``GET /v1/forecast`` answered in FlatBuffers (or JSON) from real PV data.

Longer than 400 lines: one faked API in one file (the parameters, both encodings, the data shaping, the server).

``python -m sim.openmeteo --port N`` (``make run`` starts it). Irradiance is shaped by the real PVGIS hourly
profile bundled in ``sim/data`` (by day of year and UTC hour, W per kWp divided by a 0.86 system efficiency to
give a GTI-like W/m²); temperature is a smooth seasonal + daily curve. Time follows the shared clock
(``BATSCHED_CLOCK=sim`` …), so the "forecast" starts at UTC midnight of the simulated day.

Like the real API: ``hourly`` or ``minutely_15`` with a comma-separated list of variables (answered in that
order), ``forecast_days`` (0–16, default 7), ``past_days`` (0–92), ``format=flatbuffers`` (otherwise JSON);
radiation values are means over the *preceding* interval (stamp ``T`` covers ``(T − interval, T]``); an unknown
variable or a bad number is HTTP 400 with ``{"error": true, "reason": …}``.

Test switches, by constructor argument or ``POST /control`` with a JSON object:
``{"failure": "500" | "timeout" | "garbage" | "html" | null}``, ``{"base": "pvgis" | "zero"}`` and
``{"patches": [{"variable": "global_tilted_irradiance", "from": ISO, "to": ISO, "value": 500 | null}]}``
(a patch sets the values whose interval lies inside ``[from, to)``; ``null`` is NaN), ``{"truncate": n}`` (the
last n values of every variable are missing while the time axis stays whole), ``{"reset": true}``.
``GET /control`` shows the state and how many forecast requests were served.
"""

from __future__ import annotations

import argparse
import json
import math
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

import flatbuffers
import numpy as np
from openmeteo_sdk.Unit import Unit
from openmeteo_sdk.Variable import Variable

from shared.clock import Clock
from shared.runner import make_clock
from shared.settings import ServiceSettings
from sim.local_server import LocalServer

FAILURES = ("500", "timeout", "garbage", "html")
SYSTEM_EFFICIENCY = 0.86  # PVGIS's default 14 % loss: W/kWp ÷ 0.86 ≈ plane-of-array W/m²

# name -> (variable enum, unit, altitude, kind); kind "mean" = preceding-interval mean, "instant" = at the stamp
VARIABLES: dict[str, tuple[int, int, int, str]] = {
    "global_tilted_irradiance": (Variable.global_tilted_irradiance, Unit.watt_per_square_metre, 0, "mean"),
    "global_tilted_irradiance_instant": (
        Variable.global_tilted_irradiance_instant,
        Unit.watt_per_square_metre,
        0,
        "instant",
    ),
    "shortwave_radiation": (Variable.shortwave_radiation, Unit.watt_per_square_metre, 0, "mean"),
    "temperature_2m": (Variable.temperature, Unit.celsius, 2, "instant"),
}
UNIT_TEXT = {Unit.watt_per_square_metre: "W/m²", Unit.celsius: "°C"}


class BadRequest(Exception):
    pass


@dataclass
class SimState:
    failure: str | None = None
    base: str = "pvgis"
    patches: list[dict[str, Any]] = field(default_factory=list)
    truncate: int = 0  # values dropped from the end of every variable (the time axis stays): "missing values"
    requests: int = 0


def _hourly_gti_table() -> np.ndarray:
    """366 × 24 GTI-like W/m², row = day of year − 1, column = UTC hour (the mean over that hour)."""
    from sim.datasets import pvgis_hourly_w_per_kwp

    profile = pvgis_hourly_w_per_kwp().to_numpy(dtype=float)
    return np.clip(profile.reshape(-1, 24) / SYSTEM_EFFICIENCY, 0.0, None)


def _temperature(t: np.ndarray) -> np.ndarray:
    """A smooth UK-like air temperature (°C) at UNIX times ``t``: 4–17 °C seasonal mean, ±4 °C daily swing."""
    days = t / 86400.0
    doy = (days - 0.0) % 365.25
    seasonal = 10.5 - 6.5 * np.cos(2 * np.pi * (doy - 20) / 365.25)
    hour = (t % 86400) / 3600.0
    daily = 4.0 * np.sin(2 * np.pi * (hour - 9.0) / 24.0)
    return seasonal + daily


class ForecastModel:
    """Produces the values: irradiance from the PVGIS table, temperature from a formula, then the patches."""

    def __init__(self) -> None:
        self._table: np.ndarray | None = None

    @property
    def table(self) -> np.ndarray:
        if self._table is None:
            self._table = _hourly_gti_table()
        return self._table

    def _hour_mean(self, hour_start: np.ndarray) -> np.ndarray:
        """Mean GTI over the UTC hour starting at each UNIX time (table by day of year)."""
        ts = hour_start.astype("datetime64[s]")
        doy = (ts.astype("datetime64[D]") - ts.astype("datetime64[Y]")).astype(int)
        hour = ((hour_start % 86400) // 3600).astype(int)
        return self.table[np.minimum(doy, self.table.shape[0] - 1), hour]

    def irradiance_at(self, t: np.ndarray) -> np.ndarray:
        """Instantaneous GTI at UNIX times ``t``: hourly means interpolated between hour centres."""
        centre = t - 1800.0
        h0 = np.floor(centre / 3600.0) * 3600.0
        frac = (centre - h0) / 3600.0
        a, b = self._hour_mean(h0.astype(np.int64)), self._hour_mean((h0 + 3600).astype(np.int64))
        return np.clip(a + (b - a) * frac, 0.0, None)

    def irradiance_mean(self, stamps: np.ndarray, interval: int) -> np.ndarray:
        """Mean GTI over ``(T − interval, T]`` for each stamp T."""
        if interval == 3600:
            return self._hour_mean(stamps - 3600)
        # A quarter: the interpolated curve at the quarter's centre (how Open-Meteo fills 15-min for the UK).
        return self.irradiance_at(stamps - interval / 2.0)

    def values(self, name: str, stamps: np.ndarray, interval: int, state: SimState) -> np.ndarray:
        _enum, _unit, _alt, kind = VARIABLES[name]
        if name == "temperature_2m":
            out = _temperature(stamps.astype(float))
        elif state.base == "zero":
            out = np.zeros(len(stamps))
        elif kind == "instant":
            out = self.irradiance_at(stamps.astype(float))
        else:
            out = self.irradiance_mean(stamps, interval)
            if name == "shortwave_radiation":
                out = out * 0.8
        out = out.astype(float)
        for patch in state.patches:
            if patch.get("variable", "global_tilted_irradiance") != name:
                continue
            lo = _epoch(patch["from"])
            hi = _epoch(patch["to"])
            covers_from = stamps - (interval if kind == "mean" else 0)
            inside = (covers_from >= lo) & (stamps <= hi) if kind == "mean" else (stamps >= lo) & (stamps < hi)
            value = patch.get("value")
            out[inside] = np.nan if value is None else float(value)
        return out


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def build_flatbuffer(
    lat: float, lon: float, block: str, start: int, interval: int, n: int, columns: list[tuple[str, np.ndarray]]
) -> bytes:
    """One ``WeatherApiResponse`` as Open-Meteo sends it: 4-byte little-endian length + the finished buffer."""
    b = flatbuffers.Builder(1024 + sum(len(v) for _, v in columns) * 4)
    tz = b.CreateString("GMT")
    abbr = b.CreateString("GMT")
    var_offsets = []
    for name, values in columns:
        enum, unit, altitude, _kind = VARIABLES[name]
        vec = b.CreateNumpyVector(values.astype(np.float32))
        b.StartObject(13)
        b.PrependUint8Slot(0, enum, 0)
        b.PrependUint8Slot(1, unit, 0)
        b.PrependUOffsetTRelativeSlot(3, vec, 0)
        b.PrependInt16Slot(5, altitude, 0)
        var_offsets.append(b.EndObject())
    b.StartVector(4, len(var_offsets), 4)
    for off in reversed(var_offsets):
        b.PrependUOffsetTRelative(off)
    variables = b.EndVector()
    b.StartObject(4)
    b.PrependInt64Slot(0, start, 0)
    b.PrependInt64Slot(1, start + n * interval, 0)
    b.PrependInt32Slot(2, interval, 0)
    b.PrependUOffsetTRelativeSlot(3, variables, 0)
    vwt = b.EndObject()
    b.StartObject(15)
    b.PrependFloat32Slot(0, lat, 0.0)
    b.PrependFloat32Slot(1, lon, 0.0)
    b.PrependFloat32Slot(2, 80.0, 0.0)
    b.PrependFloat32Slot(3, 0.5, 0.0)
    b.PrependInt32Slot(6, 0, 0)
    b.PrependUOffsetTRelativeSlot(7, tz, 0)
    b.PrependUOffsetTRelativeSlot(8, abbr, 0)
    b.PrependUOffsetTRelativeSlot(11 if block == "hourly" else 12, vwt, 0)
    b.Finish(b.EndObject())
    buf = bytes(b.Output())
    return len(buf).to_bytes(4, "little") + buf


def _number(query: dict[str, list[str]], name: str, default: float, lo: float, hi: float) -> float:
    raw = query.get(name, [None])[0]
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"Cannot initialize {name} from invalid String value {raw}") from None
    if not (lo <= value <= hi) or math.isnan(value):
        raise BadRequest(f"Parameter '{name}' must be between {lo} and {hi}")
    return value


class OpenMeteoSim(LocalServer):
    url_path = "/v1/forecast"
    thread_name = "openmeteo-sim"

    """The fake server. ``start()`` serves on a thread; ``port=0`` picks a free port (see ``.url``)."""

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        clock: Clock | None = None,
        failure: str | None = None,
        base: str = "pvgis",
        hang_s: float = 60.0,
    ) -> None:
        if failure is not None and failure not in FAILURES:
            raise ValueError(f"failure must be one of {FAILURES}")
        self.clock = clock or make_clock(ServiceSettings())
        self.state = SimState(failure=failure, base=base)
        self.model = ForecastModel()
        self.hang_s = hang_s
        self.lock = threading.Lock()
        self.serve_on(host, port, self._handler_class())

    # ---------------------------------------------------------------- control

    def control(self, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            if body.get("reset"):
                self.state = SimState(requests=self.state.requests)
            if "failure" in body:
                failure = body["failure"]
                if failure is not None and failure not in FAILURES:
                    raise BadRequest(f"failure must be one of {FAILURES} or null")
                self.state.failure = failure
            if "base" in body:
                if body["base"] not in ("pvgis", "zero"):
                    raise BadRequest("base must be pvgis or zero")
                self.state.base = body["base"]
            if "truncate" in body:
                if not isinstance(body["truncate"], int) or body["truncate"] < 0:
                    raise BadRequest("truncate must be a non-negative integer")
                self.state.truncate = body["truncate"]
            if "patches" in body:
                patches = body["patches"]
                if not isinstance(patches, list):
                    raise BadRequest("patches must be a list")
                for p in patches:
                    _epoch(p["from"]), _epoch(p["to"])  # validate now, not on the next request
                    if p.get("variable", "global_tilted_irradiance") not in VARIABLES:
                        raise BadRequest(f"unknown variable {p.get('variable')!r}")
                self.state.patches = patches
            return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        s = self.state
        return {
            "failure": s.failure, "base": s.base, "patches": s.patches, "truncate": s.truncate, "requests": s.requests
        }  # fmt: skip

    # ---------------------------------------------------------------- forecast

    def answer(self, query: dict[str, list[str]]) -> tuple[str, dict[str, Any] | bytes]:
        """("flatbuffers", body) or ("json", document) for a forecast query; raises ``BadRequest``."""
        lat = _number(query, "latitude", float("nan"), -90, 90) if "latitude" in query else None
        lon = _number(query, "longitude", float("nan"), -180, 180) if "longitude" in query else None
        if lat is None or lon is None:
            raise BadRequest("Parameter 'latitude' and 'longitude' must be set")
        _number(query, "tilt", 0, 0, 90)
        _number(query, "azimuth", 0, -180, 180)
        forecast_days = int(_number(query, "forecast_days", 7, 0, 16))
        past_days = int(_number(query, "past_days", 0, 0, 92))
        blocks = [b for b in ("minutely_15", "hourly") if query.get(b)]
        if len(blocks) != 1:
            raise BadRequest("ask for exactly one of hourly= or minutely_15= (this fake serves one block)")
        block = blocks[0]
        names = [n.strip() for part in query[block] for n in part.split(",") if n.strip()]
        for name in names:
            if name not in VARIABLES:
                raise BadRequest(f"Cannot initialize ForecastVariable from invalid String value {name}")
        interval = 3600 if block == "hourly" else 900
        today = self.clock.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start_dt = today - timedelta(days=past_days)
        start = int(start_dt.timestamp())
        n = (past_days + forecast_days) * 86400 // interval
        stamps = start + interval * np.arange(n, dtype=np.int64)
        with self.lock:
            state = SimState(self.state.failure, self.state.base, list(self.state.patches), self.state.truncate)
        columns = [(name, self.model.values(name, stamps, interval, state)) for name in names]
        if state.truncate:
            columns = [(name, values[: max(0, len(values) - state.truncate)]) for name, values in columns]
        if query.get("format", [""])[0] == "flatbuffers":
            return "flatbuffers", build_flatbuffer(lat, lon, block, start, interval, n, columns)
        times = [datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%M") for t in stamps]
        doc: dict[str, Any] = {
            "latitude": lat,
            "longitude": lon,
            "generationtime_ms": 0.5,
            "utc_offset_seconds": 0,
            "timezone": "GMT",
            "timezone_abbreviation": "GMT",
            "elevation": 80.0,
            f"{block}_units": {"time": "iso8601", **{n: UNIT_TEXT[VARIABLES[n][1]] for n in names}},
            block: {
                "time": times,
                **{n: [None if np.isnan(v) else round(float(v), 2) for v in vals] for n, vals in columns},
            },
        }
        return "json", doc

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the tests run many requests
                pass

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

            def _json(self, status: int, doc: Any) -> None:
                self._send(status, json.dumps(doc).encode(), "application/json")

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query, keep_blank_values=True)
                if url.path == "/control":
                    with sim.lock:
                        self._json(200, sim.snapshot())
                    return
                if url.path != "/v1/forecast":
                    self._json(404, {"error": True, "reason": "Not Found"})
                    return
                with sim.lock:
                    sim.state.requests += 1
                    failure = sim.state.failure
                if failure == "500":
                    self._json(500, {"error": True, "reason": "Internal Server Error (simulated)"})
                    return
                if failure == "timeout":
                    sim.released.wait(sim.hang_s)  # answer far too late; the client must give up first
                    self._json(504, {"error": True, "reason": "Gateway Timeout (simulated)"})
                    return
                if failure == "html":
                    self._send(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
                    return
                if failure == "garbage":
                    self._send(200, bytes(range(256)) * 8, "application/octet-stream")
                    return
                try:
                    kind, body = sim.answer(query)
                except BadRequest as exc:
                    self._json(400, {"error": True, "reason": str(exc)})
                    return
                if kind == "flatbuffers":
                    assert isinstance(body, bytes)
                    self._send(200, body, "application/octet-stream")
                else:
                    self._json(200, body)

            def do_POST(self) -> None:
                if urlparse(self.path).path != "/control":
                    self._json(404, {"error": True, "reason": "Not Found"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                    if not isinstance(body, dict):
                        raise BadRequest("control body must be a JSON object")
                    self._json(200, sim.control(body))
                except (BadRequest, ValueError, KeyError) as exc:
                    self._json(400, {"error": True, "reason": str(exc)})

        return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fake Open-Meteo forecast API (FlatBuffers) replaying real PV data")
    parser.add_argument("--port", type=int, default=18081)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--failure", choices=FAILURES, default=None)
    args = parser.parse_args(argv)
    sim = OpenMeteoSim(port=args.port, host=args.host, failure=args.failure)
    print(f"fake Open-Meteo on {sim.url} (clock {sim.clock.now().isoformat()})", flush=True)
    try:
        sim.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sim.httpd.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
