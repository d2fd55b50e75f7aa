"""Forecast service wiring: ``python -m services.forecast``."""

from __future__ import annotations

from services.forecast.config import ForecastSettings
from services.forecast.openmeteo_client import OpenMeteoClient, make_session
from services.forecast.service import ForecastService
from services.forecast.store import ForecastStore
from shared.ha import register_discovery
from shared.runner import ServiceContext, run_service
from shared.topics import BATTERY_STATE, FORECAST_REFRESH


def wire(ctx: ServiceContext[ForecastSettings]) -> None:
    s = ctx.settings
    store = ForecastStore(ctx.data_path("forecast.db"))
    session = make_session(
        s.openmeteo_cache, ctx.data_path("openmeteo_cache.sqlite"), s.cache_expire_s, s.openmeteo_retries
    )
    client = OpenMeteoClient(s.openmeteo_url, session, s.openmeteo_timeout_s, s.openmeteo_resolution, s.forecast_days)
    service = ForecastService(s, ctx.clock, ctx.bus, store, client, ctx.log)

    ctx.bus.on_connect(service.republish)
    ctx.bus.subscribe(BATTERY_STATE, service.on_battery_state)
    ctx.bus.command(FORECAST_REFRESH, service.on_refresh)
    register_discovery(ctx.bus, service.discovery)
    ctx.at_slot_boundaries(service.refresh_load, name="load")
    ctx.every(service.pv_interval, service.refresh_pv, name="pv")
    ctx.on_stop(store.close)


if __name__ == "__main__":
    raise SystemExit(run_service("forecast", ForecastSettings, wire))
