"""``python -m services.accounting``: the daily plan-vs-actual accounting job (wiring only)."""

from __future__ import annotations

from services.accounting.config import AccountingSettings
from services.accounting.job import AccountingJob
from services.accounting.store import AccountingStore
from shared.models import BatteryState, Plan, RateSeries
from shared.runner import ServiceContext, run_service


def wire(ctx: ServiceContext[AccountingSettings]) -> None:
    store = AccountingStore(ctx.data_path("accounting.db"))
    job = AccountingJob(ctx.bus, ctx.clock, store, ctx.settings, ctx.log)
    t = ctx.topics
    ctx.bus.subscribe(t.battery_state, job.on_state, BatteryState)
    ctx.bus.subscribe(t.import_rates, job.on_import_rates, RateSeries)
    ctx.bus.subscribe(t.export_rates, job.on_export_rates, RateSeries)
    ctx.bus.subscribe(t.plan, job.on_plan, Plan)
    ctx.bus.on_connect(job.republish)
    ctx.every(job.seconds_to_next_close, job.close_finished_days, name="close-days")


if __name__ == "__main__":
    raise SystemExit(run_service("accounting", AccountingSettings, wire))
