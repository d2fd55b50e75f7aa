"""Turn raw Octopus unit-rate rows into a checked list of ``Rate``s, or reject the whole batch.

Pure: no I/O, no clock. A batch is rejected (``BatchRejected``) when any row is malformed, not a 30-minute slot on
the half-hour grid, outside the plausible price range, or when one slot arrives twice with different prices.
The same slot twice with the same price is a harmless repeat and is dropped. Missing slots are not an error: they
stay missing (a gap), because a missing price must never become 0.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.models import SLOT, Rate

PENCE_PER_GBP = 100.0
VAT = 1.05


class BatchRejected(ValueError):
    """The batch is unusable as a whole; the message says why (it goes to the log and the alert)."""


@dataclass(frozen=True)
class Bounds:
    min_gbp: float = -0.5
    max_gbp: float = 1.0
    vat_included: bool = True  # import: inc = exc × 1.05; export (Agile Outgoing) carries no VAT


@dataclass
class Validated:
    rates: list[Rate]
    duplicates_dropped: int = 0
    gaps: list[datetime] = field(default_factory=list)  # slot starts missing between the first and last


def _parse_utc(value: Any, name: str, index: int) -> datetime:
    if not isinstance(value, str):
        raise BatchRejected(f"row {index}: {name} is not a time string: {value!r}")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BatchRejected(f"row {index}: {name} is not an ISO time: {value!r}") from None
    if t.tzinfo is None:
        raise BatchRejected(f"row {index}: {name} has no time zone: {value!r}")
    if not 2000 <= t.year <= 2200:  # also keeps the UTC conversion and the gap walk below bounded
        raise BatchRejected(f"row {index}: {name} is outside 2000-2200: {value!r}")
    return t.astimezone(UTC)


def _number(value: Any, name: str, index: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BatchRejected(f"row {index}: {name} is not a finite number: {value!r}")
    try:
        number = float(value)  # a 400-digit integer overflows here
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise BatchRejected(f"row {index}: {name} is not a finite number: {str(value)[:40]!r}")
    return number


def validate_rates(rows: Any, bounds: Bounds = Bounds()) -> Validated:
    """Check Octopus rows (pence, newest first or any order) and return sorted GBP/kWh ``Rate``s."""
    if not isinstance(rows, list):
        raise BatchRejected(f"results is not a list but {type(rows).__name__}")
    by_start: dict[datetime, float] = {}
    duplicates = 0
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BatchRejected(f"row {i} is not an object")
        start = _parse_utc(row.get("valid_from"), "valid_from", i)
        end = _parse_utc(row.get("valid_to"), "valid_to", i)
        if end - start != SLOT:
            raise BatchRejected(f"row {i}: slot {start:%Y-%m-%dT%H:%MZ} lasts {end - start}, not 30 minutes")
        if start.minute % 30 or start.second or start.microsecond:
            raise BatchRejected(f"row {i}: slot {start.isoformat()} is not on the half-hour grid")
        inc_p = _number(row.get("value_inc_vat"), "value_inc_vat", i)
        gbp = inc_p / PENCE_PER_GBP
        if not bounds.min_gbp - 1e-9 <= gbp <= bounds.max_gbp + 1e-9:
            raise BatchRejected(
                f"slot {start:%Y-%m-%dT%H:%MZ}: {inc_p}p/kWh is outside the plausible range "
                f"[{bounds.min_gbp * 100:g}, {bounds.max_gbp * 100:g}]p"
            )
        if "value_exc_vat" in row and row["value_exc_vat"] is not None:
            exc_p = _number(row["value_exc_vat"], "value_exc_vat", i)
            expected = exc_p * (VAT if bounds.vat_included else 1.0)
            if abs(inc_p - expected) > 0.02 * abs(exc_p) + 0.05:
                raise BatchRejected(
                    f"slot {start:%Y-%m-%dT%H:%MZ}: value_inc_vat {inc_p} does not match value_exc_vat {exc_p}"
                )
        if start in by_start:
            if abs(by_start[start] - gbp) > 1e-9:
                raise BatchRejected(
                    f"slot {start:%Y-%m-%dT%H:%MZ} appears twice with different prices "
                    f"({by_start[start] * 100:g}p and {inc_p:g}p)"
                )
            duplicates += 1
            continue
        by_start[start] = gbp
    starts = sorted(by_start)
    if starts and starts[-1] - starts[0] > timedelta(days=400):
        raise BatchRejected(f"rates span {starts[0]:%Y-%m-%d} to {starts[-1]:%Y-%m-%d}: not one tariff's recent prices")
    gaps: list[datetime] = []
    for prev, nxt in itertools.pairwise(starts):
        t = prev + SLOT
        while t < nxt:
            gaps.append(t)
            t += SLOT
    rates = [Rate(start=s, end=s + SLOT, value_inc_vat=round(by_start[s], 8)) for s in starts]
    return Validated(rates=rates, duplicates_dropped=duplicates, gaps=gaps)
