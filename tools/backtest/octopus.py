"""A small Octopus REST client for the backtest: historical unit rates (no key) and a meter's consumption (key).

Only what a backtest needs; the live system's client is the pricing service's. Pagination follows ``next``; times
are always sent with a zone (apis.md §A). Errors become ``OctopusError`` with the HTTP status and URL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import requests

DEFAULT_BASE_URL = "https://api.octopus.energy"
MAX_PAGES = 200


class OctopusError(RuntimeError):
    pass


def tariff_code(product: str, region: str) -> str:
    region = region.strip().upper().lstrip("_")
    if len(region) != 1 or region not in "ABCDEFGHJKLMNP":
        raise ValueError(f"unknown Octopus region {region!r} (a letter A–P without I and O)")
    return f"E-1R-{product}-{region}"


def _z(t: datetime) -> str:
    if t.tzinfo is None:
        raise ValueError("Octopus queries need aware times")
    return t.isoformat().replace("+00:00", "Z")


def _pages(session: requests.Session, url: str, params: dict[str, Any] | None, auth: Any = None) -> list[dict]:
    out: list[dict] = []
    next_url: str | None = url
    for _ in range(MAX_PAGES):
        if next_url is None:
            return out
        resp = session.get(next_url, params=params, auth=auth, timeout=30)
        if resp.status_code != 200:
            raise OctopusError(f"Octopus answered HTTP {resp.status_code} for {resp.url}")
        try:
            doc = resp.json()
        except ValueError:
            raise OctopusError(f"Octopus answered something that is not JSON for {resp.url}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
            raise OctopusError(f"unexpected Octopus response shape from {resp.url}")
        out.extend(doc["results"])
        next_url, params = doc.get("next"), None  # ``next`` already carries the query
    raise OctopusError(f"more than {MAX_PAGES} pages from {url}")


def fetch_rates(
    product: str, region: str, start: datetime, end: datetime, base_url: str = DEFAULT_BASE_URL
) -> dict[str, Any]:
    """Unit rates for ``[start, end)`` in the API's own shape (``{"results": [...]}``, pence)."""
    code = tariff_code(product, region)
    url = f"{base_url.rstrip('/')}/v1/products/{product}/electricity-tariffs/{code}/standard-unit-rates/"
    params = {"period_from": _z(start), "period_to": _z(end), "page_size": 1500}
    with requests.Session() as s:
        return {"results": _pages(s, url, params)}


def fetch_consumption(
    mpan: str, serial: str, api_key: str, start: datetime, end: datetime, base_url: str = DEFAULT_BASE_URL
) -> dict[str, Any]:
    """Half-hourly consumption for ``[start, end)`` (key as the basic-auth user name), oldest first."""
    url = f"{base_url.rstrip('/')}/v1/electricity-meter-points/{mpan}/meters/{serial}/consumption/"
    params = {"period_from": _z(start), "period_to": _z(end), "page_size": 25000, "order_by": "period"}
    with requests.Session() as s:
        return {"results": _pages(s, url, params, auth=(api_key, ""))}
