"""AgilePredict (optional): a public forecast of Agile prices built from national wind, solar and demand forecasts.

``GET {base}/api/{region}/?days=N&high_low=true`` answers a JSON list of forecasts, newest first; each has
``name``, ``created_at`` and ``prices``: ``date_time`` (slot start, UTC), ``agile_pred``, ``agile_low`` and
``agile_high`` in p/kWh including VAT. Only the newest forecast is read.

It only ever re-centres the learned estimate (``estimate.with_external``), and only when it passes ``problem``:
fresh (made within ``max_age``), reaching the first slot after the published prices, every value finite, within
the service's price bounds and ordered low <= pred <= high, and in line with the prices already published where it
overlaps them (a wrong region or unit shows there). Anything else is a reason in the log and the learned estimate
is used unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import requests

from services.pricing.octopus import USER_AGENT
from shared.timeseries import utc_seconds

MAX_ENTRIES = 14 * 48 * 2  # two weeks of half-hours, twice over: more is not a forecast we asked for
OVERLAP_MAE_GBP = 0.10  # mean gap to the published prices where the forecast overlaps them
ORDER_SLACK_GBP = 0.0005  # rounding in the source


class AgilePredictError(Exception):
    """The forecast is missing, late or implausible; ``str()`` says which and why."""


@dataclass(frozen=True)
class ExternalForecast:
    created_at: datetime
    starts: list[datetime]  # UTC slot starts, sorted, unique
    median: np.ndarray  # GBP/kWh
    low: np.ndarray
    high: np.ndarray


def _number(entry: dict[str, Any], key: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AgilePredictError(f"{key} is not a number: {str(value)[:20]!r}")
    v = float(value)
    if not np.isfinite(v):
        raise AgilePredictError(f"{key} is not finite")
    return v / 100.0


def _time(value: Any) -> datetime | None:
    """An ISO 8601 time (``Z`` or an offset), or None when it is not one or has no zone."""
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


def parse(doc: Any) -> ExternalForecast:
    """The newest forecast of an AgilePredict answer, in GBP/kWh; raises ``AgilePredictError``."""
    if not isinstance(doc, list) or not doc or not isinstance(doc[0], dict):
        raise AgilePredictError("expected a non-empty list of forecasts")
    newest = doc[0]
    created = _time(newest.get("created_at"))
    if created is None:
        raise AgilePredictError("created_at is missing, not a time or has no zone")
    prices = newest.get("prices")
    if not isinstance(prices, list) or not prices:
        raise AgilePredictError("the forecast has no prices")
    if len(prices) > MAX_ENTRIES:
        raise AgilePredictError(f"{len(prices)} prices: more than {MAX_ENTRIES}")
    starts, med, lo, hi = [], [], [], []
    for entry in prices:
        if not isinstance(entry, dict):
            raise AgilePredictError("a price entry is not an object")
        t = _time(entry.get("date_time"))
        if t is None:
            raise AgilePredictError(f"date_time is not a time: {str(entry.get('date_time'))[:30]!r}")
        t = t.astimezone(UTC)
        if t.minute % 30 or t.second or t.microsecond:
            raise AgilePredictError(f"date_time is not a half-hour slot start in UTC: {entry.get('date_time')!r}")
        starts.append(t)
        med.append(_number(entry, "agile_pred"))
        lo.append(_number(entry, "agile_low"))
        hi.append(_number(entry, "agile_high"))
    seconds = utc_seconds(starts)
    order = np.argsort(seconds, kind="stable")
    if (np.diff(seconds[order]) == 0).any():
        raise AgilePredictError("the same slot twice")
    return ExternalForecast(
        created_at=created.astimezone(UTC),
        starts=[starts[k] for k in order],
        median=np.array(med)[order],
        low=np.array(lo)[order],
        high=np.array(hi)[order],
    )


def problem(
    fc: ExternalForecast,
    now: datetime,
    published_until: datetime,
    published: Mapping[datetime, float],
    max_age: timedelta,
    bounds: tuple[float, float],
) -> str | None:
    """Why the forecast cannot be used now (late or implausible), or None when it can."""
    if now - fc.created_at > max_age:
        return f"late: made at {fc.created_at.isoformat()}, more than {max_age} ago"
    if published_until not in fc.starts:
        return f"late: it does not reach {published_until.isoformat()}, the end of the published prices"
    values = np.concatenate([fc.low, fc.median, fc.high])
    if values.min() < bounds[0] or values.max() > bounds[1]:
        return f"implausible: prices outside {bounds[0] * 100:g}..{bounds[1] * 100:g}p/kWh"
    if (fc.low > fc.median + ORDER_SLACK_GBP).any() or (fc.median > fc.high + ORDER_SLACK_GBP).any():
        return "implausible: agile_low <= agile_pred <= agile_high does not hold"
    overlap = [(fc.median[k], published[t]) for k, t in enumerate(fc.starts) if t in published]
    if overlap:
        gap = float(np.mean([abs(a - b) for a, b in overlap]))
        if gap > OVERLAP_MAE_GBP:
            return (
                f"implausible: {gap * 100:.1f}p/kWh from the published prices on the {len(overlap)} slots it"
                " overlaps (another region or unit?)"
            )
    return None


class AgilePredictClient:
    """One GET per call with a timeout; any failure is an ``AgilePredictError`` (the caller falls back)."""

    def __init__(self, base_url: str, timeout_s: float = 10.0, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"

    def fetch(self, region: str, days: int = 3) -> ExternalForecast:
        url = f"{self.base_url}/api/{region}/"
        try:
            resp = self.session.get(url, params={"days": days, "high_low": "true"}, timeout=self.timeout_s)
        except requests.Timeout:
            raise AgilePredictError(f"missing: timed out after {self.timeout_s:g}s") from None
        except requests.RequestException as exc:
            raise AgilePredictError(f"missing: request failed ({type(exc).__name__})") from None
        if resp.status_code != 200:
            raise AgilePredictError(f"missing: HTTP {resp.status_code}")
        try:
            doc = resp.json()
        except (ValueError, RecursionError):
            raise AgilePredictError(f"missing: the answer is not JSON ({resp.text[:60]!r})") from None
        try:
            return parse(doc)
        except AgilePredictError as exc:
            raise AgilePredictError(f"implausible: {exc}") from None
