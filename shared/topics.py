"""Every topic name, built from one configurable prefix (default ``batsched``; a fleet uses ``batsched/site-0042``).

One writer per topic (the broker ACL in ``mosquitto/`` enforces it). State is retained, commands never are;
a command's reply goes to the command topic + ``/result``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SERVICES = ("pricing", "forecast", "planner", "executor", "watchdog", "dashboard")
PLANNER_SETTINGS = ("min_soc_pct", "max_charge_price_gbp", "target_soc_cap_pct", "peak_start_local", "peak_end_local")

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")


def result_topic(command_topic: str) -> str:
    return f"{command_topic}/result"


@dataclass(frozen=True)
class Topics:
    prefix: str = "batsched"
    discovery_prefix: str = "homeassistant"

    def __post_init__(self) -> None:
        if not _PREFIX_RE.match(self.prefix):
            raise ValueError(f"invalid topic prefix {self.prefix!r}: use levels of [A-Za-z0-9_-] separated by /")

    def _t(self, *levels: str) -> str:
        return "/".join((self.prefix, *levels))

    # liveness
    def status(self, service: str) -> str:
        return self._t(service, "status")

    @property
    def all(self) -> str:
        return self._t("#")

    # pricing
    @property
    def import_rates(self) -> str:
        return self._t("pricing", "import", "rates")

    @property
    def import_current(self) -> str:
        return self._t("pricing", "import", "current")

    @property
    def import_estimate(self) -> str:
        """The price estimate beyond the published prices: never a price (``PriceEstimate``)."""
        return self._t("pricing", "import", "estimate")

    @property
    def export_rates(self) -> str:
        return self._t("pricing", "export", "rates")

    @property
    def pricing_alert(self) -> str:
        return self._t("pricing", "alert")

    @property
    def pricing_refresh(self) -> str:
        return self._t("pricing", "cmd", "refresh")

    @property
    def pricing_sessions(self) -> str:
        return self._t("pricing", "sessions")

    # forecast
    @property
    def forecast_pv(self) -> str:
        return self._t("forecast", "pv")

    @property
    def forecast_load(self) -> str:
        return self._t("forecast", "load")

    @property
    def forecast_pv_today(self) -> str:
        return self._t("forecast", "pv", "today")

    @property
    def forecast_refresh(self) -> str:
        return self._t("forecast", "cmd", "refresh")

    # battery (written by the executor, the only NetZero poller)
    @property
    def battery_state(self) -> str:
        return self._t("battery", "state")

    # planner
    @property
    def plan(self) -> str:
        return self._t("planner", "plan")

    @property
    def plan_current(self) -> str:
        return self._t("planner", "plan", "current")

    def planner_setting(self, name: str) -> str:
        if name not in PLANNER_SETTINGS:
            raise ValueError(f"unknown planner setting {name!r}")
        return self._t("planner", name)

    def planner_setting_set(self, name: str) -> str:
        return f"{self.planner_setting(name)}/set"

    @property
    def planner_replan(self) -> str:
        return self._t("planner", "cmd", "replan")

    # executor
    @property
    def executor_mode(self) -> str:
        return self._t("executor", "mode")

    @property
    def executor_mode_set(self) -> str:
        return self._t("executor", "mode", "set")

    @property
    def executor_dry_run(self) -> str:
        return self._t("executor", "dry_run")

    @property
    def executor_dry_run_set(self) -> str:
        return self._t("executor", "dry_run", "set")

    @property
    def executor_override(self) -> str:
        return self._t("executor", "cmd", "override")

    @property
    def executor_applied(self) -> str:
        return self._t("executor", "applied")

    @property
    def executor_heartbeat(self) -> str:
        return self._t("executor", "heartbeat")

    @property
    def executor_alert(self) -> str:
        return self._t("executor", "alert")

    @property
    def executor_daily_summary(self) -> str:
        return self._t("executor", "daily_summary")

    @property
    def watchdog_report(self) -> str:
        return self._t("executor", "watchdog")

    @property
    def executor_windows(self) -> str:
        return self._t("executor", "windows")

    @property
    def executor_window_add(self) -> str:
        return self._t("executor", "cmd", "window_add")

    @property
    def executor_window_delete(self) -> str:
        return self._t("executor", "cmd", "window_delete")

    @property
    def executor_history_imported(self) -> str:
        return self._t("executor", "history", "imported")

    # Home Assistant
    @property
    def ha_status(self) -> str:
        return f"{self.discovery_prefix}/status"

    @property
    def node_prefix(self) -> str:
        """The prefix as an id: ``batsched`` or ``batsched_site-0042``."""
        return self.prefix.replace("/", "_")

    def ha_discovery(self, component: str, service: str, object_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.node_prefix}_{service}/{object_id}/config"

    def tree(self) -> dict[str, str]:
        """The whole topic tree (for the README and for tests that pin it)."""
        out = {f"{s}/status": self.status(s) for s in SERVICES}
        for name in (
            "import_rates",
            "import_current",
            "import_estimate",
            "export_rates",
            "pricing_alert",
            "pricing_refresh",
            "pricing_sessions",
            "forecast_pv",
            "forecast_load",
            "forecast_pv_today",
            "forecast_refresh",
            "battery_state",
            "plan",
            "plan_current",
            "planner_replan",
            "executor_mode",
            "executor_mode_set",
            "executor_dry_run",
            "executor_dry_run_set",
            "executor_override",
            "executor_applied",
            "executor_heartbeat",
            "executor_alert",
            "executor_daily_summary",
            "watchdog_report",
            "executor_windows",
            "executor_window_add",
            "executor_window_delete",
            "executor_history_imported",
        ):
            out[name] = getattr(self, name)
        for name in PLANNER_SETTINGS:
            out[f"planner_setting:{name}"] = self.planner_setting(name)
            out[f"planner_setting_set:{name}"] = self.planner_setting_set(name)
        return out
