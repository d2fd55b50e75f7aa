"""Planner service: inputs in, a plan out (docs/architecture.md). Wiring only; logic in ``service``, ``optimiser``."""

from __future__ import annotations

from services.planner import dp_kernel
from services.planner.config import PlannerServiceSettings
from services.planner.service import PlannerService
from shared.ha import register_discovery
from shared.runner import ServiceContext, run_service
from shared.topics import (
    BATTERY_STATE,
    EXECUTOR_WINDOWS,
    EXPORT_RATES,
    FORECAST_LOAD,
    FORECAST_PV,
    IMPORT_ESTIMATE,
    IMPORT_RATES,
    PLANNER_REPLAN,
    PLANNER_SETTING_SET,
    PLANNER_SETTINGS,
    PRICING_SESSIONS,
)


def wire(ctx: ServiceContext[PlannerServiceSettings]) -> None:
    dp_kernel.warm_up(ctx.log)  # from numba's cache, or compiled now (seconds) rather than when the first plan is due
    svc = PlannerService(ctx)
    bus = ctx.bus
    bus.subscribe(IMPORT_RATES, svc.on_rates)
    bus.subscribe(EXPORT_RATES, svc.on_export_rates)
    bus.subscribe(IMPORT_ESTIMATE, svc.on_estimate)
    bus.subscribe(FORECAST_PV, svc.on_pv)
    bus.subscribe(FORECAST_LOAD, svc.on_load)
    bus.subscribe(BATTERY_STATE, svc.on_battery)
    bus.subscribe(EXECUTOR_WINDOWS, svc.on_windows)
    bus.subscribe(PRICING_SESSIONS, svc.on_sessions)
    for name in PLANNER_SETTINGS:
        bus.setting(PLANNER_SETTING_SET.at(setting=name), svc.setter(name))
    bus.command(PLANNER_REPLAN, svc.on_replan)
    bus.on_connect(svc.publish_settings)
    register_discovery(bus, svc.discovery)
    svc.debouncer.start()
    ctx.at_slot_boundaries(svc.at_boundary, name="replan")


if __name__ == "__main__":
    raise SystemExit(run_service("planner", PlannerServiceSettings, wire))
