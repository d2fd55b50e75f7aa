"""NetZero API client: one resource, ``GET``/``POST /{site_id}/config`` with a bearer token
(docs/architecture.md, "The outside world").

Every call goes through the process-wide ``RateLimiter``; a 429 blocks the limiter until the server's reset time.
Errors are typed so the executor can say what went wrong: ``AuthError`` (403: bad token or site id),
``RateLimited`` (429), ``ServerError`` (5xx), ``BadResponse`` (not the expected JSON), ``TransportError``
(timeout, refused connection), ``BudgetExhausted`` (our own limiter said no; nothing was sent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from services.executor.limiter import RateLimiter
from services.executor.translate import coerced_reserve
from shared.clock import Clock
from shared.models import BatteryState, GridStatus, PowerwallConfig

USER_AGENT = "batsched-executor/0.1 (+https://github.com/batsched/batsched)"
STATE_TTL = timedelta(minutes=5)


class NetZeroError(Exception):
    """Base of every NetZero failure; ``str()`` is a one-line explanation."""


class AuthError(NetZeroError):
    pass


class RateLimited(NetZeroError):
    def __init__(self, message: str, retry_at: datetime | None, limit: str | None, remaining: str | None) -> None:
        super().__init__(message)
        self.retry_at = retry_at
        self.limit = limit
        self.remaining = remaining


class ServerError(NetZeroError):
    pass


class BadResponse(NetZeroError):
    pass


class TransportError(NetZeroError):
    pass


class BudgetExhausted(NetZeroError):
    pass


@dataclass(frozen=True)
class SiteStatus:
    """One read of ``/config``: the writable configuration and the live status."""

    config: PowerwallConfig
    soc_pct: float
    grid_status: GridStatus
    storm_mode_active: bool | None
    battery_power_w: float | None
    grid_power_w: float | None
    solar_power_w: float | None
    load_power_w: float | None
    capacity_kwh: float | None
    observed_at: datetime

    def battery_state(self, generated_at: datetime | None = None) -> BatteryState:
        return BatteryState(
            generated_at=generated_at or self.observed_at,
            valid_until=self.observed_at + STATE_TTL,
            observed_at=self.observed_at,
            soc_pct=self.soc_pct,
            capacity_kwh=self.capacity_kwh,
            battery_power_w=self.battery_power_w,
            grid_power_w=self.grid_power_w,
            solar_power_w=self.solar_power_w,
            load_power_w=self.load_power_w,
            grid_status=self.grid_status,
            storm_mode_active=self.storm_mode_active,
            config=self.config,
        )


def _num(value: Any) -> float | None:
    """A finite number, None when absent or not a number; NaN, infinities and overflowing integers are a bad
    response (they would otherwise pass here and fail later, when the battery state is published)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise BadResponse(f"a number in the response is not finite: {str(value)[:40]}")
    return number


def _grid_status(top: Any, live: dict[str, Any]) -> GridStatus:
    island = str(live.get("island_status") or "").lower()
    grid = str(live.get("grid_status") or top or "").lower()
    if "off_grid" in island or "islanded" in island or "off_grid" in grid or grid.startswith("inactive"):
        return GridStatus.OFF_GRID
    if grid.startswith("active") and (not island or island == "on_grid"):
        return GridStatus.ON_GRID
    return GridStatus.UNKNOWN


def parse_config(body: Any, observed_at: datetime) -> SiteStatus:
    """Turn a GET/POST body into a ``SiteStatus``; raises ``BadResponse`` when it is not the expected shape."""
    if not isinstance(body, dict):
        raise BadResponse(f"expected a JSON object, got {type(body).__name__}")
    live = body.get("live_status") if isinstance(body.get("live_status"), dict) else {}
    soc = _num(live.get("percentage_charged"))
    if soc is None:
        soc = _num(body.get("percentage_charged"))
    if soc is None or not 0 <= soc <= 100:
        raise BadResponse(f"no plausible percentage_charged in the response ({soc!r})")
    reserve = body.get("backup_reserve_percent")
    mode = body.get("operational_mode")
    exports = body.get("energy_exports")
    grid_charging = body.get("grid_charging")
    try:
        config = PowerwallConfig(
            operational_mode=mode if mode in ("autonomous", "self_consumption", "backup") else None,
            backup_reserve_pct=round(float(reserve)) if _num(reserve) is not None else None,
            grid_charging=grid_charging if isinstance(grid_charging, bool) else None,
            energy_exports=exports if exports in ("pv_only", "battery_ok", "never") else None,
        )
    except ValueError as exc:
        raise BadResponse(f"configuration out of range: {exc}") from None
    if config.operational_mode is None or config.backup_reserve_pct is None:
        raise BadResponse(f"missing operational_mode or backup_reserve_percent (mode={mode!r}, reserve={reserve!r})")
    total = _num(live.get("total_pack_energy"))
    storm = live.get("storm_mode_active")
    return SiteStatus(
        config=config,
        soc_pct=soc,
        grid_status=_grid_status(body.get("grid_status"), live),
        storm_mode_active=storm if isinstance(storm, bool) else None,
        battery_power_w=_num(live.get("battery_power")),
        grid_power_w=_num(live.get("grid_power")),
        solar_power_w=_num(live.get("solar_power")),
        load_power_w=_num(live.get("load_power")),
        capacity_kwh=total / 1000.0 if total and total >= 100 else None,  # below 0.1 kWh: not a real pack
        observed_at=observed_at,
    )


