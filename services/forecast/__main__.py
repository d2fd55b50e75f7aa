"""Forecast service wiring: ``python -m services.forecast``."""

from __future__ import annotations

import sys

from services.forecast.config import ForecastSettings
from services.forecast.openmeteo_client import OpenMeteoClient, make_session
from services.forecast.postcode import CACHE_FILE, PostcodeLookup, PvLocation, UnknownPostcode
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
    location = PvLocation(s, PostcodeLookup(s.postcode_url, ctx.data_path(CACHE_FILE), s.openmeteo_timeout_s), ctx.log)
    try:
        location.start()
    except UnknownPostcode as exc:
        source = s.seed_resolution.sources.get("postcode")
        print(
            f"batsched-forecast: configuration error: unknown postcode {exc} ({source or 'BATSCHED_POSTCODE'}, "
            f"looked up at {s.postcode_url}): correct it, or set "
            "BATSCHED_PV_LATITUDE and BATSCHED_PV_LONGITUDE (or BATSCHED_PV_ARRAYS with them)",
            file=sys.stderr,
        )
        raise SystemExit(2) from None
    service = ForecastService(
        s, ctx.clock, ctx.bus, store, client, ctx.log, arrays=lambda: location.arrays if location.ready() else None
    )

    ctx.bus.on_connect(service.republish)
    ctx.bus.subscribe(BATTERY_STATE, service.on_battery_state)
    ctx.bus.command(FORECAST_REFRESH, service.on_refresh)
    register_discovery(ctx.bus, service.discovery)
    ctx.at_slot_boundaries(service.refresh_load, name="load")
    ctx.every(service.pv_interval, service.refresh_pv, name="pv")
    ctx.on_stop(store.close)


if __name__ == "__main__":
    raise SystemExit(run_service("forecast", ForecastSettings, wire))
