"""The price estimate on the bus: ``pricing/import/estimate`` (retained), made again after every publication of
the import prices, from this tariff's own stored history (``estimate.py``; the bundled Agile history while fewer
than four weeks are stored) and, when configured, re-centred on AgilePredict's forecast if that is usable.

It is never a price: its own topic and model (``PriceEstimate``, ``is_estimate``), a Home Assistant entity named
as an estimate, and the executor never reads it. A failure here costs the estimate only: the prices are already
published, the last estimate stays retained, and the log says why.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from shared.ha import entity
from shared.models import Message, PriceEstimate, RateSeries
from shared.runner import ServiceContext
from shared.topics import IMPORT_ESTIMATE

from .agilepredict import AgilePredictClient, AgilePredictError, ExternalForecast, problem
from .config import PricingSettings
from .estimate import Days, EstimateParams, day_matrix, estimate, to_message, with_external
from .octopus import OctopusError, product_from_tariff
from .store import RateStore
from .tariffs import Kind, kind_of

LIBRARY_NAME = "the bundled Agile history (region J, 2021-2024)"


def bundled_library(tz: ZoneInfo) -> Days | None:
    """The Agile history that ships with batsched (``sim/data``) as delivery days: the cold-start analogs."""
    from sim.datasets import agile_price_arrays  # the data ships with the package; imported only when needed

    starts_s, values = agile_price_arrays()
    return day_matrix(starts_s, values, tz)


class EstimatePublisher:
    def __init__(
        self,
        ctx: ServiceContext[PricingSettings],
        store: RateStore,
        publish: Callable[[str, Message], None],
        params: EstimateParams = EstimateParams(),  # noqa: B008 - frozen
        library: Callable[[ZoneInfo], Days | None] = bundled_library,
        agilepredict: AgilePredictClient | None = None,
    ) -> None:
        s = ctx.settings
        self.ctx, self.s, self.log, self.store, self.publish = ctx, s, ctx.log, store, publish
        self.params = params
        self._library_loader = library
        self._library: Days | None = None
        self._library_loaded = False
        self.agilepredict = agilepredict
        if self.agilepredict is None and s.agilepredict_url:
            self.agilepredict = AgilePredictClient(s.agilepredict_url, timeout_s=s.http_timeout_s)
        self._external: ExternalForecast | None = None
        self._series: RateSeries | None = None
        self._lock = threading.Lock()  # the inputs
        self._refresh_lock = threading.Lock()  # one estimate at a time (price fetch and AgilePredict threads)
        self.last: PriceEstimate | None = None

    @property
    def enabled(self) -> bool:
        return self.s.price_estimate_hours > 0

    def wire(self) -> None:
        if self.enabled and self.agilepredict is not None:
            self.ctx.every(self.s.agilepredict_refresh_s, self.fetch_external, name="agilepredict")

    # ------------------------------------------------------------------ triggers

    def on_import_published(self, series: RateSeries) -> None:
        """After each publication of the import prices (fetched, or republished from the store)."""
        with self._lock:
            self._series = series
        self.refresh("prices published")

    def fetch_external(self) -> None:
        """AgilePredict's newest forecast (on its own timer); a new one makes a new estimate."""
        assert self.agilepredict is not None
        try:
            fc = self.agilepredict.fetch(self.s.octopus_region)
        except AgilePredictError as exc:
            self.log.warning("AgilePredict forecast not used; the learned estimate stands", reason=str(exc))
            return
        with self._lock:
            changed = self._external is None or fc.created_at != self._external.created_at
            self._external = fc
        if changed:
            self.refresh("AgilePredict forecast")

    def refresh(self, why: str) -> None:
        if not self.enabled:
            return
        with self._refresh_lock:  # inputs read inside: the later of two refreshes sees both inputs
            with self._lock:
                series, external = self._series, self._external
            if series is None:
                return
            try:
                msg = self.build(series, external, self.ctx.now())
            except Exception:  # the prices are out; only the estimate is lost, and the last one stays retained
                self.log.exception("price estimate failed; the last one stays")
                return
            if msg is None:
                return
            self.last = msg
            self.publish(self.ctx.topics.of(IMPORT_ESTIMATE), msg)
        self.log.info(
            "price estimate published",
            why=why,
            method=msg.method,
            start=msg.published_until.isoformat(),
            slots=len(msg.slots),
            learned_from=msg.learned_from,
        )

    # ------------------------------------------------------------------ the estimate

    def build(self, series: RateSeries, external: ExternalForecast | None, now: datetime) -> PriceEstimate | None:
        until = series.valid_until
        rows = self.store.history("import", series.tariff_code, until - timedelta(days=self.params.window_days + 3))
        starts = [t for t, _ in rows]
        values = np.array([v for _, v in rows], dtype=float)
        hours, tz = self.s.price_estimate_hours, self.s.tz
        est = estimate(starts, values, until, hours, tz, self.params) if rows else None
        if (est is None or est.own_days < self.params.min_days) and _is_agile(series.tariff_code):
            library = self._library_days()
            if library is not None:
                est = estimate(starts, values, until, hours, tz, self.params, library, LIBRARY_NAME)
        if est is None:
            self.log.info("too little price history for an estimate yet", stored_slots=len(rows))
            return None
        if external is not None:
            published = {r.start: r.value_inc_vat for r in series.rates}
            bounds = (self.s.price_min_gbp, self.s.price_max_gbp)
            age = timedelta(hours=self.s.agilepredict_max_age_h)
            why_not = problem(external, now, until, published, age, bounds)
            if why_not:
                self.log.warning("AgilePredict forecast not used; the learned estimate stands", reason=why_not)
            else:
                est = with_external(est, external.starts, external.median, external.low, external.high, "agilepredict")
        return to_message(est, series.tariff_code, now, until)

    def _library_days(self) -> Days | None:
        if not self._library_loaded:
            self._library_loaded = True
            try:
                self._library = self._library_loader(self.s.tz)
            except Exception as exc:  # an image without the bundled data: learn from the store alone
                self.log.warning("bundled price history unavailable for a cold start", error=str(exc))
        return self._library

    # ------------------------------------------------------------------ Home Assistant

    def discovery(self) -> list[tuple[str, dict[str, Any]]]:
        if not self.enabled:
            return []
        bus, topic = self.ctx.bus, IMPORT_ESTIMATE
        return [
            entity(
                bus,
                "sensor",
                "agile_price_estimate",
                "Price estimate, next day (not a published price)",
                topic,
                unit_of_measurement="GBP/kWh",
                # no state_class: an estimate is not a measurement, so it stays out of HA's long-term statistics
                suggested_display_precision=4,
                # the mean of the estimate's median over the 24 h after the published prices
                value_template=(
                    "{% set s = value_json.slots[:48] %}"
                    "{{ ((s | map(attribute='median_gbp') | sum) / (s | length)) | round(4) if s else None }}"
                ),
                json_attributes_topic=topic,
                json_attributes_template=(
                    '{"estimate": true, "method": {{ value_json.method | tojson }}, '
                    '"learned_from": {{ value_json.learned_from | tojson }}, '
                    '"starts_at": {{ value_json.published_until | tojson }}, '
                    '"next_slot_median_gbp": {{ value_json.slots[0].median_gbp | tojson }}, '
                    '"next_slot_low_gbp": {{ value_json.slots[0].low_gbp | tojson }}, '
                    '"next_slot_high_gbp": {{ value_json.slots[0].high_gbp | tojson }}}'
                ),
                icon="mdi:crystal-ball",
            )
        ]


def _is_agile(code: str) -> bool:
    """The bundled history is Agile's: another tariff learns from its own stored prices only."""
    try:
        return kind_of(product_from_tariff(code)) == Kind.AGILE
    except OctopusError:
        return True  # not an Octopus tariff code (tests, replays): as before
