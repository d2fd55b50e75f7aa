"""What each service subscribes to (the channel registry, ``shared.topics``) and how to see that it still works.

A target is one service process; every topic it subscribes to gets fuzzed in that one process. ``check`` is the
"final valid message": it publishes something valid and waits for the observable reaction on the bus. The bus
hands messages to one worker thread in order, so a reaction to the final message also proves that every fuzz
message before it was consumed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.topics import PLANNER_SETTINGS, Topics
from tests.reliability import docs
from tests.support.probe import Probe

T = Topics()


@dataclass(frozen=True)
class Sub:
    topic: str
    kind: str  # a key of docs.KINDS (JSON) or docs.TEXT_VALUES (plain text)
    text: bool = False


@dataclass
class CheckContext:
    probe: Probe
    now: Callable[[], datetime]
    http_port: int | None = None
    data_dir: Path | None = None
    log: Callable[[], str] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


Check = Callable[[CheckContext], None]


@dataclass(frozen=True)
class Target:
    module: str
    service: str  # name in its status topic
    subs: tuple[Sub, ...]
    sims: tuple[str, ...]
    check: Check
    env: tuple[tuple[str, str], ...] = ()
    sim_start: datetime | None = None  # default: system.SIM_START
    sim_speed: float = 1.0


def command_roundtrip(topic: str, body: Callable[[str, datetime], dict] | None = None) -> Check:
    """Send a valid command; the service must answer it on ``topic/result`` with our request id."""

    def check(ctx: CheckContext) -> None:
        rid = f"final-{uuid.uuid4().hex[:8]}"
        payload = body(rid, ctx.now()) if body else docs.command(rid, reason="fuzz final check")
        mark = ctx.probe.mark()
        ctx.probe.publish(topic, json.dumps(payload))
        result = ctx.probe.wait_json(f"{topic}/result", lambda d: d.get("request_id") == rid, timeout=60, after=mark)
        ctx.notes["result"] = result
        assert result.get("status") in {"ok", "error"}, result

    return check


def planner_replans(ctx: CheckContext) -> None:
    """Fresh valid inputs, then a replan command: a new valid plan that used our rates must appear."""
    now = ctx.now()
    p = ctx.probe
    for topic, doc in (
        (T.import_rates, docs.rate_series(now)),
        (T.forecast_pv, docs.energy_forecast(now, "pv")),
        (T.forecast_load, docs.energy_forecast(now, "load")),
        (T.battery_state, docs.battery_state(now, soc=42.0)),
    ):
        p.publish(topic, json.dumps(doc), retain=True)
    for name, value in (("min_soc_pct", "10"), ("max_charge_price_gbp", "0.2")):
        p.publish(T.planner_setting_set(name), value)
    mark = p.mark()
    command_roundtrip(T.planner_replan)(ctx)
    from shared.models import Plan

    plan = Plan.model_validate(p.wait_json(T.plan, lambda d: bool(d.get("slots")), timeout=60, after=mark))
    assert plan.slots, "the planner published an empty plan after valid inputs"
    ctx.notes["plan_id"] = plan.plan_id


def watchdog_sees_heartbeats(ctx: CheckContext) -> None:
    """A final heartbeat, then a forced state appears in the executor's journal: the watchdog's next report
    (watching, or restoring) must carry a heartbeat time at least as new as the final one."""
    from services.executor.journal import DB_NAME, Journal
    from shared.models import PowerwallConfig

    now = ctx.now()
    ctx.probe.publish(T.executor_heartbeat, json.dumps(docs.heartbeat(now, seq=10**6, forced=True)))
    assert ctx.data_dir is not None
    journal = Journal(ctx.data_dir / DB_NAME)
    try:
        forced = PowerwallConfig(operational_mode="backup", backup_reserve_pct=80, grid_charging=True)
        journal.set_forced(forced, now, now + timedelta(hours=1))
    finally:
        journal.close()

    def fresh(d: dict) -> bool:
        seen = d.get("last_heartbeat_at")
        return bool(seen) and datetime.fromisoformat(seen.replace("Z", "+00:00")) >= now - timedelta(seconds=1)

    ctx.notes["report"] = ctx.probe.wait_json(T.watchdog_report, fresh, timeout=60)


def dashboard_shows_state(ctx: CheckContext) -> None:
    """A distinctive valid battery state must show up in the dashboard's ``/api/now`` (local-token login)."""
    import re
    import time

    import httpx

    assert ctx.log is not None and ctx.http_port is not None
    now = ctx.now()
    ctx.probe.publish(T.battery_state, json.dumps(docs.battery_state(now, soc=63.7)), retain=True)
    tokens = re.findall(r"token=([A-Za-z0-9_\-]+)", ctx.log())
    assert tokens, "the dashboard printed no local login link"
    base = f"http://127.0.0.1:{ctx.http_port}"
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=base, timeout=10, follow_redirects=True) as web:
        web.get("/", params={"token": tokens[-1]})  # the newest link: each works once
        while True:
            body = web.get("/api/now").text
            if "63.7" in body:
                return
            assert time.monotonic() < deadline, f"battery state never reached /api/now: {body[:300]}"
            time.sleep(0.2)  # polling an HTTP view (no event to wait on); bounded by the deadline


