"""The executor's wiring (``python -m services.executor``), and ``python -m services.executor export`` for the
decision history as CSV."""

from __future__ import annotations

import sqlite3
import sys

from services.executor.config import ExecutorSettings
from services.executor.discovery import discovery
from services.executor.executor import Executor
from services.executor.journal import DB_NAME, Journal
from services.executor.observation import hand_back_before_exit
from services.executor.seed_import import import_on_start, publish_imported_history, take_over
from services.executor.watchdog import build_client
from services.executor.windows import WindowBoard, WindowStore
from shared.bus import Bus
from shared.ha import register_discovery
from shared.runner import ServiceContext, run_service
from shared.topics import (
    EXECUTOR_DRY_RUN_SET,
    EXECUTOR_MODE_SET,
    EXECUTOR_OVERRIDE,
    EXECUTOR_WINDOW_ADD,
    EXECUTOR_WINDOW_DELETE,
    IMPORT_CURRENT,
    IMPORT_RATES,
    PLAN,
    PLANNER_SETTING,
    PRICING_SESSIONS,
)

# The planner's settings the executor enforces too (charging is kept out of its peak and above its price limit).
PLANNER_PEAK = ("peak_start_local", "peak_end_local")


def subscribe(executor: Executor, bus: Bus) -> None:
    """The executor's inputs and commands on the bus."""
    bus.subscribe(PLAN, executor.on_plan)
    bus.subscribe(IMPORT_CURRENT, executor.on_current_rate)
    bus.subscribe(IMPORT_RATES, executor.on_rates)
    bus.subscribe(PRICING_SESSIONS, executor.on_sessions)
    bus.subscribe(PLANNER_SETTING.at(setting="max_charge_price_gbp"), executor.on_planner_max_price)
    for name in PLANNER_PEAK:
        bus.subscribe(PLANNER_SETTING.at(setting=name), executor.on_planner_peak(name))
    bus.setting(EXECUTOR_MODE_SET, executor.on_mode_set)
    bus.setting(EXECUTOR_DRY_RUN_SET, executor.on_dry_run_set)
    bus.command(EXECUTOR_OVERRIDE, executor.on_override)
    if executor.windows is not None:
        bus.command(EXECUTOR_WINDOW_ADD, executor.windows.on_add)
        bus.command(EXECUTOR_WINDOW_DELETE, executor.windows.on_delete)
        bus.on_connect(executor.windows.publish)
    bus.on_connect(executor.publish_state)


def wire(ctx: ServiceContext[ExecutorSettings]) -> None:
    client = build_client(ctx.settings, ctx.clock)
    path = ctx.data_path(DB_NAME)
    seed = take_over(path, ctx.clock.now(), ctx.log)  # the original app's database here: moved aside, imported below
    try:
        journal = Journal(path)
        windows = WindowStore(path)
    except (OSError, sqlite3.Error):
        # Exiting (the runner says why): first hand back a forced state the journal shows, if there is one.
        ctx.log.info("journal cannot be opened for writing", outcome=hand_back_before_exit(client, path, ctx.log))
        raise
    if seed is not None:
        import_on_start(seed, journal, windows, ctx.settings, ctx.clock.now(), ctx.log)
    s = ctx.settings
    board = WindowBoard(
        windows, ctx.bus, ctx.clock, s.peak, s.tz, (s.min_target_soc_pct, s.max_target_soc_pct), ctx.log
    )
    executor = Executor(s, ctx.clock, ctx.bus, journal, client, ctx.log, windows=board)
    board.wake = executor.wake.set

    subscribe(executor, ctx.bus)
    ctx.bus.on_connect(lambda: publish_imported_history(ctx.bus, path, ctx.clock.now(), ctx.log))
    register_discovery(ctx.bus, lambda: discovery(ctx.bus))

    ctx.every(0, lambda: executor.run_forever(ctx.stop), name="decisions")  # runs until stop
    ctx.on_stop(executor.restore_on_stop)


def main(argv: list[str]) -> int:
    if argv[:1] == ["export"]:
        from services.executor.export import main as export_main

        return export_main(argv[1:])
    return run_service("executor", ExecutorSettings, wire)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
