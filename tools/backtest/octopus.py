"""The backtest's Octopus calls, through the pricing service's client (``services.pricing.octopus``): its
timeouts, retries, HTML/403 detection and pagination apply. Rates need no key; consumption needs the customer's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.pricing.octopus import OctopusClient, OctopusError, iso_z
from services.pricing.octopus import tariff_code as pricing_tariff_code

DEFAULT_BASE_URL = "https://api.octopus.energy"
MAX_PAGES = 200
__all__ = ["OctopusError", "fetch_consumption", "fetch_rates", "tariff_code"]


def tariff_code(product: str, region: str) -> str:
    region = region.strip().upper().lstrip("_")
    if len(region) != 1 or region not in "ABCDEFGHJKLMNP":
        raise ValueError(f"unknown Octopus region {region!r} (a letter A–P without I and O)")
    return pricing_tariff_code(product, region)


def fetch_rates(
    product: str, region: str, start: datetime, end: datetime, base_url: str = DEFAULT_BASE_URL
) -> dict[str, Any]:
    """Unit rates for ``[start, end)`` in the API's own shape (``{"results": [...]}``, pence, newest first)."""
    client = OctopusClient(base_url, timeout_s=30)
    return {"results": client.unit_rates(product, tariff_code(product, region), start, end)}


def fetch_consumption(
    mpan: str, serial: str, api_key: str, start: datetime, end: datetime, base_url: str = DEFAULT_BASE_URL
) -> dict[str, Any]:
    """Half-hourly consumption for ``[start, end)`` (the key is the basic-auth user name), following ``next``."""
    client = OctopusClient(base_url, timeout_s=30, api_key=api_key)
    url: str | None = f"{client.base_url}/v1/electricity-meter-points/{mpan}/meters/{serial}/consumption/"
    params: dict[str, Any] | None = {
        "period_from": iso_z(start),
        "period_to": iso_z(end),
        "page_size": 25000,
        "order_by": "period",
    }
    out: list[Any] = []
    for _ in range(MAX_PAGES):
        if url is None:
            return {"results": out}
        try:
            body = client.get_json(url, params, auth=True)
        except OctopusError as exc:
            raise OctopusError(
                f"consumption for meter {mpan}/{serial}: {exc} (check the API key, MPAN and serial)"
            ) from None
        if not isinstance(body.get("results"), list):
            raise OctopusError("consumption response has no results list", transient=False)
        out.extend(body["results"])
        nxt = body.get("next")
        url, params = (nxt if isinstance(nxt, str) and nxt else None), None
    raise OctopusError(f"more than {MAX_PAGES} pages of consumption", transient=False)
