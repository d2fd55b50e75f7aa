"""A fake postcode lookup service answering like postcodes.io: ``GET /postcodes/{postcode}``.

200 ``{"status": 200, "result": {"postcode": "OX1 2JD", "latitude": …, "longitude": …, …}}`` for a postcode in
its small table (spaces and case do not matter), 404 ``{"status": 404, "error": "Postcode not found"}`` for a
well-formed one it does not know and ``"Invalid postcode"`` for anything else. ``POST /_control`` with
``{"fail": n}`` makes the next n lookups answer 503 (-1: all); ``GET /_control`` shows the request count.

Run: ``python -m sim.postcodes --port 18083``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from sim.local_server import LocalServer

# A few real places (postcode centroids, rounded).
POSTCODES: dict[str, tuple[float, float, str]] = {
    "OX12JD": (51.7520, -1.2578, "OX1 2JD"),
    "SW1A1AA": (51.5010, -0.1416, "SW1A 1AA"),
    "EH11YZ": (55.9522, -3.1896, "EH1 1YZ"),
    "CF101EP": (51.4816, -3.1791, "CF10 1EP"),
    "M11AE": (53.4809, -2.2374, "M1 1AE"),
}
_SHAPE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$")


class FakePostcodes(LocalServer):
    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.fail = 0
        self.requests = 0
        self._lock = threading.Lock()
        self.serve_on(host, port, self._handler())

    def answer(self, raw: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests += 1
            if self.fail:
                self.fail -= 1 if self.fail > 0 else 0
                return 503, {"status": 503, "error": "Service unavailable"}
        key = re.sub(r"\s+", "", unquote(raw)).upper()
        if key in POSTCODES:
            lat, lon, shown = POSTCODES[key]
            return 200, {
                "status": 200,
                "result": {"postcode": shown, "latitude": lat, "longitude": lon, "country": "England"},
            }
        if _SHAPE.match(key):
            return 404, {"status": 404, "error": "Postcode not found"}
        return 404, {"status": 404, "error": "Invalid postcode"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, fmt: str, *args: Any) -> None:
                pass

            def _send(self, status: int, doc: Any) -> None:
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/_control":
                    self._send(200, {"fail": api.fail, "requests": api.requests})
                elif self.path.startswith("/postcodes/"):
                    self._send(*api.answer(self.path.split("/postcodes/", 1)[1].split("?")[0]))
                else:
                    self._send(404, {"status": 404, "error": "Resource not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    doc = json.loads(self.rfile.read(length) or b"{}")
                    api.fail = int(doc.get("fail", 0))
                except (ValueError, TypeError, AttributeError):
                    self._send(400, {"error": 'send {"fail": n}'})
                    return
                self._send(200, {"fail": api.fail})

        return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Fake postcode lookup (postcodes.io shape)")
    parser.add_argument("--port", type=int, default=18083)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    api = FakePostcodes(args.port, args.host)
    print(f"fake postcodes on {api.url}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        api.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
