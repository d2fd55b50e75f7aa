"""Planner service: inputs in, a plan out (architecture §3). Wiring only; logic in ``service`` and ``optimiser``."""

from __future__ import annotations

from services.planner import dp_kernel
from services.planner.config import PlannerServiceSettings
from services.planner.service import PlannerService
from shared.ha import register_discovery
from shared.models import BatteryState, EnergyForecast, PriceEstimate, RateSeries, SessionList, WindowList
from shared.runner import ServiceContext, run_service
from shared.topics import PLANNER_SETTINGS


def wire(ctx: ServiceContext[PlannerServiceSettings]) -> None:
    dp_kernel.warm_up(ctx.log)  # from numba's cache, or compiled now (seconds) rather than when the first plan is due
    svc = PlannerService(ctx)
    t, bus = ctx.topics, ctx.bus
    bus.subscribe(t.import_rates, svc.on_rates, RateSeries)
    bus.subscribe(t.export_rates, svc.on_export_rates, RateSeries)
    bus.subscribe(t.import_estimate, svc.on_estimate, PriceEstimate)
    bus.subscribe(t.forecast_pv, svc.on_pv, EnergyForecast)
    bus.subscribe(t.forecast_load, svc.on_load, EnergyForecast)
    bus.subscribe(t.battery_state, svc.on_battery, BatteryState)
    bus.subscribe(t.executor_windows, svc.on_windows, WindowList)
    bus.subscribe(t.pricing_sessions, svc.on_sessions, SessionList)
    for name in PLANNER_SETTINGS:
        bus.setting(t.planner_setting_set(name), svc.setter(name))
    bus.command(t.planner_replan, svc.on_replan)
    bus.on_connect(svc.publish_settings)
    register_discovery(bus, svc.discovery)
    svc.debouncer.start()
    ctx.at_slot_boundaries(svc.at_boundary, name="replan")


if __name__ == "__main__":
    raise SystemExit(run_service("planner", PlannerServiceSettings, wire))
