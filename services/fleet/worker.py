"""One fleet planner process: caches every home's state, plans the homes whose new prices the shared subscription
hands to it, and publishes each plan on that home's own ``planner/plan`` topic.

Each home is planned by ``services.planner.home.plan_home``, the single home's entry point (price history, the price
estimate, manual windows and Octopus sessions included)."""

from __future__ import annotations

import threading
import time
from typing import Any

from services.fleet.cache import FleetCache, site_of
from services.fleet.config import FleetSettings
from services.planner.home import initial_settings, plan_home
from services.planner.service import planner_config
from shared.bus import Bus, Incoming, Route
from shared.clock import Clock
from shared.models import Command, FleetStats, RateSeries
from shared.topics import (
    BATTERY_STATE,
    EXECUTOR_WINDOWS,
    EXPORT_RATES,
    FLEET_STATS,
    FLEET_SYNC,
    FORECAST_LOAD,
    FORECAST_PV,
    IMPORT_ESTIMATE,
    IMPORT_RATES,
    PLANNER_SETTING,
    PLANNER_SETTINGS,
    PRICING_SESSIONS,
    Channel,
    Topics,
    across_homes,
)

STATE_INPUTS: dict[str, Channel] = {
    "battery": BATTERY_STATE,
    "pv": FORECAST_PV,
    "load": FORECAST_LOAD,
    "export_rates": EXPORT_RATES,
    "estimate": IMPORT_ESTIMATE,
    "windows": EXECUTOR_WINDOWS,
    "sessions": PRICING_SESSIONS,
}


class FleetPlanner:
    def __init__(self, settings: FleetSettings, clock: Clock, bus: Bus, log: Any) -> None:
        self.s = settings
        self.root = settings.fleet_root
        self.fleet_topics = Topics(self.root)
        self.clock = clock
        self.bus = bus
        self.log = log
        self.cache = FleetCache(initial_settings(settings))
        self.config = planner_config(settings)
        self._lock = threading.Lock()
        self.planned = 0
        self.plan_ms_total = 0.0
        self.failed = 0

    # ------------------------------------------------------------------ topics

    def state_routes(self) -> dict[str, Route]:
        """Not shared: every process sees every home's state."""
        out = {attr: across_homes(self.root, channel) for attr, channel in STATE_INPUTS.items()}
        for name in PLANNER_SETTINGS:
            out[f"setting:{name}"] = across_homes(self.root, PLANNER_SETTING.at(setting=name))
        return out

    @property
    def work_route(self) -> Route:
        """Shared: each home's new import prices go to exactly one process of the group."""
        return across_homes(self.root, IMPORT_RATES, share_group=self.s.fleet_group)

    @property
    def sync_topic(self) -> str:
        return self.fleet_topics.of(FLEET_SYNC)

    @property
    def stats_topic(self) -> str:
        return self.fleet_topics.of(FLEET_STATS, worker=self.s.fleet_worker)

    # ------------------------------------------------------------------ handlers

    def on_state(self, attr: str) -> Any:
        def handle(msg: Incoming[Any]) -> None:
            site = site_of(msg.topic, self.root)
            if site is None:
                return
            if attr.startswith("setting:"):
                if msg.payload and not self.cache.set_setting(site, attr.split(":", 1)[1], msg.text):
                    self.log.warning("home setting ignored", site=site, topic=msg.topic, payload=msg.text[:40])
                return
            self.cache.set(site, attr, msg.model, self.clock.now())

        return handle

    def on_rates(self, msg: Incoming[RateSeries]) -> None:
        site = site_of(msg.topic, self.root)
        if site is None:
            return
        self.cache.set(site, "rates", msg.model, self.clock.now())
        if msg.model is not None:
            self.plan_home(site)

    def plan_home(self, site: str) -> None:
        home = self.cache.home(site)
        t0 = time.perf_counter()
        try:
            p = plan_home(home, home.settings, self.clock.now(), self.config)
        except Exception:
            with self._lock:
                self.failed += 1
            self.log.exception("planning failed for a home", site=site)
            return
        ms = (time.perf_counter() - t0) * 1000
        with self._lock:
            self.planned += 1
            self.plan_ms_total += ms
        self.bus.publish_state(Topics(f"{self.root}/{site}").plan, p)

    def stats(self) -> FleetStats:
        with self._lock:
            planned, ms, failed = self.planned, self.plan_ms_total, self.failed
        return FleetStats(
            generated_at=self.clock.now(),
            worker=self.s.fleet_worker,
            homes=len(self.cache),
            homes_with_battery=self.cache.known("battery"),
            planned=planned,
            failed=failed,
            mean_plan_ms=round(ms / planned, 2) if planned else None,
        )

    def on_sync(self, _cmd: Command) -> dict[str, Any]:
        """Answered after every message queued before it (one worker thread): a barrier for benchmarks."""
        return self.stats().model_dump(mode="json", exclude={"schema_version", "generated_at"})

    def publish_stats(self) -> None:
        self.bus.publish(self.stats_topic, self.stats())
