"""The price now, defined once: the executor's price limit, the pricing service's ``import/current`` and the
dashboard all read it this way."""

from __future__ import annotations

from datetime import datetime

from shared.models import CurrentRate, RateSeries
from shared.slots import slot_start


def price_now(now: datetime, current: CurrentRate | None, rates: RateSeries | None) -> float | None:
    """The import price (GBP/kWh) of the slot containing ``now``: the pricing service's current-rate message when it
    is valid and for this slot, else the published series' slot. None when unknown (never 0) or expired."""
    if current is not None and current.known and current.is_valid(now) and current.slot_start <= now < current.slot_end:
        return current.value_inc_vat
    if rates is not None and rates.is_valid(now):
        return rates.price_at(slot_start(now))
    return None
