"""Octopus Energy REST client (requests): unit rates, product discovery, account agreements.

Every call has a timeout; 5xx answers, timeouts and connection errors are retried with doubling backoff; a 403 or
an HTML body (the CDN answers that way at times) and other 4xx answers are errors with a clear message, never data.
Times are sent in UTC with ``Z`` (without a zone the API assumes Europe/London and results shift by an hour).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from shared.logging import get_logger

PAGE_SIZE = 1500  # the API's maximum for unit rates
MAX_PAGES = 20  # 30 000 slots: far beyond any request we make; stops a `next` loop
USER_AGENT = "batsched-pricing/0.1 (home battery scheduler)"


class OctopusError(Exception):
    """A failed call. ``transient`` errors (5xx, timeouts, CDN blocks) are worth trying again later; ``retry_now``
    ones (5xx, timeouts, connection errors) are retried at once with backoff within the same call."""

    def __init__(self, message: str, transient: bool = True, retry_now: bool = True) -> None:
        super().__init__(message)
        self.transient = transient
        self.retry_now = retry_now and transient


def iso_z(t: datetime) -> str:
    if t.tzinfo is None:
        raise ValueError("naive datetime: send times with a zone")
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tariff_code(product: str, region: str) -> str:
    return f"E-1R-{product}-{region}"


@dataclass(frozen=True)
class Tariff:
    product: str
    code: str
    direction: str  # "import" or "export"


class OctopusClient:
    def __init__(
        self,
        base_url: str,
        timeout_s: float = 10.0,
        attempts: int = 3,
        backoff_s: float = 1.0,
        api_key: str | None = None,
        stop: threading.Event | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.api_key = api_key
        self._stop = stop or threading.Event()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        self.log = get_logger("batsched.pricing.octopus")

    # ------------------------------------------------------------------ HTTP

    def get_json(self, url: str, params: dict[str, Any] | None = None, auth: bool = False) -> dict[str, Any]:
        """GET a JSON object, retrying transient failures; raises ``OctopusError``."""
        last: OctopusError | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                return self._get_once(url, params, auth)
            except OctopusError as exc:
                last = exc
                if not exc.retry_now or attempt == self.attempts:
                    break
                delay = self.backoff_s * 2 ** (attempt - 1)
                self.log.warning("octopus call failed; retrying", url=url, attempt=attempt, error=str(exc), wait=delay)
                if self._stop.wait(delay):
                    break
        assert last is not None
        raise last

    def _get_once(self, url: str, params: dict[str, Any] | None, auth: bool) -> dict[str, Any]:
        credentials = (self.api_key, "") if auth and self.api_key else None
        try:
            resp = self.session.get(url, params=params, timeout=self.timeout_s, auth=credentials)
        except requests.Timeout:
            raise OctopusError(f"timed out after {self.timeout_s:g}s") from None
        except requests.ConnectionError as exc:
            raise OctopusError(f"cannot connect: {type(exc).__name__}") from None
        except requests.RequestException as exc:
            raise OctopusError(f"request failed: {exc}") from None
        ctype = resp.headers.get("Content-Type", "")
        looks_html = "html" in ctype.lower() or resp.text.lstrip()[:1] == "<"
        if resp.status_code == 403:
            what = "an HTML block page (CDN/WAF)" if looks_html else resp.text[:120]
            raise OctopusError(f"HTTP 403 Forbidden: {what}", retry_now=False)
        if resp.status_code >= 500:
            raise OctopusError(f"HTTP {resp.status_code} from Octopus")
        if resp.status_code == 429:
            raise OctopusError("HTTP 429 too many requests", retry_now=False)
        if resp.status_code >= 400:
            raise OctopusError(f"HTTP {resp.status_code}: {resp.text[:200]} (check product, region)", transient=False)
        if looks_html:
            raise OctopusError(f"HTTP {resp.status_code} with an HTML body instead of JSON", retry_now=False)
        try:
            body = resp.json()
        except (ValueError, RecursionError):  # hostile nesting is a bad body, not a crash
            raise OctopusError(f"HTTP {resp.status_code} with a body that is not JSON: {resp.text[:80]!r}") from None
        if not isinstance(body, dict):
            raise OctopusError(f"expected a JSON object, got {type(body).__name__}")
        return body

    def _paged(self, url: str, params: dict[str, Any], auth: bool = False) -> list[Any]:
        """All ``results`` of a paginated list, following ``next``."""
        out: list[Any] = []
        next_url: str | None = url
        next_params: dict[str, Any] | None = params
        for _ in range(MAX_PAGES):
            if next_url is None:
                return out
            body = self.get_json(next_url, next_params, auth)
            results = body.get("results")
            if not isinstance(results, list):
                raise OctopusError("response has no results list")
            out.extend(results)
            nxt = body.get("next")
            next_url = nxt if isinstance(nxt, str) and nxt else None
            next_params = None  # `next` carries the query
        raise OctopusError(f"more than {MAX_PAGES} pages: refusing to follow `next` further")

    # ------------------------------------------------------------------ API

    def unit_rates(self, product: str, tariff: str, period_from: datetime, period_to: datetime) -> list[Any]:
        """Raw unit-rate rows (pence) for ``[period_from, period_to)``, all pages."""
        url = f"{self.base_url}/v1/products/{product}/electricity-tariffs/{tariff}/standard-unit-rates/"
        params = {"period_from": iso_z(period_from), "period_to": iso_z(period_to), "page_size": PAGE_SIZE}
        return self._paged(url, params)

    def standing_charges(self, product: str, tariff: str, period_from: datetime, period_to: datetime) -> list[Any]:
        """Raw standing-charge rows (pence per day) overlapping ``[period_from, period_to)``."""
        url = f"{self.base_url}/v1/products/{product}/electricity-tariffs/{tariff}/standing-charges/"
        params = {"period_from": iso_z(period_from), "period_to": iso_z(period_to), "page_size": PAGE_SIZE}
        return self._paged(url, params)

    def discover_product(self, direction: str, now: datetime) -> str:
        """The current Agile product code for ``direction`` ("import"/"export") from the public products list."""
        rows = self._paged(
            f"{self.base_url}/v1/products/", {"is_variable": "true", "brand": "OCTOPUS_ENERGY", "page_size": 100}
        )
        name = "Agile Octopus" if direction == "import" else "Agile Outgoing Octopus"
        candidates = []
        for p in rows:
            if not isinstance(p, dict) or p.get("display_name") != name:
                continue
            if str(p.get("direction", "")).upper() != direction.upper() or p.get("is_business"):
                continue
            until = _time_or_none(p.get("available_to"))
            if until is not None and until <= now:
                continue
            candidates.append((_time_or_none(p.get("available_from")) or datetime.min.replace(tzinfo=UTC), p["code"]))
        if not candidates:
            raise OctopusError(f"no current {name!r} product in the products list", transient=False)
        return max(candidates)[1]

    def account_tariffs(self, account: str, now: datetime) -> dict[str, Tariff]:
        """The account's active electricity tariffs by direction (needs the API key)."""
        if not self.api_key:
            raise OctopusError("account discovery needs an API key", transient=False)
        body = self.get_json(f"{self.base_url}/v1/accounts/{account}/", auth=True)
        found: dict[str, Tariff] = {}
        for prop in body.get("properties") or []:
            for point in prop.get("electricity_meter_points") or []:
                direction = "export" if point.get("is_export") else "import"
                for ag in point.get("agreements") or []:
                    start, end = _time_or_none(ag.get("valid_from")), _time_or_none(ag.get("valid_to"))
                    if (start is None or start <= now) and (end is None or now < end):
                        code = str(ag.get("tariff_code", ""))
                        found[direction] = Tariff(product_from_tariff(code), code, direction)
        return found


def product_from_tariff(code: str) -> str:
    """``E-1R-AGILE-24-10-01-J`` → ``AGILE-24-10-01``."""
    parts = code.split("-")
    if len(parts) < 4 or parts[0] != "E":
        raise OctopusError(f"unexpected tariff code {code!r}", transient=False)
    return "-".join(parts[2:-1])


def _time_or_none(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else None