ACCOUNTING_START = datetime(2023, 6, 12, 22, 52, tzinfo=UTC)


def accounting_closes_day(ctx: CheckContext) -> None:
    """Valid observations for the day; after local midnight the day's summary must be published."""
    now = ctx.now()
    ctx.probe.publish(T.import_rates, json.dumps(docs.rate_series(now - timedelta(hours=20), n=60)))
    ctx.probe.publish(T.battery_state, json.dumps(docs.battery_state(now)))
    day = ACCOUNTING_START.date().isoformat()
    summary = ctx.probe.wait_json(T.executor_daily_summary, lambda d: d.get("date") == day, timeout=90)
    ctx.notes["summary"] = summary


STATE_SUBS = (
    Sub(T.import_rates, "rates"),
    Sub(T.export_rates, "export_rates"),
    Sub(T.import_current, "current"),
    Sub(T.pricing_alert, "alert"),
    Sub(T.forecast_pv, "pv"),
    Sub(T.forecast_load, "load"),
    Sub(T.forecast_pv_today, "pv_today"),
    Sub(T.battery_state, "battery"),
    Sub(T.plan, "plan"),
    Sub(T.plan_current, "plan_now"),
    Sub(T.executor_applied, "applied"),
    Sub(T.executor_heartbeat, "heartbeat"),
    Sub(T.executor_alert, "executor_alert"),
    Sub(T.watchdog_report, "watchdog"),
    Sub(T.executor_daily_summary, "daily"),
    Sub(T.executor_mode, "mode", text=True),
    Sub(T.status("planner"), "status", text=True),
    Sub(T.status("executor"), "status", text=True),
)

TARGETS: tuple[Target, ...] = (
    Target(
        "services.pricing",
        "pricing",
        (Sub(T.pricing_refresh, "command"),),
        ("octopus",),
        command_roundtrip(T.pricing_refresh),
    ),
    Target(
        "services.forecast",
        "forecast",
        (Sub(T.battery_state, "battery"), Sub(T.forecast_refresh, "command")),
        ("openmeteo",),
        command_roundtrip(T.forecast_refresh),
    ),
    Target(
        "services.planner",
        "planner",
        (
            Sub(T.import_rates, "rates"),
            Sub(T.export_rates, "export_rates"),
            Sub(T.import_estimate, "estimate"),
            Sub(T.forecast_pv, "pv"),
            Sub(T.forecast_load, "load"),
            Sub(T.battery_state, "battery"),
            Sub(T.planner_replan, "command"),
            *(Sub(T.planner_setting_set(n), n, text=True) for n in PLANNER_SETTINGS),
        ),
        (),
        planner_replans,
    ),
    Target(
        "services.executor",
        "executor",
        (
            Sub(T.plan, "plan"),
            Sub(T.import_current, "current"),
            Sub(T.import_rates, "rates"),
            Sub(T.planner_setting("max_charge_price_gbp"), "max_charge_price_gbp", text=True),
            Sub(T.planner_setting("peak_start_local"), "peak_start_local", text=True),
            Sub(T.planner_setting("peak_end_local"), "peak_end_local", text=True),
            Sub(T.executor_mode_set, "mode", text=True),
            Sub(T.executor_dry_run_set, "bool", text=True),
            Sub(T.executor_override, "override"),
        ),
        ("netzero",),
        command_roundtrip(T.executor_override, lambda rid, now: docs.override(now, rid, action=None)),
    ),
    Target(
        "services.executor.watchdog",
        "watchdog",
        (Sub(T.executor_heartbeat, "heartbeat"),),
        ("netzero",),
        watchdog_sees_heartbeats,
        env=(("BATSCHED_WATCHDOG_CHECK_S", "1"),),
    ),
    Target("services.dashboard", "dashboard", STATE_SUBS, (), dashboard_shows_state),
    Target(
        "services.accounting",
        "accounting",
        (
            Sub(T.battery_state, "battery"),
            Sub(T.import_rates, "rates"),
            Sub(T.export_rates, "export_rates"),
            Sub(T.plan, "plan"),
        ),
        (),
        accounting_closes_day,
        # 8 simulated minutes before local midnight (BST) at 60x: the day closes ~8 s after the start.
        sim_start=ACCOUNTING_START,
        sim_speed=60.0,
    ),
)

# The harness itself, exercised on the foundation's echo service (always present).
ECHO = Target(
    "tests.support.echo_service",
    "echo",
    (Sub("batsched/echo/in", "battery"), Sub("batsched/echo/cmd/ping", "command")),
    (),
    command_roundtrip("batsched/echo/cmd/ping"),
)
