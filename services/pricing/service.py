"""The pricing service: fetch the tariff's prices, validate them, keep them on disk and publish them on the bus.

Split by concern, each part its own module: ``scheduling`` (the two loops and the fetch back-off), ``fetching``
(Octopus → validation → store), ``publishing`` (the retained series and the price now, always from the store),
``alerts`` (``pricing/alert``) and ``discovery`` (Home Assistant). This class builds them, wires them to the bus
and answers the refresh command.

Publishes (retained): ``pricing/import/rates`` and, when configured, ``pricing/export/rates``,
``pricing/import/current`` (at each slot boundary), ``pricing/alert`` and, after each publication of the import
prices, the price estimate beyond them (``estimate_publisher``: never a price). A fetch that fails, a batch that fails
validation, or a store that refuses the write changes nothing that is published: the last good data stays, one
log line and the alert say why, and the next fetch (on the failure back-off) tries again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from shared.bus import CommandError
from shared.cooldown import Cooldown
from shared.ha import register_discovery
from shared.models import Command, PricingAlert, Rate
from shared.runner import ServiceContext
from shared.slots import local_date, local_midnight, parse_hhmm
from shared.topics import PRICING_ALERT, PRICING_REFRESH

from .alerts import Alerts
from .config import PricingSettings
from .discovery import discovery
from .dispatches import DispatchWatcher, with_dispatches
from .estimate_publisher import EstimatePublisher
from .fetching import Fetcher, Problem
from .octopus import OctopusClient
from .publishing import Publisher
from .schedule import Timetable, has_tomorrow
from .scheduling import Scheduler
from .sessions import GraphQLClient
from .store import RateStore
from .tariffs import Kind, kind_of


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
        self.publisher = Publisher(s, ctx.bus, self.store, ctx.now, self.window, ctx.log)
        self.fetcher = Fetcher(s, self.client, self.store, self.window, self.publisher.publish_series, ctx.log)
        self.alerts = Alerts(self.timetable, self._publish_alert, ctx.log)
        self.scheduler = Scheduler(
            ctx, self.timetable, self.publisher.coverage_end, self.publish_from_store, self.fetch, self.on_slot_boundary
        )
        self.estimate = EstimatePublisher(ctx, self.store, self.publisher.publish_state)
        self.publisher.on_import_published = self.estimate.on_import_published
        key = s.octopus_api_key.get_secret_value() if s.octopus_api_key else None
        graphql = GraphQLClient(s.graphql_url, key, s.http_timeout_s) if key and s.octopus_account else None
        self.dispatches = DispatchWatcher(graphql, s.octopus_account, ctx.now, self._dispatches_changed, ctx.log)
        self.publisher.overlay = self._overlay
        self._problem: Problem | None = None
        self._attempted = False  # no alert before the first fetch has had its chance

    def wire(self) -> None:
        ctx, s = self.ctx, self.s
        ctx.bus.command(PRICING_REFRESH, self.on_refresh)
        ctx.bus.on_connect(self.publisher.republish)
        register_discovery(ctx.bus, lambda: [*discovery(ctx.bus), *self.estimate.discovery()])
        # Each task is a loop on absolute instants of the injected clock (``every`` restarts it if it ever ends).
        ctx.every(1.0, self.scheduler.fetch_loop, name="fetch")
        ctx.every(1.0, self.scheduler.slot_loop, name="current")
        if self.dispatches.enabled:
            ctx.every(s.dispatch_refresh_s, self._read_dispatches, name="dispatches")
        ctx.on_stop(self.store.close)
        self.estimate.wire()

    @property
    def next_fetch_at(self) -> datetime | None:
        return self.scheduler.next_fetch_at

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        """``[start of today (minus history) , midnight after tomorrow)`` in UTC."""
        today = local_date(now, self.s.tz)
        return (
            local_midnight(today - timedelta(days=self.s.history_days), self.s.tz),
            local_midnight(today + timedelta(days=2), self.s.tz),
        )

    # ------------------------------------------------------------------ Intelligent Octopus Go's dispatches

    def intelligent_go(self) -> bool:
        tariff = self.fetcher.tariff("import")
        return tariff is not None and kind_of(tariff.product) == Kind.INTELLIGENT_GO

    def _read_dispatches(self) -> None:
        if self.intelligent_go():  # the tariff is known after the first fetch (``auto``: from the account)
            self.dispatches.refresh()

    def _overlay(self, direction: str, rates: list[Rate]) -> list[Rate]:
        if direction != "import" or not self.intelligent_go():
            return rates
        return with_dispatches(rates, self.dispatches.current())[0]

    def _dispatches_changed(self) -> None:
        with self.fetcher.lock:
            self.publisher.republish_direction("import")
            self.publisher.publish_current()

    # ------------------------------------------------------------------ what the loops and the command do

    def publish_from_store(self) -> None:
        self.publisher.from_store(self.fetcher.directions)
        self.publisher.publish_current()
        self._update_alert()

    def fetch(self, why: str) -> str | None:
        """Fetch, validate, store and publish every configured direction. Returns an error text or None."""
        with self.fetcher.lock:
            now = self.ctx.now()
            before = self.publisher.coverage_end()
            outcome = self.fetcher.fetch_all(now)
            self._problem = outcome.problem
            self._attempted = True
            self.scheduler.record(now, not outcome.errors, before)
            self.publisher.publish_current()
            self._update_alert()
            end = self.publisher.coverage_end()
            self.log.info("fetch done", why=why, ok=not outcome.errors, coverage_until=end.isoformat() if end else None)
        if self.dispatches.enabled and not self.dispatches.attempted:
            self._read_dispatches()  # the tariff is known now: Intelligent Go's dispatches at once, not in minutes
        return "; ".join(outcome.errors) or None

    def on_slot_boundary(self) -> None:
        self.publisher.republish_if_new_day()
        self.publisher.publish_current()
        self._update_alert()

    def on_refresh(self, cmd: Command) -> dict[str, Any]:
        self.refresh_cooldown.refuse_early("prices", self.log, cmd.request_id)
        self.log.info("refresh requested", request_id=cmd.request_id, reason=cmd.reason)
        error = self.fetch("command")
        if error:
            raise CommandError(error)
        series = self.publisher.series.get("import")
        return {
            "slots": len(series.rates) if series else 0,
            "valid_until": series.valid_until.isoformat() if series else None,
            "has_tomorrow": has_tomorrow(self.ctx.now(), self.publisher.coverage_end(), self.timetable),
        }

    def _update_alert(self) -> None:
        self.alerts.update(self.ctx.now(), self.publisher.coverage_end(), self._problem, self._attempted)

    def _publish_alert(self, alert: PricingAlert) -> None:
        self.publisher.publish_state(self.ctx.bus.topics.of(PRICING_ALERT), alert)