def config_body(change: PowerwallConfig) -> dict[str, Any]:
    """The POST body for the fields that are set; refuses a reserve NetZero would silently coerce (81–99)."""
    body: dict[str, Any] = {}
    if change.backup_reserve_pct is not None:
        if coerced_reserve(change.backup_reserve_pct):
            raise ValueError(f"reserve {change.backup_reserve_pct}% would be coerced to 80% by Tesla: not sent")
        body["backup_reserve_percent"] = change.backup_reserve_pct
    if change.operational_mode is not None:
        body["operational_mode"] = change.operational_mode
    if change.grid_charging is not None:
        body["grid_charging"] = change.grid_charging
    if change.energy_exports is not None:
        body["energy_exports"] = change.energy_exports
    return body


def measure_skew(date_header: str | None, sent: datetime, received: datetime) -> timedelta | None:
    """This host's clock minus the server's, from an HTTP ``Date`` (whole seconds, stamped while answering): the
    request's midpoint against the middle of the Date's second. None when the header is missing or unreadable."""
    if not date_header:
        return None
    try:
        server = parsedate_to_datetime(date_header)
        if server.tzinfo is None:  # "-0000": HTTP dates are GMT
            server = server.replace(tzinfo=UTC)
        return sent + (received - sent) / 2 - (server + timedelta(milliseconds=500))
    except (TypeError, ValueError, IndexError, OverflowError):  # not a date, or one at the end of the calendar
        return None


def _parse_reset(value: str | None, now: datetime) -> datetime | None:
    """``X-RateLimit-Reset`` has no documented format: accept epoch seconds, ISO time or a delay in seconds."""
    if not value:
        return None
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if number > 1e11:  # milliseconds since the epoch
        number /= 1000.0
    if number > 1e9:
        return datetime.fromtimestamp(number, UTC)
    return now + timedelta(seconds=max(0.0, number))


class NetZeroClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        site_id: str,
        clock: Clock,
        limiter: RateLimiter,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/{site_id}/config"
        self.clock = clock
        self.limiter = limiter
        self.timeout_s = timeout_s
        self.clock_skew: timedelta | None = None  # this host's clock minus NetZero's (HTTP Date), last measured
        self._session = requests.Session()
        self._session.headers.update(
            {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT, "Accept": "application/json"}
        )
        self.requests_made = 0

    def get(self, *, spare: bool = False) -> SiteStatus:
        return self._call("GET", None, spare)

    def post(self, change: PowerwallConfig, *, spare: bool = False) -> SiteStatus:
        """Send the set fields in one POST; the response is the read-back (same shape as GET)."""
        body = config_body(change)
        if not body:
            raise ValueError("nothing to send")
        return self._call("POST", body, spare)

    def _call(self, method: str, body: dict[str, Any] | None, spare: bool) -> SiteStatus:
        if not self.limiter.try_acquire(spare=1 if spare else 0):
            raise BudgetExhausted(
                f"request budget used ({self.limiter.per_minute}/min); next in {self.limiter.next_free_in():.0f}s"
            )
        self.requests_made += 1
        sent = self.clock.now()
        try:
            resp = self._session.request(method, self.url, json=body, timeout=self.timeout_s)
        except requests.Timeout:
            raise TransportError(f"NetZero {method} timed out after {self.timeout_s:g}s") from None
        except requests.RequestException as exc:
            raise TransportError(f"NetZero {method} failed: {type(exc).__name__}") from None
        now = self.clock.now()
        skew = measure_skew(resp.headers.get("Date"), sent, now)
        if skew is not None:  # a response without a usable Date tells nothing: the last measurement stands
            self.clock_skew = skew
        status = resp.status_code
        if status in (401, 403):
            raise AuthError(f"NetZero refused the token or site id (HTTP {status}): check the API token and site id")
        if status == 429:
            retry_at = _parse_reset(resp.headers.get("X-RateLimit-Reset"), now) or _parse_reset(
                resp.headers.get("Retry-After"), now
            )
            retry_at = retry_at or now + timedelta(seconds=60)
            self.limiter.block_until(retry_at)
            raise RateLimited(
                f"NetZero rate limit hit (HTTP 429, limit {resp.headers.get('X-RateLimit-Limit', '?')}); "
                f"next request after {retry_at.isoformat()}",
                retry_at,
                resp.headers.get("X-RateLimit-Limit"),
                resp.headers.get("X-RateLimit-Remaining"),
            )
        if status >= 500:
            raise ServerError(f"NetZero server error (HTTP {status}): {_snippet(resp.text)}")
        if status >= 400:
            raise BadResponse(f"NetZero rejected the request (HTTP {status}): {_snippet(resp.text)}")
        try:
            doc = resp.json()
        except (ValueError, RecursionError):  # hostile nesting is a bad body, not a crash
            ctype = resp.headers.get("Content-Type", "?")
            raise BadResponse(
                f"NetZero answered HTTP {status} with a body that is not JSON ({ctype}): {_snippet(resp.text)}"
            ) from None
        return parse_config(doc, now)


def _snippet(text: str, limit: int = 120) -> str:
    return " ".join(text.split())[:limit]
