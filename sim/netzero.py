"""NetZero simulator: the one ``/{site_id}/config`` resource of the NetZero API over a battery model
(the API's facts: docs/architecture.md, "The outside world").

Longer than 400 lines: one faked API in one file (the resource, its quirks, the battery model, the server).

- Auth: ``Authorization: Bearer <token>``; a wrong token or site id → 403, like the real API.
- Quirks: a backup reserve of 81–99 % is stored as 80 %; 5 requests a minute per account, then 429 with
  ``X-RateLimit-Limit/Remaining/Reset`` (reset = UNIX seconds on the simulated clock); a change reaches the
  "gateway" only after ``apply_delay_s`` (GET and the POST response show what the gateway has); with
  ``drop_rate`` a change is silently never applied.
- Battery (13.5 kWh, 5 kW): driven by the household's real half-hourly load and PVGIS solar (``sim.datasets``) on
  the simulated clock, and by the configuration: backup + grid charging charges at ~3.3 kW; self-consumption
  (or autonomous) with the reserve above the SOC charges at ~1.8 kW from grid and solar; backup without grid
  charging holds (solar surplus still charges); otherwise the battery covers the house and absorbs surplus solar
  down to the reserve. Grid outage: the battery islands the house. Storm watch: charges to full from the grid.
- Switches (``POST /_control``): ``grid_outage``, ``storm``, ``api_error`` (``{"status": 500, "html": true,
  "count": 3}``; count null = until cleared), ``apply_delay_s``, ``drop_rate``, ``soc_pct``, ``config``
  (a change made "in the Tesla app", applied at once), ``hang_s`` (every API request is held this many *real*
  seconds, like the clients' timeouts, then answered 504 without being carried out: a gateway that timed out
  upstream; it is logged and counts against the rate limit; 0 switches it off and releases the requests held).
  A held request blocks only its own thread (a threading server): other requests, ``/_control`` and ``/_state``
  are answered meanwhile.
- Hostile mode (``POST /_control``), for tests that change the site's state under the client's feet:
  ``events`` arms a list of switches to throw at a chosen moment, each ``{"on": …, "nth": 1, "set": {…}}``:
  ``on`` is ``time`` (with ``"t"``: a simulated instant), ``before_get``/``before_post``/``before_any`` (the
  ``nth`` such request from now is answered after the switch: its response shows it) or ``after_get``/
  ``after_post``/``after_any`` (thrown right after that response is made: between a read and the next write);
  ``set`` is any control document (``grid_outage``, ``storm``, ``api_error``, ``drop_rate``,
  ``apply_delay_s``, ``config``, …). ``api_error`` also takes ``"methods": ["POST"]`` (refuse only writes) and
  ``"retry_after_s"`` (a ``Retry-After`` header, e.g. with status 429); 401/403 answer like a refused token.
  ``reset`` (``true``) puts everything back as constructed (log, rate window, pending changes, events,
  switches, configuration and SOC; ``config``/``soc_pct`` in the same document apply after it).
- For tests: ``GET /_log`` (every request, with what a 200 response showed of the grid and storm watch, the
  events thrown, and a state sample per simulated minute, incl. how much power went from the grid into the
  battery), ``GET /_state``.

Run: ``python -m sim.netzero --port N`` (clock from ``BATSCHED_CLOCK``/``BATSCHED_SIM_*`` like every service).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import signal
import sys
import threading
from collections import deque
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from shared.clock import Clock

CAPACITY_KWH = 13.5
MAX_POWER_W = 5000.0
BACKUP_CHARGE_W = 3300.0  # backup mode + grid charging, per Powerwall
RESERVE_CHARGE_W = 1800.0  # self-consumption with the reserve above the SOC
CHARGE_EFFICIENCY = 0.95
STEP = timedelta(seconds=60)
WINDOW = timedelta(seconds=60)
MODES = ("autonomous", "self_consumption", "backup")
EXPORTS = ("pv_only", "battery_ok", "never")
DEFAULT_LOAD_KWH = 0.25  # per half-hour, outside the bundled data's range
GATEWAY_TIMEOUT_PAGE = b"<html><body><h1>504 Gateway Time-out</h1></body></html>"


class Profiles:
    """Half-hourly household load and PV (kWh per slot) from the bundled real data, cached per slot."""

    def __init__(self, kwp: float) -> None:
        self.kwp = kwp
        self._cache: dict[datetime, tuple[float, float]] = {}

    def at(self, t: datetime) -> tuple[float, float]:
        """(load W, PV W) averaged over the slot containing ``t``."""
        start = t.replace(minute=0 if t.minute < 30 else 30, second=0, microsecond=0)
        hit = self._cache.get(start)
        if hit is None:
            import pandas as pd

            from sim.datasets import gross_load_for, pv_energy

            # The real household's gross load (before its PV) mapped onto any date; PV is added separately.
            stamp = pd.Timestamp(start)
            kwh = float(gross_load_for(pd.DatetimeIndex([stamp]))[0])
            if not math.isfinite(kwh):
                kwh = DEFAULT_LOAD_KWH
            pv = float(pv_energy(pd.DatetimeIndex([stamp]), self.kwp)[0]) if self.kwp > 0 else 0.0
            hit = (kwh * 2000.0, pv * 2000.0)
            self._cache[start] = hit
        return hit


class NetZeroSim:
    def __init__(
        self,
        clock: Clock,
        token: str = "demo-token",
        site_id: str = "1234567890",
        *,
        soc_pct: float = 50.0,
        kwp: float = 4.0,
        apply_delay_s: float = 20.0,
        drop_rate: float = 0.0,
        rate_limit: int = 5,
        config: dict[str, Any] | None = None,
        seed: int = 0,
        profiles: Profiles | None = None,
    ) -> None:
        self.clock = clock
        self.token = token
        self.site_id = site_id
        self.capacity_kwh = CAPACITY_KWH
        self.profiles = profiles or Profiles(kwp)
        self.rate_limit = rate_limit
        self._initial = {
            "soc_pct": soc_pct,
            "apply_delay_s": apply_delay_s,
            "drop_rate": drop_rate,
            "config": dict(config or {}),
            "seed": seed,
        }
        self.hang_s = 0.0
        self._unhang = threading.Event()  # set to release the requests held by ``hang_s``
        self._lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        """Everything as constructed, at the clock's now (``reset`` in ``/_control``)."""
        init = self._initial
        self.energy_kwh = CAPACITY_KWH * init["soc_pct"] / 100.0
        self.apply_delay = timedelta(seconds=init["apply_delay_s"])
        self.drop_rate = init["drop_rate"]
        self.config: dict[str, Any] = {
            "operational_mode": "self_consumption",
            "backup_reserve_percent": 20,
            "grid_charging": False,
            "energy_exports": "pv_only",
            **init["config"],
        }
        self.pending: list[tuple[datetime, dict[str, Any]]] = []
        self.grid_up = True
        self.storm = False
        self.api_error: dict[str, Any] | None = None
        self.events: list[dict[str, Any]] = []  # armed hostile events (see the module docstring)
        self.fired: list[dict[str, Any]] = []  # events thrown so far, for the log
        self.random = random.Random(init["seed"])
        self.now = self.clock.now()
        self.live: dict[str, float] = {"load": 0.0, "solar": 0.0, "battery": 0.0, "grid": 0.0, "grid_charge": 0.0}
        self.requests: list[dict[str, Any]] = []
        self.samples: list[dict[str, Any]] = []
        self._window: deque[datetime] = deque()
        self._step(self.now, 0.0)

    # ------------------------------------------------------------------ model

    @property
    def soc_pct(self) -> float:
        return 100.0 * self.energy_kwh / self.capacity_kwh

    def advance(self) -> None:
        """Integrate the battery up to the clock's now, applying pending changes at their time."""
        with self._lock:
            target = self.clock.now()
            if target < self.now:
                self._stepped_back(target - self.now)
            while self.now < target:
                nxt = min(self.now + STEP, target)
                due = [t for t, _ in self.pending if self.now < t <= nxt] + [
                    t for t in self._timed_events() if self.now < t <= nxt
                ]
                if due:
                    nxt = min(due)
                dt = (nxt - self.now).total_seconds()
                self._step(self.now, dt)
                self.now = nxt
                self._apply_due()
                self._fire_timed()
            self._apply_due()
            self._fire_timed()

    def _timed_events(self) -> list[datetime]:
        return [datetime.fromisoformat(e["t"]) for e in self.events if e["on"] == "time"]

    def _fire_timed(self) -> None:
        for event in [e for e in self.events if e["on"] == "time" and datetime.fromisoformat(e["t"]) <= self.now]:
            self._fire(event)

    def _fire_request(self, when: str, method: str) -> None:
        """Throw the events armed for the nth request of this kind (``when``: before or after it is answered)."""
        for event in list(self.events):
            kind, _, wanted = event["on"].partition("_")
            if kind != when or wanted not in (method.lower(), "any"):
                continue
            event["seen"] = event.get("seen", 0) + 1
            if event["seen"] >= event.get("nth", 1):
                self._fire(event)

    def _fire(self, event: dict[str, Any]) -> None:
        self.events.remove(event)
        self.fired.append({"t": self.now.isoformat(), "on": event["on"], "set": event["set"]})
        self._switch(event["set"])

    def _stepped_back(self, step: timedelta) -> None:
        """The shared clock went back (a wall-clock step): the battery carries on from the new time as it is, and
        what was due some seconds ahead (a pending change, the rate window) stays that many seconds ahead."""
        self.now += step
        self.pending = [(at + step, change) for at, change in self.pending]
        self._window = deque(t + step for t in self._window)

    def _apply_due(self) -> None:
        keep = []
        for at, change in self.pending:
            if at <= self.now:
                self.config.update(change)
            else:
                keep.append((at, change))
        self.pending = keep

    def _step(self, t: datetime, dt: float) -> None:
        load, solar = self.profiles.at(t)
        surplus = solar - load
        soc = self.soc_pct
        cfg = self.config
        full = soc >= 99.999
        empty = self.energy_kwh <= 1e-9
        if not self.grid_up:
            battery = max(-MAX_POWER_W, min(MAX_POWER_W, load - solar))
        elif self.storm or (cfg["operational_mode"] == "backup" and cfg["grid_charging"]):
            battery = -max(BACKUP_CHARGE_W, min(max(surplus, 0.0), MAX_POWER_W))
        elif cfg["operational_mode"] == "backup":
            battery = -min(max(surplus, 0.0), MAX_POWER_W)  # hold: only solar surplus goes in
        elif soc < cfg["backup_reserve_percent"] - 0.05:
            battery = -max(RESERVE_CHARGE_W, min(max(surplus, 0.0), MAX_POWER_W))
        else:
            battery = max(-MAX_POWER_W, min(MAX_POWER_W, load - solar))
            if battery > 0 and soc <= cfg["backup_reserve_percent"]:
                battery = 0.0
        if battery < 0 and full:
            battery = 0.0
        if battery > 0 and empty:
            battery = 0.0
        grid = (load - solar - battery) if self.grid_up else 0.0
        grid_charge = max(0.0, -battery - max(0.0, surplus)) if self.grid_up else 0.0
        if dt > 0:
            if battery < 0:
                self.energy_kwh += -battery * dt / 3600_000.0 * CHARGE_EFFICIENCY
            else:
                self.energy_kwh -= battery * dt / 3600_000.0
            self.energy_kwh = min(self.capacity_kwh, max(0.0, self.energy_kwh))
        self.live = {"load": load, "solar": solar, "battery": battery, "grid": grid, "grid_charge": grid_charge}
        if dt > 0:
            self.samples.append(
                {
                    "t": t.isoformat(),
                    "dt_s": dt,
                    "soc_pct": round(soc, 3),
                    "battery_w": round(battery, 1),
                    "grid_w": round(grid, 1),
                    "load_w": round(load, 1),
                    "solar_w": round(solar, 1),
                    "grid_charge_w": round(grid_charge, 1),
                    "mode": cfg["operational_mode"],
                    "reserve": cfg["backup_reserve_percent"],
                    "grid_charging": cfg["grid_charging"],
                    "grid_up": self.grid_up,
                    "storm": self.storm,
                }
            )

    def body(self) -> dict[str, Any]:
        """The GET/POST response body, shaped like the real API's."""
        soc = self.soc_pct
        on = self.grid_up
        local_ts = self.now.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return {
            "backup_reserve_percent": self.config["backup_reserve_percent"],
            "operational_mode": self.config["operational_mode"],
            "energy_exports": self.config["energy_exports"],
            "grid_charging": self.config["grid_charging"],
            "percentage_charged": round(soc, 1),
            "grid_status": "Active (on_grid)" if on else "Inactive (off_grid)",
            "live_status": {
                "solar_power": round(self.live["solar"]),
                "percentage_charged": soc,
                "battery_power": round(self.live["battery"]),
                "load_power": round(self.live["load"]),
                "grid_status": "Active" if on else "Inactive",
                "grid_power": round(self.live["grid"]),
                "generator_power": 0,
                "island_status": "on_grid" if on else "off_grid",
                "storm_mode_active": self.storm,
                "timestamp": local_ts,
                "energy_left": self.energy_kwh * 1000.0,
                "total_pack_energy": self.capacity_kwh * 1000.0,
                "wall_connectors": [],
            },
        }

    # ------------------------------------------------------------------ HTTP semantics

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes]:
        url = urlparse(path)
        with self._lock:
            self.advance()
            if url.path == "/_log":
                return self._json(200, self.log_doc(parse_qs(url.query)))
            if url.path == "/_state":
                return self._json(200, self.state_doc())
            if url.path == "/_control" and method == "POST":
                try:
                    doc = json.loads(raw or b"{}")
                    self.control(doc)
                except (ValueError, TypeError, KeyError) as exc:
                    return self._json(400, {"error": f"bad control: {exc}"})
                return self._json(200, self.state_doc())
            parts = url.path.strip("/").split("/")
            if len(parts) < 2 or parts[-1] != "config" or method not in ("GET", "POST"):
                return self._json(404, {"error": "not found"})
            return self._config(method, parts[-2], headers, raw)

    def begin_hang(self, method: str, path: str) -> tuple[float, threading.Event] | None:
        """With ``hang_s`` on, log an API request as held and return (seconds, release event); else None."""
        with self._lock:
            if self.hang_s <= 0 or urlparse(path).path.startswith("/_"):
                return None
            self.advance()
            self.requests.append(
                {"t": self.now.isoformat(), "method": method, "status": 504, "write": False, "hung": True}
            )
            self._window.append(self.now)
            return self.hang_s, self._unhang

    def _config(self, method: str, site: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes]:
        self._fire_request("before", method)
        answer = self._answer(method, site, headers, raw)
        self._fire_request("after", method)
        return answer

    def _answer(self, method: str, site: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str], bytes]:
        entry: dict[str, Any] = {"t": self.now.isoformat(), "method": method, "status": 0, "write": False}
        self.requests.append(entry)
        auth = headers.get("authorization", "")
        if auth != f"Bearer {self.token}" or site != self.site_id:
            entry["status"] = 403
            return self._json(403, {"error": "Forbidden"})
        while self._window and self.now - self._window[0] >= WINDOW:
            self._window.popleft()
        if len(self._window) >= self.rate_limit:
            reset = self._window[0] + WINDOW
            entry["status"] = 429
            return self._json(429, {"error": "Too many requests"}, self._limit_headers(0, reset))
        self._window.append(self.now)
        limit_headers = self._limit_headers(self.rate_limit - len(self._window), self._window[0] + WINDOW)
        error = self.api_error
        if error is not None and method in error.get("methods", (method,)):
            status = int(error.get("status", 500))
            html = bool(error.get("html", True))
            count = error.get("count")
            if count is not None:
                error["count"] = count - 1
                if count - 1 <= 0:
                    self.api_error = None
            entry["status"] = status
            if error.get("retry_after_s") is not None:
                limit_headers = {**limit_headers, "Retry-After": str(int(error["retry_after_s"]))}
                if status == 429:  # the wait is the Retry-After's, not the window's
                    del limit_headers["X-RateLimit-Reset"]
            if status == 200:  # a proxy answering 200 with an HTML page
                return 200, {"Content-Type": "text/html", **limit_headers}, b"<html><body>Maintenance</body></html>"
            if html:
                page = f"<html><body><h1>{status} Error</h1></body></html>".encode()
                return status, {"Content-Type": "text/html", **limit_headers}, page
            return self._json(status, {"error": f"HTTP {status}"}, limit_headers)
        if method == "POST":
            try:
                doc = json.loads(raw)
                if not isinstance(doc, dict):
                    raise ValueError("not an object")
                change = self._validate(doc)
            except ValueError as exc:
                entry["status"] = 400
                entry["body"] = raw.decode("utf-8", "replace")[:200]
                return self._json(400, {"error": str(exc)}, limit_headers)
            entry["write"] = True
            entry["body"] = doc
            entry["reserve_sent"] = doc.get("backup_reserve_percent")
            dropped = self.drop_rate > 0 and self.random.random() < self.drop_rate
            entry["dropped"] = dropped
            if not dropped:
                self.pending.append((self.now + self.apply_delay, change))
                self._apply_due()
        entry["status"] = 200
        entry["shown"] = {"grid_up": self.grid_up, "storm": self.storm}  # what this response told the client
        return self._json(200, self.body(), limit_headers)

    @staticmethod
    def _validate(doc: dict[str, Any]) -> dict[str, Any]:
        change: dict[str, Any] = {}
        for key, value in doc.items():
            if key == "backup_reserve_percent":
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                    raise ValueError("backup_reserve_percent must be an integer 0-100")
                change[key] = 80 if 81 <= value <= 99 else value  # Tesla's 2025-07 behaviour
            elif key == "operational_mode":
                if value not in MODES:
                    raise ValueError(f"operational_mode must be one of {MODES}")
                change[key] = value
            elif key == "grid_charging":
                if not isinstance(value, bool):
                    raise ValueError("grid_charging must be true or false")
                change[key] = value
            elif key == "energy_exports":
                if value not in EXPORTS:
                    raise ValueError(f"energy_exports must be one of {EXPORTS}")
                change[key] = value
            else:
                raise ValueError(f"unknown field {key}")
        if not change:
            raise ValueError("nothing to change")
        return change

    def _limit_headers(self, remaining: int, reset: datetime) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, remaining)),
            "X-RateLimit-Reset": str(math.ceil(reset.timestamp())),
        }

    @staticmethod
    def _json(status: int, doc: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(doc).encode()

    # ------------------------------------------------------------------ switches and inspection

    def control(self, doc: dict[str, Any]) -> None:
        with self._lock:
            if doc.get("reset"):
                self._reset()
            self.advance()
            if "events" in doc:
                self._arm(doc["events"])
            self._switch(doc)

    def _switch(self, doc: dict[str, Any]) -> None:
        """Throw the switches of a control document at the simulator's now (no integration: an event thrown
        while advancing takes effect at its own time)."""
        with self._lock:
            if "grid_outage" in doc:
                self.grid_up = not bool(doc["grid_outage"])
            if "storm" in doc:
                self.storm = bool(doc["storm"])
            if "api_error" in doc:
                self.api_error = dict(doc["api_error"]) if doc["api_error"] else None
            if "apply_delay_s" in doc:
                self.apply_delay = timedelta(seconds=float(doc["apply_delay_s"]))
            if "drop_rate" in doc:
                self.drop_rate = float(doc["drop_rate"])
            if "hang_s" in doc:
                self.hang_s = max(0.0, float(doc["hang_s"] or 0))
                self._unhang.set()  # requests held so far end now; new ones wait on a fresh event
                self._unhang = threading.Event()
            if "soc_pct" in doc:
                self.energy_kwh = self.capacity_kwh * float(doc["soc_pct"]) / 100.0
            if "config" in doc:
                self.config.update(self._validate(dict(doc["config"])))

    def _arm(self, events: list[dict[str, Any]] | None) -> None:
        if events is None:
            self.events = []
            return
        for event in events:
            on = event["on"]
            kind, _, method = on.partition("_")
            if on != "time" and (kind not in ("before", "after") or method not in ("get", "post", "any")):
                raise ValueError(f"unknown event {on!r}")
            if on == "time":
                datetime.fromisoformat(event["t"])
            if not isinstance(event.get("set"), dict) or "events" in event["set"] or "reset" in event["set"]:
                raise ValueError("an event's set is a control document without events or reset")
            if "config" in event["set"]:
                self._validate(dict(event["set"]["config"]))  # refused now, not when it is thrown
            self.events.append({"on": on, "nth": int(event.get("nth", 1)), "t": event.get("t"), "set": event["set"]})

    def state_doc(self) -> dict[str, Any]:
        return {
            "now": self.now.isoformat(),
            "config": dict(self.config),
            "soc_pct": self.soc_pct,
            "grid_up": self.grid_up,
            "storm": self.storm,
            "pending": len(self.pending),
            "hang_s": self.hang_s,
            **self.stats(),
        }

    def stats(self) -> dict[str, Any]:
        return {
            "request_count": len(self.requests),
            "writes": sum(1 for r in self.requests if r["write"]),
            "rate_limited": sum(1 for r in self.requests if r["status"] == 429),
            "hung": sum(1 for r in self.requests if r.get("hung")),
            "max_per_minute": max_per_window(self.requests),
        }

    def log_doc(self, query: dict[str, list[str]] | None = None) -> dict[str, Any]:
        since = (query or {}).get("since", [""])[0]
        reqs = [r for r in self.requests if r["t"] >= since] if since else list(self.requests)
        samples = [s for s in self.samples if s["t"] >= since] if since else list(self.samples)
        return {"requests": reqs, "samples": samples, "events": list(self.fired), **self.stats()}


def max_per_window(requests: list[dict[str, Any]], window: timedelta = WINDOW) -> int:
    """The most requests that arrived in any ``window`` (all of them, refused ones too)."""
    times = sorted(datetime.fromisoformat(r["t"]) for r in requests)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# ---------------------------------------------------------------------------------------------- HTTP server


def make_handler(sim: NetZeroSim) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle's algorithm a kept-alive client's delayed ACK holds
        # the body back ~40 ms per request.
        disable_nagle_algorithm = True

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            held = sim.begin_hang(self.command, self.path)
            if held is not None:
                seconds, release = held
                release.wait(seconds)  # on this request's thread only; the lock is not held
                status, out_headers, body = 504, {"Content-Type": "text/html"}, GATEWAY_TIMEOUT_PAGE
            else:
                status, out_headers, body = sim.handle(self.command, self.path, headers, raw)
            self.send_response(status)
            for key, value in out_headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that timed out has gone
                self.wfile.write(body)

        do_GET = _serve
        do_POST = _serve

        def date_time_string(self, timestamp: float | None = None) -> str:
            # The HTTP Date on the simulated clock, as a real server's is on real time: the executor checks its
            # own clock against it.
            return formatdate(sim.clock.now().timestamp(), usegmt=True)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client killed mid-request (the kill tests do that on purpose) is not the simulator's problem.
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def serve(sim: NetZeroSim, port: int = 0, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Start the HTTP server on a thread; ``server.server_address[1]`` is the port. Stop with ``shutdown()``."""
    server = _Server((host, port), make_handler(sim))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="netzero-sim", daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    from shared.runner import make_clock
    from shared.settings import ServiceSettings

    parser = argparse.ArgumentParser(description="NetZero API simulator with a Powerwall model")
    parser.add_argument("--port", type=int, default=18082)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--soc", type=float, default=50.0, help="initial SOC %%")
    parser.add_argument("--kwp", type=float, default=4.0, help="PV size")
    parser.add_argument("--apply-delay", type=float, default=20.0, help="seconds before a change reaches the gateway")
    parser.add_argument("--drop-rate", type=float, default=0.0, help="share of changes silently never applied")
    args = parser.parse_args(argv)
    clock = make_clock(ServiceSettings())
    sim = NetZeroSim(
        clock,
        os.environ.get("BATSCHED_NETZERO_API_KEY", "demo-token"),
        os.environ.get("BATSCHED_NETZERO_SITE_ID", "1234567890"),
        soc_pct=args.soc,
        kwp=args.kwp,
        apply_delay_s=args.apply_delay,
        drop_rate=args.drop_rate,
    )
    server = serve(sim, args.port, args.host)
    print(f"netzero-sim listening on http://{args.host}:{server.server_address[1]}/api/v1", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
