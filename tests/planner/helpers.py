"""Builders of planner inputs for the tests (bus messages with aware UTC times)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.models import BatteryState, EnergyForecast, Rate, RateSeries, SlotEnergy

HALF = timedelta(minutes=30)


def rates(start: datetime, prices: list[float | None], generated_at: datetime | None = None) -> RateSeries:
    """A rate series from ``start``, one slot per price; ``None`` leaves a gap (a missing slot)."""
    items = [
        Rate(start=start + k * HALF, end=start + (k + 1) * HALF, value_inc_vat=p)
        for k, p in enumerate(prices)
        if p is not None
    ]
    return RateSeries(
        generated_at=generated_at or start,
        valid_until=start + len(prices) * HALF,
        tariff_code="E-1R-AGILE-24-10-01-J",
        rates=items,
    )


def battery(now: datetime, soc: float, age: timedelta = timedelta(0)) -> BatteryState:
    observed = now - age
    return BatteryState(
        generated_at=observed, valid_until=observed + timedelta(minutes=5), observed_at=observed, soc_pct=soc
    )


def forecast(kind: str, start: datetime, values: list[float], generated_at: datetime | None = None) -> EnergyForecast:
    slots = [SlotEnergy(start=start + k * HALF, end=start + (k + 1) * HALF, energy_kwh=v) for k, v in enumerate(values)]
    return EnergyForecast(
        generated_at=generated_at or start,
        valid_until=start + len(values) * HALF,
        kind=kind,
        source="test",
        model="test",
        slots=slots,
    )


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)
