"""``python -m services.accounting``: the daily plan-vs-actual accounting job (wiring only)."""

from __future__ import annotations

from services.accounting.config import AccountingSettings
from services.accounting.discovery import discovery
from services.accounting.job import AccountingJob
from services.accounting.store import AccountingStore
from shared.ha import register_discovery
from shared.runner import ServiceContext, run_service
from shared.topics import BATTERY_STATE, EXPORT_RATES, IMPORT_RATES, PLAN


def wire(ctx: ServiceContext[AccountingSettings]) -> None:
    store = AccountingStore(ctx.data_path("accounting.db"))
    job = AccountingJob(ctx.bus, ctx.clock, store, ctx.settings, ctx.log)
    ctx.bus.subscribe(BATTERY_STATE, job.on_state)
    ctx.bus.subscribe(IMPORT_RATES, job.on_import_rates)
    ctx.bus.subscribe(EXPORT_RATES, job.on_export_rates)
    ctx.bus.subscribe(PLAN, job.on_plan)
    ctx.bus.on_connect(job.republish)
    register_discovery(ctx.bus, lambda: discovery(ctx.bus))
    ctx.every(job.seconds_to_next_close, job.close_finished_days, name="close-days")
    ctx.every(ctx.settings.accounting_money_interval_s, job.publish_money, name="money", run_now=False)


if __name__ == "__main__":
    raise SystemExit(run_service("accounting", AccountingSettings, wire))
