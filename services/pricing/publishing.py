"""Publishing: the retained price series (``pricing/import/rates``, ``pricing/export/rates``) and the price of the
slot in progress (``pricing/import/current``), always from what is stored, and republished after a reconnect.

Every known slot from the start of the local day goes out, ``valid_until`` = the end of the last slot, gaps left
out. At start the stored rates are republished as they were (``source="store"``, their original fetch time and
validity) before any network call. A slot without a price is ``known=false``, never 0.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from shared.bus_core import BusCore
from shared.models import CurrentRate, Message, Rate, RateSeries
from shared.prices import price_now
from shared.slots import SLOT, local_date, slot_start
from shared.topics import EXPORT_RATES, IMPORT_CURRENT, IMPORT_RATES

from .config import PricingSettings
from .octopus import tariff_code
from .store import RateStore


@dataclass
class Publisher:
    s: PricingSettings
    bus: BusCore
    store: RateStore
    now: Callable[[], datetime]
    window: Callable[[datetime], tuple[datetime, datetime]]
    log: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    series: dict[str, RateSeries] = field(default_factory=dict)  # by direction
    published_day: date | None = None  # the local day the series were last published on
    _published: dict[str, Message] = field(default_factory=dict)  # topic -> last state, for a reconnect
    on_import_published: Callable[[RateSeries], None] | None = None  # after each import series (the estimate)
    # What the stored rates become on the bus (Intelligent Go's dispatched half-hours at the off-peak rate).
    overlay: Callable[[str, list[Rate]], list[Rate]] | None = None

    def coverage_end(self) -> datetime | None:
        series = self.series.get("import")
        return series.valid_until if series else None

    def from_store(self, directions: list[str]) -> None:
        """Republish what is on disk, as it was: original fetch time and validity, ``source="store"``."""
        now = self.now()
        for direction in directions:
            stored = self.store.load(direction, self.window(now)[0])
            if stored is None:
                self.log.info("nothing stored to republish", direction=direction)
                continue
            series = self.publish_series(direction, stored.tariff_code, "store", stored.fetched_at)
            if series:
                self.log.info(
                    "stored prices republished",
                    direction=direction,
                    slots=len(series.rates),
                    fetched_at=_iso(stored.fetched_at),
                    valid_until=_iso(series.valid_until),
                )

    def publish_series(self, direction: str, code: str, source: str, fetched_at: datetime) -> RateSeries | None:
        now = self.now()
        stored = self.store.load(direction, self.window(now)[0])
        if stored is None or not stored.rates:
            return None
        rates = self.overlay(direction, stored.rates) if self.overlay else stored.rates
        series = RateSeries(
            generated_at=fetched_at,
            valid_until=stored.rates[-1].end,
            tariff_code=code,
            direction=direction,  # type: ignore[arg-type]
            source=source,
            fetched_at=fetched_at,
            rates=rates,
        )
        channel = IMPORT_RATES if direction == "import" else EXPORT_RATES
        with self.lock:
            self.series[direction] = series
            self.published_day = local_date(now, self.s.tz)
        self._publish(self.bus.topics.of(channel), series)
        if direction == "import" and self.on_import_published is not None:
            self.on_import_published(series)
        return series

    def republish_direction(self, direction: str) -> None:
        """Publish ``direction`` again from the store as it was (after the overlay changed)."""
        series = self.series.get(direction)
        if series is not None:
            self.publish_series(direction, series.tariff_code, series.source, series.fetched_at or self.now())

    def republish_if_new_day(self) -> None:
        """At a slot boundary on a new local day: the window starts at the new day's midnight."""
        now = self.now()
        if self.published_day is not None and local_date(now, self.s.tz) != self.published_day:
            for direction, series in list(self.series.items()):
                self.publish_series(direction, series.tariff_code, series.source, series.fetched_at or now)

    def current_rate(self, now: datetime) -> CurrentRate:
        start = slot_start(now)
        series = self.series.get("import")
        value = price_now(now, None, series)
        cheapest = None
        if series:
            upcoming = [r for r in series.rates if r.start >= start]
            cheapest = min(upcoming, key=lambda r: (r.value_inc_vat, r.start)) if upcoming else None
        return CurrentRate(
            generated_at=now,
            valid_until=start + SLOT,
            tariff_code=series.tariff_code if series else tariff_code(self.s.octopus_product, self.s.octopus_region),
            slot_start=start,
            slot_end=start + SLOT,
            known=value is not None,
            value_inc_vat=value,
            next_cheapest_start=cheapest.start if cheapest else None,
            next_cheapest_value_inc_vat=cheapest.value_inc_vat if cheapest else None,
        )

    def publish_current(self) -> None:
        self._publish(self.bus.topics.of(IMPORT_CURRENT), self.current_rate(self.now()))

    def _publish(self, topic: str, message: Message) -> None:
        with self.lock:
            self._published[topic] = message
        self.bus.publish_state(topic, message)

    def publish_state(self, topic: str, message: Message) -> None:
        """Another retained state of the service (the alert), kept for ``republish`` too."""
        self._publish(topic, message)

    def republish(self) -> None:
        """After a (re)connect: the broker may have lost retained state (restart without persistence)."""
        with self.lock:
            items = list(self._published.items())
        for topic, message in items:
            self.bus.publish_state(topic, message)


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None
