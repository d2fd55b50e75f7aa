"""A fake of the Octopus consumption endpoint (a smart meter's half-hourly readings), serving the bundled household.

``GET /v1/electricity-meter-points/{mpan}/meters/{serial}/consumption/`` with HTTP basic auth (the API key as the
user name, empty password), ``period_from``/``period_to`` (inclusive/exclusive, aware ISO times), ``page_size``
(max 25 000), ``page``, ``order_by=period|-period`` (default newest first, like the real API). Readings carry
``interval_start``/``interval_end`` with the local offset (+01:00 in summer), as the real API returns them.
Wrong key → 401, unknown meter → 404. Used by the backtest's tests; the pricing fake (``sim/octopus.py``) serves
prices.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pandas as pd

from sim.local_server import LocalServer

LONDON = ZoneInfo("Europe/London")
MPAN, SERIAL, API_KEY = "2000012345678", "21L4123456", "sk_test_meter"
MAX_PAGE_SIZE = 25_000


class FakeMeter(LocalServer):
    def __init__(self, readings: pd.Series | None = None, port: int = 0) -> None:
        self._readings = readings
        self.serve_on("127.0.0.1", port, _handler(self))

    @property
    def readings(self) -> pd.Series:
        if self._readings is None:
            from sim.datasets import household_load

            self._readings = household_load()
        return self._readings

    def rows(self, start: datetime | None, end: datetime | None, newest_first: bool) -> list[dict[str, Any]]:
        s = self.readings
        if start is not None:
            s = s[s.index >= pd.Timestamp(start)]
        if end is not None:
            s = s[s.index < pd.Timestamp(end)]
        out = []
        for t, kwh in s.items():
            local = t.to_pydatetime().astimezone(LONDON)
            end_local = (t + pd.Timedelta(minutes=30)).to_pydatetime().astimezone(LONDON)
            out.append(
                {
                    "consumption": round(float(kwh), 3),
                    "interval_start": local.isoformat(),
                    "interval_end": end_local.isoformat(),
                }
            )
        return out[::-1] if newest_first else out


def _time(text: str) -> datetime:
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=LONDON).astimezone(UTC)


def _handler(meter: FakeMeter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            auth = self.headers.get("Authorization", "")
            expected = "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode()
            if auth != expected:
                self._send(401, {"detail": "Authentication credentials were not provided."})
                return
            if parts.path != f"/v1/electricity-meter-points/{MPAN}/meters/{SERIAL}/consumption/":
                self._send(404, {"detail": "Not found."})
                return
            try:
                start = _time(query["period_from"]) if "period_from" in query else None
                end = _time(query["period_to"]) if "period_to" in query else None
                size = min(MAX_PAGE_SIZE, max(1, int(query.get("page_size", "100"))))
                page = int(query.get("page", "1"))
            except ValueError:
                self._send(400, {"detail": "Invalid query."})
                return
            rows = meter.rows(start, end, query.get("order_by", "-period") != "period")
            chunk = rows[(page - 1) * size : page * size]
            more = page * size < len(rows)
            nxt = f"{meter.url}{parts.path}?{urlencode({**query, 'page': page + 1})}" if more else None
            self._send(200, {"count": len(rows), "next": nxt, "previous": None, "results": chunk})

    return Handler
