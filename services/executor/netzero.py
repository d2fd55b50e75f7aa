"""NetZero API client: one resource, ``GET``/``POST /{site_id}/config`` with a bearer token
(docs/architecture.md, "The outside world").

Every call goes through the process-wide ``RateLimiter``; a 429 blocks the limiter until the server's reset time
(``X-RateLimit-Reset``, else ``Retry-After``). A 401/403 (token or site refused) is not retried at once: the client
backs off 1, 2, 4, 8 then every 15 minutes (on the clock's monotonic time) until an answer is good again.
Errors are typed so the executor can say what went wrong: ``AuthError`` (401/403: bad token or site id),
``RateLimited`` (429), ``ServerError`` (5xx), ``BadResponse`` (not the expected JSON), ``TransportError``
(timeout, refused connection), ``BudgetExhausted`` (our own limiter, NetZero's 429 wait or the 403 back-off said
no; nothing was sent). ``why_no_request`` says which, for the decision's reason.
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
AUTH_BACKOFF_FIRST_S = 60.0  # after a 401/403, the first wait; it doubles on each refusal …
AUTH_BACKOFF_MAX_S = 900.0  # … up to 15 minutes


class NetZeroError(Exception):
    """Base of every NetZero failure; ``str()`` is a one-line explanation."""


class AuthError(NetZeroError):
    pass


class RateLimited(NetZeroError):
    def __init__(
        self,
        message: str,
        retry_at: datetime | None,
        limit: str | None,
        remaining: str | None,
        source: str = "",
    ) -> None:
        super().__init__(message)
        self.retry_at = retry_at
        self.limit = limit
        self.remaining = remaining
        self.source = source  # which header set the wait: "Retry-After 120 s", "X-RateLimit-Reset", ""


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
        self.refusals = 0  # 401/403 answers in a row (0 after any good answer)
        self.refused_since: datetime | None = None
        self.refused_status = 0
        self._refused_until: float | None = None  # monotonic: no request before (the back-off)
        self.next_try_at: datetime | None = None  # the same, as a wall time for messages
        self.rate_limited: RateLimited | None = None  # the last 429 (its wait, for the decision's reason)
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

    def backing_off(self) -> bool:
        """A 401/403 back-off is running: no request before ``next_try_at``."""
        return self._refused_until is not None and self.clock.monotonic() < self._refused_until

    def available(self) -> int:
        """Requests that may be made now (0 during a 403 back-off or NetZero's 429 wait)."""
        return 0 if self.backing_off() else self.limiter.available()

    def refusal_text(self) -> str | None:
        """What the 401/403 back-off is, while NetZero refuses us (None once an answer is good)."""
        if not self.refusals:
            return None
        since = self.refused_since.strftime("%H:%M:%S UTC") if self.refused_since else "?"
        after = self.next_try_at.strftime("%H:%M:%S UTC") if self.next_try_at else "?"
        times = "once" if self.refusals == 1 else f"{self.refusals} times in a row"
        return (
            f"NetZero refused the API token or site id (HTTP {self.refused_status}) {times} since {since}; "
            f"next try at {after} (the wait doubles up to {AUTH_BACKOFF_MAX_S / 60:.0f} min)"
        )

    def why_no_request(self) -> str | None:
        """Why no request may be made now (None when one may): the 403 back-off, NetZero's 429 wait, or our own
        budget of ``per_minute`` (NetZero allows 5 a minute per account)."""
        if self.backing_off():
            return self.refusal_text()
        if self.limiter.available() >= 1:
            return None
        wait = self.limiter.next_free_in()
        limited = self.rate_limited
        if self.limiter.blocked_by_server() and limited is not None and limited.retry_at is not None:
            source = f" ({limited.source})" if limited.source else ""
            return (
                f"NetZero answered HTTP 429 and asked us to wait{source}: no request before "
                f"{limited.retry_at.strftime('%H:%M:%S UTC')} (in {wait:.0f}s)"
            )
        return (
            f"our request budget ({self.limiter.per_minute} a minute; NetZero allows 5) is used: "
            f"next request in {wait:.0f}s"
        )

    def _call(self, method: str, body: dict[str, Any] | None, spare: bool) -> SiteStatus:
        if self.backing_off():
            raise BudgetExhausted(self.refusal_text() or "NetZero refused us: backing off")
        if not self.limiter.try_acquire(spare=1 if spare else 0):
            raise BudgetExhausted(self.why_no_request() or "request budget used")
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
            self._refused(status, now)
            raise AuthError(
                f"NetZero refused the token or site id (HTTP {status}): check the API token and site id; "
                f"next try at {self.next_try_at:%H:%M:%S} UTC"
            )
        if status == 429:
            raise self._limited(resp.headers, now)
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
        parsed = parse_config(doc, now)
        self._accepted()
        return parsed

    def _refused(self, status: int, now: datetime) -> None:
        self.refusals += 1
        self.refused_status = status
        self.refused_since = self.refused_since or now
        wait = min(AUTH_BACKOFF_FIRST_S * 2 ** (self.refusals - 1), AUTH_BACKOFF_MAX_S)
        self._refused_until = self.clock.monotonic() + wait
        self.next_try_at = now + timedelta(seconds=wait)

    def _accepted(self) -> None:
        """A good answer: the token and site are accepted again."""
        self.refusals, self.refused_since, self._refused_until, self.next_try_at = 0, None, None, None

    def _limited(self, headers: Any, now: datetime) -> RateLimited:
        reset = _parse_reset(headers.get("X-RateLimit-Reset"), now)
        after = _parse_reset(headers.get("Retry-After"), now)
        if reset is not None:
            retry_at, source = reset, "X-RateLimit-Reset"
        elif after is not None:
            retry_at, source = after, f"Retry-After {headers.get('Retry-After', '').strip()} s"
        else:
            retry_at, source = now + timedelta(seconds=60), ""
        self.limiter.block_until(retry_at)
        self.rate_limited = RateLimited(
            f"NetZero rate limit hit (HTTP 429, limit {headers.get('X-RateLimit-Limit', '?')}"
            f"{', ' + source if source else ''}); next request after {retry_at.isoformat()}",
            retry_at,
            headers.get("X-RateLimit-Limit"),
            headers.get("X-RateLimit-Remaining"),
            source,
        )
        return self.rate_limited


def _snippet(text: str, limit: int = 120) -> str:
    return " ".join(text.split())[:limit]
