"""Octopus's smart tariffs as one rate series: which kind a product is, and its unit-rate rows as half-hour slots.

Every tariff reaches the bus as the same half-hourly ``RateSeries`` (``pricing/import/rates``,
``pricing/export/rates``), so the planner and the executor work unchanged whatever the household is on. The kinds
differ only in the shape of Octopus's ``standard-unit-rates`` rows and in when the prices become known:

- Agile (import) and Agile Outgoing (export): one row per half-hour, tomorrow's published about 16:00 UK time;
- Go, Intelligent Octopus Go, Flux (import and export), Cosy: one row per band (e.g. 00:30-04:30 local), bands
  fixed in UK local time, so their UTC times move with the clocks; known in advance;
- Tracker: one row per local day (23, 24 or 25 hours), tomorrow's published in the afternoon;
- fixed and flexible single-rate tariffs (and Outgoing Fixed): a row per price change, the current one with
  ``valid_to`` null (open-ended).

``half_hour_rows`` turns any of these into half-hour rows within a window, which the usual validation then checks
(grid, plausible range, the same slot twice with different prices rejects the batch). Intelligent Octopus Go's
extra smart-charge slots are added on top (``dispatches.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.slots import SLOT
from shared.tariff_kinds import Kind, kind_of

__all__ = ["Kind", "kind_of"]  # defined in shared (the dashboard names the tariff too), used from here


# Tomorrow's prices are published in the afternoon; the other kinds are known days ahead.
DAY_AHEAD = frozenset({Kind.AGILE, Kind.AGILE_OUTGOING, Kind.TRACKER})
EXPORT_KINDS = frozenset({Kind.AGILE_OUTGOING, Kind.FLUX_EXPORT})


def day_ahead(product: str) -> bool:
    """Tomorrow's prices appear only in the afternoon (Agile, Tracker); the others are known in advance."""
    return kind_of(product) in DAY_AHEAD


@dataclass(frozen=True)
class Expansion:
    rows: list[dict[str, Any]]
    open_ended: int = 0  # rows with a null valid_to, ended at the window's end
    banded: int = 0  # rows longer than a half-hour, split into half-hours


class RowsRejected(ValueError):
    """A row that cannot be a price for a time: the message says which and why."""


def _time(value: Any, name: str, index: int) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RowsRejected(f"row {index}: {name} is not a time string: {value!r}")
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise RowsRejected(f"row {index}: {name} is not an ISO time: {value!r}") from None
    if t.tzinfo is None:
        raise RowsRejected(f"row {index}: {name} has no time zone: {value!r}")
    return t.astimezone(UTC)


def _z(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def half_hour_rows(rows: Any, start: datetime, end: datetime) -> Expansion:
    """Octopus rows of any length as half-hour rows within ``[start, end)`` (UTC slot grid).

    A half-hour row passes through unchanged (validation judges it). A longer row (a band, a Tracker day, a fixed
    price) becomes one row per half-hour it covers inside the window, same prices; a null ``valid_to`` runs to the
    window's end, a null ``valid_from`` from its start. A band edge off the half-hour grid is refused: a slot
    would have two prices.
    """
    if not isinstance(rows, list):
        return Expansion(rows)  # validation rejects it with its own message
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    out: list[dict[str, Any]] = []
    open_ended = banded = 0
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            out.append(row)
            continue
        lo, hi = _time(row.get("valid_from"), "valid_from", i), _time(row.get("valid_to"), "valid_to", i)
        if lo is not None and hi is not None and hi - lo == SLOT:
            out.append(row)
            continue
        for t, name in ((lo, "valid_from"), (hi, "valid_to")):
            if t is not None and (t.minute % 30 or t.second or t.microsecond):
                raise RowsRejected(f"row {i}: {name} {_z(t)} is not on the half-hour grid")
        if hi is None:
            open_ended += 1
        a, b = max(lo or start, start), min(hi or end, end)
        if lo is not None and hi is not None and hi <= lo:
            raise RowsRejected(f"row {i}: valid_to {_z(hi)} is not after valid_from {_z(lo)}")
        banded += 1
        t = a
        while t < b:
            out.append({**row, "valid_from": _z(t), "valid_to": _z(t + SLOT)})
            t += SLOT
    return Expansion(out, open_ended, banded)
