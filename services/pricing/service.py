"""The pricing service: fetch Agile prices, validate them, keep them on disk and publish them on the bus.

Publishes (retained): ``pricing/import/rates`` and, when configured, ``pricing/export/rates`` (every known slot
from the start of the local day, ``valid_until`` = end of the last slot, gaps left out), ``pricing/import/current``
(at each slot boundary; ``known=false`` when the slot has no price, never 0) and ``pricing/alert``.
A fetch that fails, a batch that fails validation, or a store that refuses the write (disk full, read-only) changes
nothing that is published: the last good data stays, one log line and the alert say why, and the next fetch (on
the failure back-off) tries again. At start the stored rates are republished as they were (``source="store"``, their
original fetch time and validity) before any network call.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.bus import CommandError
from shared.clock import wait_until
from shared.cooldown import Cooldown
from shared.ha import entity, register_discovery
from shared.models import Command, CurrentRate, Message, PricingAlert, RateSeries
from shared.prices import price_now
from shared.runner import ServiceContext
from shared.slots import SLOT, local_date, local_midnight, next_slot_boundary, parse_hhmm, slot_start
from shared.topics import PRICING_REFRESH

from .config import PricingSettings
from .octopus import OctopusClient, OctopusError, Tariff, tariff_code
from .schedule import Timetable, has_tomorrow, next_delay, today_incomplete, tomorrow_overdue, wants_tomorrow
from .store import RateStore, StoreError
from .validation import BatchRejected, Bounds, validate_rates

KEEP_DAYS = 60  # stored history beyond the published window


@dataclass
class _Problem:
    code: str  # fetch_failing | validation_failed | store_failing
    message: str


class PricingService:
    def __init__(
        self, ctx: ServiceContext[PricingSettings], client: OctopusClient | None = None, store: RateStore | None = None
    ) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.s = s
        self.log = ctx.log
        self.client = client or OctopusClient(
            s.octopus_base_url,
            timeout_s=s.http_timeout_s,
            attempts=s.http_attempts,
            backoff_s=s.http_backoff_s,
            api_key=s.octopus_api_key.get_secret_value() if s.octopus_api_key else None,
            stop=ctx.stop,
        )
        self.store = store or RateStore(ctx.data_path("pricing.db"))
        self.refresh_cooldown = Cooldown(ctx.clock, s.price_refresh_cooldown_s)
        self.timetable = Timetable(
            tz=s.tz,
            poll_from=parse_hhmm(s.poll_from_local),
            late_after=parse_hhmm(s.late_after_local),
            refresh_s=s.refresh_interval_s,
            poll_s=s.poll_interval_s,
            max_s=s.poll_max_interval_s,
        )
        self.directions = ["import"] + (["export"] if s.octopus_export_product else [])
        self._fetch_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._alert_lock = threading.Lock()
        self._attempted = False  # no alert before the first fetch has had its chance
        self._tariffs: dict[str, Tariff] = {}
        self._series: dict[str, RateSeries] = {}
        self._published: dict[str, Message] = {}  # topic -> last state, republished after a reconnect
        self._published_day = None
        self._problem: _Problem | None = None
        self._alert: PricingAlert | None = None
        self._failures = 0
        self._polls_without_news = 0
        self._started = False
        self.next_fetch_at: datetime | None = None
        self._rng = random.Random()

    # ------------------------------------------------------------------ wiring helpers

    def wire(self) -> None:
        ctx = self.ctx
        ctx.bus.command(PRICING_REFRESH, self.on_refresh)
        ctx.bus.on_connect(self._republish)
        register_discovery(ctx.bus, self.discovery)
        # Each task is a loop on absolute instants of the injected clock (``every`` restarts it if it ever ends).
        ctx.every(1.0, self.fetch_loop, name="fetch")
        ctx.every(1.0, self.slot_loop, name="current")
        ctx.on_stop(self.store.close)

    # ------------------------------------------------------------------ schedule

    def fetch_loop(self) -> None:
        """Fetch at start (after republishing what is stored), then whenever ``next_delay`` says."""
        stop, clock = self.ctx.stop, self.ctx.clock
        if not self._started:
            self._started = True
            self.ctx.bus.wait_connected(10)
            self._guarded(self.publish_from_store, "republish")
        while not stop.is_set():
            started = clock.now()
            self._guarded(lambda: self.fetch("schedule"), "fetch")
            due = started + timedelta(seconds=self.next_delay(started))
            self.next_fetch_at = due
            self.log.debug("next fetch", at=_iso(due))
            if wait_until(clock, due, stop, since=started):  # a step during the fetch counts too
                return

    def slot_loop(self) -> None:
        """Publish the current price at every slot boundary (once, even when the clock jumps several slots)."""
        stop, clock = self.ctx.stop, self.ctx.clock
        now = clock.now()
        due = next_slot_boundary(now)
        while not wait_until(clock, due, stop, since=now):
            self._guarded(self.on_slot_boundary, "slot boundary")
            now = clock.now()
            # Woken before ``due``: the wall clock stepped back past it; the next boundary is the new time's.
            due = next_slot_boundary(now) if now < due else max(due + SLOT, slot_start(now))

    def _guarded(self, fn: Any, what: str) -> None:
        try:
            fn()
        except Exception:
            self.log.exception("task failed; carrying on", task=what)

    def next_delay(self, now: datetime) -> float:
        return next_delay(now, self.coverage_end(), self.timetable, self._failures, self._polls_without_news, self._rng)

    def on_slot_boundary(self) -> None:
        now = self.ctx.now()
        if self._published_day is not None and local_date(now, self.s.tz) != self._published_day:
            for direction, series in list(self._series.items()):
                self._publish_series(direction, series.tariff_code, series.source, series.fetched_at or now)
        self.publish_current()
        self._update_alert()

    def on_refresh(self, cmd: Command) -> dict[str, Any]:
        self.refresh_cooldown.refuse_early("prices", self.log, cmd.request_id)
        self.log.info("refresh requested", request_id=cmd.request_id, reason=cmd.reason)
        error = self.fetch("command")
        if error:
            raise CommandError(error)
        series = self._series.get("import")
        return {
            "slots": len(series.rates) if series else 0,
            "valid_until": series.valid_until.isoformat() if series else None,
            "has_tomorrow": has_tomorrow(self.ctx.now(), self.coverage_end(), self.timetable),
        }

    # ------------------------------------------------------------------ fetching

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """``[start of today (minus history) , midnight after tomorrow)`` in UTC."""
        today = local_date(now, self.s.tz)
        return (
            local_midnight(today - timedelta(days=self.s.history_days), self.s.tz),
            local_midnight(today + timedelta(days=2), self.s.tz),
        )

    def fetch(self, why: str) -> str | None:
        """Fetch, validate, store and publish every configured direction. Returns an error text or None."""
        with self._fetch_lock:
            now = self.ctx.now()
            before = self.coverage_end()
            errors: list[str] = []
            problem: _Problem | None = None
            for direction in self.directions:
                try:
                    self._fetch_direction(direction, now)
                except OctopusError as exc:
                    msg = f"{direction} prices: Octopus request failed: {exc}"
                    self.log.error("fetch failed; keeping the last good prices", direction=direction, error=str(exc))
                    errors.append(msg)
                    problem = problem or _Problem("fetch_failing", msg)
                except BatchRejected as exc:
                    msg = f"{direction} prices rejected: {exc}"
                    self.log.error("batch rejected; keeping the last good prices", direction=direction, reason=str(exc))
                    errors.append(msg)
                    problem = _Problem("validation_failed", msg)
                except StoreError as exc:
                    msg = f"{direction} prices fetched but not saved: {exc}"
                    self.log.error(
                        "cannot save prices; keeping the last good prices",
                        direction=direction,
                        error=str(exc),
                        data_dir=str(self.s.data_dir),
                    )
                    errors.append(msg)
                    problem = problem or _Problem("store_failing", msg)
                except Exception as exc:  # a bug or a full disk: same safe outcome, nothing new published
                    msg = f"{direction} prices: internal error {type(exc).__name__}: {exc}"
                    self.log.exception("fetch crashed; keeping the last good prices", direction=direction)
                    errors.append(msg)
                    problem = problem or _Problem("fetch_failing", msg)
            self._problem = problem
            self._attempted = True
            self._failures = self._failures + 1 if errors else 0
            if not errors:
                got_news = self.coverage_end() != before
                waiting = wants_tomorrow(now, self.timetable) and not has_tomorrow(
                    now, self.coverage_end(), self.timetable
                )
                self._polls_without_news = self._polls_without_news + 1 if waiting and not got_news else 0
            self.publish_current()
            self._update_alert()
            self.log.info("fetch done", why=why, ok=not errors, coverage_until=_iso(self.coverage_end()))
            return "; ".join(errors) or None

    def _fetch_direction(self, direction: str, now: datetime) -> None:
        tariff = self._tariff(direction, now)
        start, end = self.window(now)
        rows = self.client.unit_rates(tariff.product, tariff.code, start, end)
        bounds = Bounds(
            min_gbp=self.s.price_min_gbp,
            max_gbp=self.s.price_max_gbp,
            vat_included=direction == "import",
        )
        checked = validate_rates(rows, bounds)
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
        self._publish_series(direction, tariff.code, "octopus", now)
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
            self.log.info("tariff discovered", direction=direction, product=found.product, tariff=found.code)
        else:
            found = Tariff(product, tariff_code(product, self.s.octopus_region), direction)
        self._tariffs[direction] = found
        return found

    # ------------------------------------------------------------------ publishing

    def coverage_end(self) -> datetime | None:
        series = self._series.get("import")
        return series.valid_until if series else None

    def publish_from_store(self) -> None:
        """Republish what is on disk, as it was: original fetch time and validity, ``source="store"``."""
        now = self.ctx.now()
        for direction in self.directions:
            stored = self.store.load(direction, self.window(now)[0])
            if stored is None:
                self.log.info("nothing stored to republish", direction=direction)
                continue
            series = self._publish_series(direction, stored.tariff_code, "store", stored.fetched_at)
            if series:
                self.log.info(
                    "stored prices republished",
                    direction=direction,
                    slots=len(series.rates),
                    fetched_at=_iso(stored.fetched_at),
                    valid_until=_iso(series.valid_until),
                )
        self.publish_current()
        self._update_alert()

    def _publish_series(self, direction: str, code: str, source: str, fetched_at: datetime) -> RateSeries | None:
        now = self.ctx.now()
        stored = self.store.load(direction, self.window(now)[0])
        if stored is None or not stored.rates:
            return None
        series = RateSeries(
            generated_at=fetched_at,
            valid_until=stored.rates[-1].end,
            tariff_code=code,
            direction=direction,  # type: ignore[arg-type]
            source=source,
            fetched_at=fetched_at,
            rates=stored.rates,
        )
        topic = self.ctx.topics.import_rates if direction == "import" else self.ctx.topics.export_rates
        with self._state_lock:
            self._series[direction] = series
            self._published_day = local_date(now, self.s.tz)
        self._publish(topic, series)
        return series

    def current_rate(self, now: datetime) -> CurrentRate:
        start = slot_start(now)
        series = self._series.get("import")
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
        current = self.current_rate(self.ctx.now())
        self._publish(self.ctx.topics.import_current, current)

    def _update_alert(self) -> None:
        with self._alert_lock:
            if self._attempted:
                self._evaluate_alert()

    def _evaluate_alert(self) -> None:
        now = self.ctx.now()
        coverage = self.coverage_end()
        until = f"known until {_local(coverage, self.s.tz)}" if coverage else "no prices known"
        if tomorrow_overdue(now, coverage, self.timetable):
            code, message = "prices_late", f"tomorrow's prices are not published yet ({until})"
        elif self._problem:
            code, message = self._problem.code, self._problem.message
        elif today_incomplete(now, coverage, self.timetable):
            code, message = "prices_late", f"today's prices are incomplete ({until})"
        else:
            code, message = "ok", f"prices {until}"
        if self._problem and code == "prices_late":
            message += f"; last fetch: {self._problem.message}"
        prev = self._alert
        if prev and prev.code == code and prev.message == message:
            return
        since = prev.since if prev and prev.code == code else now
        self._alert = PricingAlert(generated_at=now, code=code, message=message, since=since)  # type: ignore[arg-type]
        if code != "ok":
            self.log.warning("pricing alert", code=code, message=message)
        elif prev and prev.code != "ok":
            self.log.info("pricing alert resolved", message=message)
        self._publish(self.ctx.topics.pricing_alert, self._alert)

    def _publish(self, topic: str, message: Message) -> None:
        with self._state_lock:
            self._published[topic] = message
        self.ctx.bus.publish_state(topic, message)

    def _republish(self) -> None:
        """After a (re)connect: the broker may have lost retained state (restart without persistence)."""
        with self._state_lock:
            items = list(self._published.items())
        for topic, message in items:
            self.ctx.bus.publish_state(topic, message)

    # ------------------------------------------------------------------ Home Assistant

    def discovery(self) -> list[tuple[str, dict[str, Any]]]:
        bus, topics = self.ctx.bus, self.ctx.topics
        return [
            entity(
                bus,
                "sensor",
                "agile_price_now",
                "Agile price now",
                topics.import_current,
                unit_of_measurement="GBP/kWh",
                state_class="measurement",
                suggested_display_precision=4,
                value_template="{{ value_json.value_inc_vat if value_json.known else None }}",
                json_attributes_topic=topics.import_current,
                icon="mdi:currency-gbp",
            ),
            entity(
                bus,
                "sensor",
                "agile_next_cheapest_slot",
                "Next cheapest Agile slot",
                topics.import_current,
                device_class="timestamp",
                value_template="{{ value_json.next_cheapest_start or None }}",
                json_attributes_topic=topics.import_current,
                json_attributes_template=(
                    '{"price_gbp_per_kwh": {{ value_json.next_cheapest_value_inc_vat | tojson }}}'
                ),
                icon="mdi:clock-start",
            ),
        ]


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def _local(t: datetime, tz: Any) -> str:
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")
