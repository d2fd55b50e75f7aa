"""The planner service's state and reactions: keep the latest inputs, replan (debounced) and publish.

All planning goes through ``home.plan_home`` (as for every home of a fleet); this module only holds the inputs,
the settings and the timing.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from services.planner.battery import BatteryModel
from services.planner.config import PlannerServiceSettings
from services.planner.discovery import discovery
from services.planner.home import HomeInputs, initial_settings, plan_home
from services.planner.optimiser import PlannerConfig
from shared.models import (
    Action,
    BatteryState,
    Command,
    EnergyForecast,
    Plan,
    PlannerSettings,
    PlanNow,
    PriceEstimate,
    RateSeries,
    SessionList,
    WindowList,
)
from shared.runner import ServiceContext
from shared.topics import PLANNER_SETTINGS

SETTINGS_FILE = "planner_settings.json"
ENV_SETTINGS_FILE = "planner_settings_env.json"  # the start values the environment gave at the last start


def planner_config(s: PlannerServiceSettings) -> PlannerConfig:
    model = BatteryModel(
        capacity_kwh=s.battery_capacity_kwh,
        grid_charge_kw=s.battery_grid_charge_kw,
        charge_kw=s.battery_charge_kw,
        discharge_kw=s.battery_discharge_kw,
        eta_charge=s.battery_eta_charge,
        eta_discharge=s.battery_eta_discharge,
        export_price_gbp=s.export_price_gbp,
        wear_gbp_per_kwh=s.battery_wear_gbp_per_kwh,
    )
    return PlannerConfig(
        model=model,
        max_slots=s.planner_horizon_slots,
        end_value=s.planner_end_value,
        lease=timedelta(minutes=s.planner_lease_min),
        default_load_kwh=s.default_load_kwh,
        tz=s.tz,
    )


class Debouncer:
    """Calls ``fn`` once, ``delay`` seconds after the last ``kick`` (real time: it only merges bursts)."""

    def __init__(self, delay: float, fn: Any, stop: threading.Event, log: Any) -> None:
        self.delay, self.fn, self.stop, self.log = delay, fn, stop, log
        self._due: float | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="planner-debounce", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def kick(self) -> None:
        with self._cond:
            self._due = time.monotonic() + self.delay
            self._cond.notify()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _run(self) -> None:
        while not self.stop.is_set():
            with self._cond:
                if self._due is None:
                    self._cond.wait(0.5)
                    continue
                left = self._due - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self._due = None
            try:
                self.fn("input")
            except Exception:  # the thread must outlive one bad replan, or inputs stop triggering plans
                self.log.exception("replan after new inputs failed")


class PlannerService:
    def __init__(self, ctx: ServiceContext[PlannerServiceSettings]) -> None:
        self.ctx = ctx
        self.log = ctx.log
        self.config = planner_config(ctx.settings)
        self.settings = self._load_settings()
        self.inputs = HomeInputs()
        self.plan: Plan | None = None
        self._lock = threading.RLock()
        self.debouncer = Debouncer(ctx.settings.planner_debounce_s, self.replan, ctx.stop, ctx.log)

    # ------------------------------------------------------------------ inputs

    def _input(self, attr: str, value: object) -> None:
        with self._lock:
            self.inputs.set(attr, value, self.ctx.now())  # None (a cleared retained topic) forgets the input
        self.debouncer.kick()

    def on_rates(self, rates: RateSeries | None) -> None:
        self._input("rates", rates)

    def on_export_rates(self, rates: RateSeries | None) -> None:
        self._input("export_rates", rates)

    def on_estimate(self, estimate: PriceEstimate | None) -> None:
        self._input("estimate", estimate)

    def on_pv(self, forecast: EnergyForecast | None) -> None:
        self._input("pv", forecast)

    def on_load(self, forecast: EnergyForecast | None) -> None:
        self._input("load", forecast)

    def on_battery(self, state: BatteryState | None) -> None:
        self._input("battery", state)

    def on_windows(self, windows: WindowList | None) -> None:
        self._input("windows", windows)

    def on_sessions(self, sessions: SessionList | None) -> None:
        self._input("sessions", sessions)

    # ------------------------------------------------------------------ settings

    def _load_settings(self) -> PlannerSettings:
        path = self.ctx.data_path(SETTINGS_FILE)
        try:
            stored = PlannerSettings.model_validate_json(path.read_text())
        except FileNotFoundError:
            stored = initial_settings(self.ctx.settings)
        except (ValueError, ValidationError) as exc:
            self.log.warning("stored planner settings unreadable; using defaults", path=str(path), error=str(exc))
            stored = initial_settings(self.ctx.settings)
        return self._from_environment(stored)

    def _from_environment(self, stored: PlannerSettings) -> PlannerSettings:
        """Start values from the environment (``BATSCHED_MAX_CHARGE_PRICE_GBP``, the seed's ``MAX_AGILE_PRICE_PPK``
        …) apply when they differ from the ones applied at the last start: a value changed on the bus since then
        stays until the environment changes. Each change of a stored value is logged with both values."""
        wanted = self.ctx.settings.bus_setting_values()
        env_path = self.ctx.data_path(ENV_SETTINGS_FILE)
        try:
            last = json.loads(env_path.read_text())
        except (OSError, ValueError):
            last = {}
        changed = {k: v for k, v in wanted.items() if not isinstance(last, dict) or last.get(k) != v}
        if not changed:
            return stored
        new = PlannerSettings.model_validate({**stored.model_dump(), **changed})
        for name, value in changed.items():
            before = getattr(stored, name)
            if before != getattr(new, name):
                self.log.warning("planner setting set from the environment", setting=name, value=value, was=before)
        self.ctx.data_path(SETTINGS_FILE).write_text(new.model_dump_json())
        env_path.write_text(json.dumps(wanted))
        return new

    def setter(self, name: str) -> Any:
        def apply(text: str) -> None:
            with self._lock:
                new = PlannerSettings.model_validate({**self.settings.model_dump(), name: text})
                self.settings = new
                self.ctx.data_path(SETTINGS_FILE).write_text(new.model_dump_json())
            self.log.info("planner setting changed", setting=name, value=getattr(new, name))
            self.publish_settings()
            self.debouncer.kick()

        return apply

    def publish_settings(self) -> None:
        values = self.settings.model_dump()
        for name in PLANNER_SETTINGS:
            self.ctx.bus.publish_state(self.ctx.topics.planner_setting(name), str(values[name]))

    # ------------------------------------------------------------------ planning

    def replan(self, why: str = "timer") -> Plan:
        with self._lock:
            now = self.ctx.now()
            t0 = time.perf_counter()
            p = plan_home(self.inputs, self.settings, now, self.config)
            ms = (time.perf_counter() - t0) * 1000
            self.plan = p
        self.ctx.bus.publish_state(self.ctx.topics.plan, p)
        self.publish_current()
        charges = sum(1 for s in p.slots if s.action == Action.CHARGE)
        log = self.log.warning if p.status == "degraded" else self.log.info
        log(
            "plan published",
            plan_id=p.plan_id,
            why=why,
            status=p.status,
            reason=p.reason,
            slots=len(p.slots),
            charge_slots=charges,
            expected_cost_gbp=p.expected_cost_gbp,
            ms=round(ms, 1),
        )
        return p

    def publish_current(self) -> None:
        with self._lock:
            p = self.plan
        if p is None:
            return
        now = self.ctx.now()
        slot = p.slot_at(now)
        nxt = next((s.start for s in p.slots if s.action == Action.CHARGE and s.end > now), None)
        current = PlanNow(
            generated_at=now,
            valid_until=min(p.valid_until, slot.end) if slot else p.valid_until,
            plan_id=p.plan_id,
            slot=slot,
            next_charge_start=nxt,
        )
        self.ctx.bus.publish_state(self.ctx.topics.plan_current, current)

    def at_boundary(self) -> None:
        """Each half-hour: replan (the timer), which also moves ``plan/current`` on."""
        self.replan("timer")

    def on_replan(self, cmd: Command) -> dict[str, Any]:
        p = self.replan("command")
        return {"plan_id": p.plan_id, "status": p.status, "reason": p.reason}

    # ------------------------------------------------------------------ Home Assistant

    def discovery(self) -> list[tuple[str, dict[str, Any]]]:
        return discovery(self.ctx.bus)
