"""The executor's wiring (``python -m services.executor``), and ``python -m services.executor export`` for the
decision history as CSV."""

from __future__ import annotations

import sqlite3
import sys

from services.executor.config import ExecutorSettings
from services.executor.executor import Executor, hand_back_before_exit
from services.executor.journal import DB_NAME, Journal
from services.executor.watchdog import build_client
from shared.ha import register_discovery
from shared.runner import ServiceContext, run_service
from shared.topics import (
    EXECUTOR_DRY_RUN_SET,
    EXECUTOR_MODE_SET,
    EXECUTOR_OVERRIDE,
    IMPORT_CURRENT,
    IMPORT_RATES,
    PLAN,
    PLANNER_SETTING,
)


def wire(ctx: ServiceContext[ExecutorSettings]) -> None:
    client = build_client(ctx.settings, ctx.clock)
    path = ctx.data_path(DB_NAME)
    try:
        journal = Journal(path)
    except (OSError, sqlite3.Error):
        # Exiting (the runner says why): first hand back a forced state the journal shows, if there is one.
        ctx.log.info("journal cannot be opened for writing", outcome=hand_back_before_exit(client, path, ctx.log))
        raise
    executor = Executor(ctx.settings, ctx.clock, ctx.bus, journal, client, ctx.log)

    ctx.bus.subscribe(PLAN, executor.on_plan)
    ctx.bus.subscribe(IMPORT_CURRENT, executor.on_current_rate)
    ctx.bus.subscribe(IMPORT_RATES, executor.on_rates)
    ctx.bus.subscribe(PLANNER_SETTING.at(setting="max_charge_price_gbp"), executor.on_planner_max_price)
    ctx.bus.setting(EXECUTOR_MODE_SET, executor.on_mode_set)
    ctx.bus.setting(EXECUTOR_DRY_RUN_SET, executor.on_dry_run_set)
    ctx.bus.command(EXECUTOR_OVERRIDE, executor.on_override)
    ctx.bus.on_connect(executor.publish_state)
    register_discovery(ctx.bus, executor.discovery)

    ctx.every(0, lambda: executor.run_forever(ctx.stop), name="decisions")  # runs until stop
    ctx.on_stop(executor.restore_on_stop)


def main(argv: list[str]) -> int:
    if argv[:1] == ["export"]:
        from services.executor.export import main as export_main

        return export_main(argv[1:])
    return run_service("executor", ExecutorSettings, wire)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
