"""The fake Octopus's smart tariffs other than Agile: each product's real rate structure, illustrative prices.

Structures as Octopus's API serves them (``standard-unit-rates``, pence, newest first):

- Go, Intelligent Octopus Go, Flux import/export, Cosy: bands fixed in UK local time; consecutive half-hours at the
  same price form one row (so a row runs e.g. from 04:30 local to 00:30 local the next day, and its UTC times move
  with the clocks); rows overlapping the asked period are returned whole, as the real API does;
- Tracker: one row per local day (23, 24 or 25 hours); its price follows the day's mean Agile price
  (illustrative); tomorrow's row appears at 16:00 local;
- fixed single-rate products (12-month fixed, Outgoing Fixed): one row per price, the current one open-ended
  (``valid_to`` null).

The prices are illustrative (close to 2024's), not Octopus's. ``PRODUCTS`` lists them for ``/v1/products/``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from shared.slots import LONDON, SLOT, local_date, local_midnight, slot_start

VAT = 1.05
TRACKER_PUBLISH = time(16, 0)


@dataclass(frozen=True)
class Band:
    start: time  # local wall time; a band whose end is not after its start runs over midnight
    end: time
    p: float  # p/kWh as Octopus shows it (inc VAT for import; export has none)

    def contains(self, wall: time) -> bool:
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end


@dataclass(frozen=True)
class Product:
    code: str
    direction: str  # IMPORT | EXPORT
    display_name: str
    full_name: str
    available_from: str
    base_p: float = 0.0  # the price outside every band
    bands: tuple[Band, ...] = ()
    tracker: bool = False
    changes: tuple[tuple[str, float], ...] = ()  # fixed: (valid_from, p) in order; the last is open-ended

    @property
    def vat(self) -> float:
        return VAT if self.direction == "IMPORT" else 1.0

    def price_at(self, start: datetime) -> float:
        wall = start.astimezone(LONDON).time()
        return next((b.p for b in self.bands if b.contains(wall)), self.base_p)


GO = "GO-VAR-22-10-14"
INTELLIGENT_GO = "INTELLI-VAR-22-10-14"
FLUX_IMPORT = "FLUX-IMPORT-23-02-14"
FLUX_EXPORT = "FLUX-EXPORT-23-02-14"
COSY = "COSY-22-12-08"
TRACKER = "SILVER-23-12-06"
FIXED = "OE-FIX-12M-24-09-18"
OUTGOING_FIXED = "OUTGOING-FIX-12M-19-05-13"

TARIFF_PRODUCTS: tuple[Product, ...] = (
    Product(GO, "IMPORT", "Octopus Go", "Octopus Go October 2022 v1", "2022-10-14T00:00:00+01:00",
            27.0, (Band(time(0, 30), time(4, 30), 8.5),)),
    Product(INTELLIGENT_GO, "IMPORT", "Intelligent Octopus Go", "Intelligent Octopus Go October 2022 v1",
            "2022-10-14T00:00:00+01:00", 26.5, (Band(time(23, 30), time(5, 30), 7.0),)),
    Product(FLUX_IMPORT, "IMPORT", "Octopus Flux", "Octopus Flux Import February 2023 v1", "2023-02-14T00:00:00Z",
            27.2, (Band(time(2), time(5), 16.3), Band(time(16), time(19), 38.1))),
    Product(FLUX_EXPORT, "EXPORT", "Octopus Flux Outgoing", "Octopus Flux Export February 2023 v1",
            "2023-02-14T00:00:00Z", 19.4, (Band(time(2), time(5), 7.9), Band(time(16), time(19), 29.8))),
    Product(COSY, "IMPORT", "Cosy Octopus", "Cosy Octopus December 2022 v1", "2022-12-08T00:00:00Z", 27.6,
            (Band(time(4), time(7), 13.4), Band(time(13), time(16), 13.4), Band(time(22), time(0), 13.4),
             Band(time(16), time(19), 41.4))),
    Product(TRACKER, "IMPORT", "Octopus Tracker", "Octopus Tracker December 2023 v1", "2023-12-06T00:00:00Z",
            tracker=True),
    Product(FIXED, "IMPORT", "Octopus 12M Fixed", "Octopus 12M Fixed September 2024 v1", "2021-01-01T00:00:00Z",
            changes=(("2021-01-01T00:00:00Z", 19.8), ("2024-09-18T00:00:00+01:00", 24.6))),
    Product(OUTGOING_FIXED, "EXPORT", "Outgoing Octopus", "Outgoing Octopus 12M Fixed May 2019",
            "2019-05-13T00:00:00+01:00", changes=(("2019-05-13T00:00:00+01:00", 15.0),)),
)  # fmt: skip

BY_CODE = {p.code: p for p in TARIFF_PRODUCTS}


def products_list() -> list[dict[str, Any]]:
    """``/v1/products/`` entries for these products."""
    return [
        {
            "code": p.code,
            "direction": p.direction,
            "full_name": p.full_name,
            "display_name": p.display_name,
            "description": f"{p.display_name} (illustrative prices in this simulator).",
            "is_variable": not p.changes,
            "is_green": True,
            "is_tracker": p.tracker,
            "is_prepay": False,
            "is_business": False,
            "is_restricted": False,
            "term": 12 if p.changes else None,
            "available_from": p.available_from,
            "available_to": None,
            "brand": "OCTOPUS_ENERGY",
        }
        for p in TARIFF_PRODUCTS
    ]


def _z(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _row(lo: datetime, hi: datetime | None, p: float, vat: float) -> dict[str, Any]:
    return {
        "value_exc_vat": round(p / vat, 6),
        "value_inc_vat": p,
        "valid_from": _z(lo),
        "valid_to": _z(hi) if hi is not None else None,
        "payment_method": None,
    }


def _banded(p: Product, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    # A day of margin each side, so the rows overlapping the period come back whole.
    t, end = slot_start(lo - timedelta(days=1)), hi + timedelta(days=1)
    runs: list[list[Any]] = []  # [from, to, p]
    while t < end:
        price = p.price_at(t)
        if runs and runs[-1][2] == price and runs[-1][1] == t:
            runs[-1][1] = t + SLOT
        else:
            runs.append([t, t + SLOT, price])
        t += SLOT
    return [_row(a, b, price, p.vat) for a, b, price in runs[1:-1] if a < hi and b > lo]


def _tracker(p: Product, lo: datetime, hi: datetime, daily_p: Callable[[datetime, datetime], float | None]):
    rows = []
    day = local_date(lo)
    while local_midnight(day) < hi:
        a, b = local_midnight(day), local_midnight(day + timedelta(days=1))
        price = daily_p(a, b)
        if price is not None:
            rows.append(_row(a, b, price, p.vat))
        day += timedelta(days=1)
    return rows


def _fixed(p: Product, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    starts = [datetime.fromisoformat(t).astimezone(UTC) for t, _ in p.changes]
    rows = []
    for k, (a, (_, price)) in enumerate(zip(starts, p.changes, strict=True)):
        b = starts[k + 1] if k + 1 < len(starts) else None
        if a < hi and (b is None or b > lo):
            rows.append(_row(a, b, price, p.vat))
    return rows


def tracker_published_until(now: datetime) -> datetime:
    """Local midnight after today, or after tomorrow from 16:00 local."""
    today = local_date(now)
    ahead = 2 if now.astimezone(LONDON).time() >= TRACKER_PUBLISH else 1
    return local_midnight(today + timedelta(days=ahead))


def unit_rates(
    code: str,
    now: datetime,
    period_from: datetime | None,
    period_to: datetime | None,
    daily_p: Callable[[datetime, datetime], float | None],
) -> list[dict[str, Any]]:
    """Rows of a product in this module for the period (newest first). ``daily_p(a, b)``: Tracker's day price."""
    p = BY_CODE[code]
    lo = period_from or local_midnight(local_date(now) - timedelta(days=1))
    hi = period_to or lo + timedelta(days=3)
    if p.tracker:
        hi = min(hi, tracker_published_until(now))
        rows = _tracker(p, lo, hi, daily_p)
    elif p.changes:
        rows = _fixed(p, lo, hi)
    else:
        rows = _banded(p, lo, hi)
    return list(reversed(rows))


def tracker_price_p(agile_mean_gbp: float) -> float:
    """An illustrative Tracker day price from the day's mean Agile price (p/kWh inc VAT, capped at 100p)."""
    return round(min(100.0, max(0.0, agile_mean_gbp * 100.0 * 0.92 + 2.5)), 2)


# Illustrative standing charges, p/day inc VAT (export products have none).
STANDING_P_PER_DAY = {GO: 47.9, INTELLIGENT_GO: 47.9, FLUX_IMPORT: 47.9, COSY: 47.9, TRACKER: 46.4, FIXED: 49.6}
AGILE_STANDING_P_PER_DAY = 47.25


def standing_charges(code: str) -> list[dict[str, Any]]:
    """``standing-charges`` rows of a product: one open-ended row (none for an export product)."""
    p = BY_CODE.get(code)
    if (p is not None and p.direction == "EXPORT") or "OUTGOING" in code:
        return []
    value = STANDING_P_PER_DAY.get(code, AGILE_STANDING_P_PER_DAY)
    row = _row(datetime(2021, 1, 1, tzinfo=UTC), None, value, VAT)
    return [row]
