"""``python -m services.fleet``: one planner process of a fleet group (run one or more; see docs/fleet.md)."""

from __future__ import annotations

from services.fleet.config import FleetSettings
from services.fleet.worker import FleetPlanner
from services.planner import dp_kernel
from shared.runner import ServiceContext, run_service
from shared.settings import load_settings


def wire(ctx: ServiceContext[FleetSettings]) -> None:
    dp_kernel.warm_up(ctx.log)  # before any home's prices can arrive: no plan waits for the compiler
    fleet = FleetPlanner(ctx.settings, ctx.clock, ctx.bus, ctx.log)
    for attr, route in fleet.state_routes().items():
        ctx.bus.listen(route, fleet.on_state(attr))
    ctx.bus.listen(fleet.work_route, fleet.on_rates)
    ctx.bus.command(fleet.sync_topic, fleet.on_sync)
    ctx.every(ctx.settings.fleet_stats_s, fleet.publish_stats, name="stats", run_now=False)


if __name__ == "__main__":
    settings = load_settings(FleetSettings, "fleet")
    raise SystemExit(run_service(f"fleet-planner-{settings.fleet_worker}", FleetSettings, wire, settings=settings))
