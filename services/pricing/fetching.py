"""Fetching: ask Octopus for every configured direction, validate, store, and hand the new series to publishing.

A fetch that fails, a batch that fails validation, or a store that refuses the write (disk full, read-only)
changes nothing that is published: the last good data stays, one log line says why, and the outcome's ``problem``
goes to the alert. Tariffs (``auto``: discovered from the products list, or the account's) are looked up once.
Every Octopus tariff kind (Agile, Go, Intelligent Go, Flux, Cosy, Tracker, fixed) comes in as rows of any length
and goes out as half-hours (``tariffs.half_hour_rows``), so what is stored and published has one shape.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .config import PricingSettings
from .estimate import EstimateParams
from .octopus import OctopusClient, OctopusError, Tariff, tariff_code
from .store import RateStore, StoreError
from .tariffs import RowsRejected, half_hour_rows, kind_of
from .validation import BatchRejected, Bounds, validate_rates

KEEP_DAYS = EstimateParams.window_days + 10  # stored history beyond the published window: the estimate learns from it


@dataclass
class Problem:
    code: str  # fetch_failing | validation_failed | store_failing
    message: str


@dataclass
class FetchOutcome:
    errors: list[str] = field(default_factory=list)
    problem: Problem | None = None


@dataclass
class Fetcher:
    s: PricingSettings
    client: OctopusClient
    store: RateStore
    window: Callable[[datetime], tuple[datetime, datetime]]
    published: Callable[[str, str, str, datetime], Any]  # (direction, tariff code, source, fetched_at)
    log: Any
    lock: threading.Lock = field(default_factory=threading.Lock)  # one fetch at a time (schedule, command)
    _tariffs: dict[str, Tariff] = field(default_factory=dict)

    @property
    def directions(self) -> list[str]:
        return ["import"] + (["export"] if self.s.octopus_export_product else [])

    def fetch_all(self, now: datetime) -> FetchOutcome:
        """Fetch, validate, store and publish every configured direction (the caller holds ``lock``)."""
        out = FetchOutcome()
        for direction in self.directions:
            try:
                self._fetch_direction(direction, now)
            except OctopusError as exc:
                msg = f"{direction} prices: Octopus request failed: {exc}"
                self.log.error("fetch failed; keeping the last good prices", direction=direction, error=str(exc))
                out.errors.append(msg)
                out.problem = out.problem or Problem("fetch_failing", msg)
            except BatchRejected as exc:
                msg = f"{direction} prices rejected: {exc}"
                self.log.error("batch rejected; keeping the last good prices", direction=direction, reason=str(exc))
                out.errors.append(msg)
                out.problem = Problem("validation_failed", msg)
            except StoreError as exc:
                msg = f"{direction} prices fetched but not saved: {exc}"
                self.log.error(
                    "cannot save prices; keeping the last good prices",
                    direction=direction,
                    error=str(exc),
                    data_dir=str(self.s.data_dir),
                )
                out.errors.append(msg)
                out.problem = out.problem or Problem("store_failing", msg)
            except Exception as exc:  # a bug or a full disk: same safe outcome, nothing new published
                msg = f"{direction} prices: internal error {type(exc).__name__}: {exc}"
                self.log.exception("fetch crashed; keeping the last good prices", direction=direction)
                out.errors.append(msg)
                out.problem = out.problem or Problem("fetch_failing", msg)
        return out

    def tariff(self, direction: str) -> Tariff | None:
        """The tariff in use for ``direction`` once known (after the first fetch)."""
        return self._tariffs.get(direction)

    def _fetch_direction(self, direction: str, now: datetime) -> None:
        tariff = self._tariff(direction, now)
        start, end = self.window(now)
        rows = self.client.unit_rates(tariff.product, tariff.code, start, end)
        bounds = Bounds(
            min_gbp=self.s.price_min_gbp,
            max_gbp=self.s.price_max_gbp,
            vat_included=direction == "import",
        )
        try:
            expanded = half_hour_rows(rows, start, end)
        except RowsRejected as exc:
            raise BatchRejected(str(exc)) from None
        checked = validate_rates(expanded.rows, bounds)
        if checked.duplicates_dropped:
            self.log.warning("duplicate slots dropped (same price)", direction=direction, n=checked.duplicates_dropped)
        if checked.gaps:
            self.log.warning(
                "slots missing from Octopus; published as gaps",
                direction=direction,
                n=len(checked.gaps),
                first=_iso(checked.gaps[0]),
            )
        if not checked.rates:
            self.log.warning("Octopus returned no prices for the window", direction=direction, start=_iso(start))
            return
        self.store.save(direction, tariff.code, now, checked.rates)
        self.published(direction, tariff.code, "octopus", now)
        try:
            self.store.prune(start - timedelta(days=KEEP_DAYS))
        except StoreError as exc:  # housekeeping: the new prices are saved and published
            self.log.warning("old prices not pruned", error=str(exc))

    def _tariff(self, direction: str, now: datetime) -> Tariff:
        if direction in self._tariffs:
            return self._tariffs[direction]
        product = self.s.octopus_product if direction == "import" else self.s.octopus_export_product
        assert product
        if product.lower() == "auto":
            found = None
            if self.s.octopus_account and self.s.octopus_api_key:
                found = self.client.account_tariffs(self.s.octopus_account, now).get(direction)
            if found is None:
                code = self.client.discover_product(direction, now)
                found = Tariff(code, tariff_code(code, self.s.octopus_region), direction)
            self.log.info(
                "tariff discovered",
                direction=direction,
                product=found.product,
                tariff=found.code,
                kind=kind_of(found.product).value,
            )
        else:
            found = Tariff(product, tariff_code(product, self.s.octopus_region), direction)
            self.log.info("tariff", direction=direction, tariff=found.code, kind=kind_of(product).value)
        self._tariffs[direction] = found
        return found


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None
