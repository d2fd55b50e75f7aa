"""A fake AgilePredict API for tests: ``GET /api/{region}/?days=N&high_low=true`` with the real answer's shape.

The answer is a list with one forecast: ``name``, ``created_at`` (the fake's clock minus ``age_h``) and ``prices``
from the last half-hour boundary for ``days`` days, each ``date_time`` (UTC, ``Z``), ``agile_pred``,
``agile_low`` and ``agile_high`` in p/kWh. The forecast is the real bundled Agile price (region J) plus
``offset_p``, with a band of ``band_p`` either side: a perfect forecaster unless told otherwise.

Failures (attributes, changed between requests): ``status`` (an HTTP error code instead of data), ``hang_s`` (stall
before answering), ``body`` (a raw body instead of JSON), ``age_h`` (an old forecast), ``offset_p`` (implausible
when large), ``swap_band`` (agile_low above agile_pred).
"""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pandas as pd

from shared.clock import Clock
from shared.slots import slot_start
from sim.datasets import agile_prices
from sim.local_server import LocalServer


class FakeAgilePredict(LocalServer):
    def __init__(self, clock: Clock, port: int = 0) -> None:
        self.clock = clock
        self.status = 200
        self.hang_s = 0.0
        self.body: str | None = None
        self.age_h = 1.0
        self.offset_p = 0.0
        self.band_p = 3.0
        self.swap_band = False
        self.requests: list[str] = []
        self.serve_on("127.0.0.1", port, _handler(self))

    def forecast(self, region: str, days: int) -> list[dict[str, Any]]:
        now = self.clock.now()
        first = pd.Timestamp(slot_start(now))
        real = agile_prices().reindex(pd.date_range(first, periods=days * 48, freq="30min")).dropna() * 100
        prices = []
        for t, p in real.items():
            pred = round(float(p) + self.offset_p, 2)
            low, high = round(pred - self.band_p, 2), round(pred + self.band_p, 2)
            if self.swap_band:
                low, high = high, low
            stamp = t.strftime("%Y-%m-%dT%H:%M:%SZ")
            prices.append({"date_time": stamp, "agile_pred": pred, "agile_low": low, "agile_high": high})
        made = (now - timedelta(hours=self.age_h)).astimezone(UTC)
        return [{"name": f"Region | {region} {made:%Y-%m-%d %H:%M}", "created_at": made.isoformat(), "prices": prices}]


def _handler(api: FakeAgilePredict) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            api.requests.append(parts.path)
            if api.hang_s and api.released.wait(api.hang_s):
                return
            segments = [s for s in parts.path.split("/") if s]
            if len(segments) != 2 or segments[0] != "api":
                return self._send(404, "text/html", "<html>not found</html>")
            if api.status != 200:
                return self._send(api.status, "text/html", f"<html>error {api.status}</html>")
            if api.body is not None:
                return self._send(200, "application/json", api.body)
            days = int(parse_qs(parts.query).get("days", ["14"])[0])
            return self._send(200, "application/json", json.dumps(api.forecast(segments[1].upper(), days)))

        def _send(self, code: int, ctype: str, body: str) -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
