"""The channel registry: every topic on the bus, defined once, with its payload model, retained flag, owner and QoS.

Longer than 400 lines: the registry is one table, one entry per channel, and the prefix-bound ``Topics`` that
reads it; splitting it would put topics in two places.

A ``Channel`` is a topic's definition relative to a root (the home prefix, Home Assistant's discovery prefix or a
fleet's root): ``batsched`` by default, ``batsched/site-0042`` for one home of a fleet. ``Topics`` binds the
channels to a prefix and is the only place a topic string is built. The bus subscribes and publishes by channel;
the dashboard, the fleet, the broker ACL (``tools/mqtt_acl.py``), Home Assistant discovery, the README's topic tree
and the JSON Schemas (``tools/gen_schemas.py``) are all generated from or checked against this table, and a test
fails on a topic string written anywhere else in the product.

One writer per channel (its ``owner``; the ACL enforces it). State is retained, commands and setters never are;
a command's or a setter's answer goes to its topic + ``/result`` (``Channel.result``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import BaseModel

from shared.models import (
    AppliedDecision,
    BatteryState,
    BusHealth,
    Command,
    CommandResult,
    CurrentRate,
    DailySummary,
    EnergyForecast,
    ExecutorAlert,
    FleetStats,
    Heartbeat,
    ImportedHistory,
    LastDecision,
    MoneySummary,
    OverrideCommand,
    OverrideState,
    Plan,
    PlannerSettings,
    PlanNow,
    PriceEstimate,
    PricingAlert,
    PvToday,
    RateSeries,
    SessionList,
    WatchdogReport,
    WindowAddCommand,
    WindowDeleteCommand,
    WindowList,
)

SERVICES = ("pricing", "forecast", "planner", "executor", "watchdog", "accounting", "dashboard")
PLANNER_SETTINGS = ("min_soc_pct", "max_charge_price_gbp", "target_soc_cap_pct", "peak_start_local", "peak_end_local")

Kind = Literal["state", "event", "command", "set"]
Scope = Literal["home", "discovery", "fleet"]

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")
_PARAM_RE = re.compile(r"\{(\w+)\}")
_ID_RE = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass(frozen=True)
class Channel:
    """One topic (or a family of topics with one ``{param}`` level) and what travels on it.

    ``model`` is the pydantic model of a JSON payload; ``None`` means a plain-text value (a setting, a status).
    ``readers`` are the services that subscribe to it (the dashboard and Home Assistant read everything);
    ``denied_to`` those that must never read it."""

    name: str
    path: str  # relative to the scope's root; "{service}" etc. for a family
    model: type[BaseModel] | None
    owner: str  # the one writer; for a command or a setter, the service that serves it
    retained: bool
    kind: Kind
    doc: str
    readers: tuple[str, ...] = ()
    denied_to: tuple[str, ...] = ()  # services that must never read it (the broker ACL denies them)
    qos: int = 1
    scope: Scope = "home"
    values: tuple[str, ...] = ()  # the allowed values of the family's parameter (empty: any id)
    args: tuple[tuple[str, str], ...] = ()  # a family member's parameters

    @property
    def params(self) -> tuple[str, ...]:
        return tuple(_PARAM_RE.findall(self.path))

    def at(self, **params: str) -> Channel:
        """One member of a family: ``STATUS.at(service="pricing")``."""
        if set(params) != set(self.params):
            raise ValueError(f"{self.name} needs {self.params}, got {tuple(params)}")
        path = self.path
        for key, value in params.items():
            if self.values and value not in self.values:
                raise ValueError(f"unknown {key} {value!r} for {self.name}: one of {', '.join(self.values)}")
            if not _ID_RE.match(value):
                raise ValueError(f"invalid {key} {value!r}: use [A-Za-z0-9_-]")
            path = path.replace(f"{{{key}}}", value)
        return replace(self, path=path, values=(), args=tuple(params.items()))

    @property
    def result(self) -> Channel:
        """Where a command's or a setter's answer goes (never retained)."""
        if self.kind not in ("command", "set"):
            raise ValueError(f"{self.name} is not a command or a setter")
        return Channel(
            f"{self.name}_result", f"{self.path}/result", CommandResult, self.owner, False, "event", "the answer"
        )

    @property
    def text(self) -> bool:
        return self.model is None


def _ch(name: str, path: str, model: type[BaseModel] | None, owner: str, kind: Kind, doc: str, **kw: Any) -> Channel:
    return Channel(name, path, model, owner, kind == "state", kind, doc, **kw)


# ----------------------------------------------------------------------------------------------- the registry

STATUS = _ch("status", "{service}/status", None, "{service}", "state", "online | offline (last will)")
HEALTH = _ch(
    "health", "{service}/health", BusHealth, "{service}", "state", "BusHealth: messages received, dropped, failed"
)

IMPORT_RATES = _ch(
    "import_rates",
    "pricing/import/rates",
    RateSeries,
    "pricing",
    "state",
    "RateSeries: every known half-hour, value_inc_vat in GBP/kWh; gaps = unknown",
    readers=("planner", "executor", "accounting"),
)
IMPORT_CURRENT = _ch(
    "import_current",
    "pricing/import/current",
    CurrentRate,
    "pricing",
    "state",
    "CurrentRate: the slot in progress; known=false (never 0) when unpublished",
    readers=("executor",),
)
IMPORT_ESTIMATE = _ch(
    "import_estimate",
    "pricing/import/estimate",
    PriceEstimate,
    "pricing",
    "state",
    "PriceEstimate: median and band per half-hour beyond the published prices; never a price",
    readers=("planner",),
    denied_to=("executor",),  # the executor's price rule never reads an estimate: it cannot even subscribe
)
EXPORT_RATES = _ch(
    "export_rates",
    "pricing/export/rates",
    RateSeries,
    "pricing",
    "state",
    "RateSeries (the export tariff, when configured)",
    readers=("planner", "accounting"),
)
PRICING_ALERT = _ch(
    "pricing_alert",
    "pricing/alert",
    PricingAlert,
    "pricing",
    "state",
    "PricingAlert: ok | prices_late | fetch_failing | validation_failed | store_failing",
)
PRICING_SESSIONS = _ch(
    "pricing_sessions",
    "pricing/sessions",
    SessionList,
    "pricing",
    "state",
    "SessionList: the account's Octopus Saving Sessions and free-electricity sessions",
    readers=("planner", "executor"),
)
PRICING_REFRESH = _ch(
    "pricing_refresh", "pricing/cmd/refresh", Command, "pricing", "command", '{"request_id": "…"} → cmd/refresh/result'
)

FORECAST_PV = _ch(
    "forecast_pv",
    "forecast/pv",
    EnergyForecast,
    "forecast",
    "state",
    "EnergyForecast: kWh per half-hour (null = gap)",
    readers=("planner",),
)
FORECAST_PV_TODAY = _ch(
    "forecast_pv_today", "forecast/pv/today", PvToday, "forecast", "state", 'PvToday: {"date": …, "energy_kwh": …}'
)
FORECAST_LOAD = _ch(
    "forecast_load", "forecast/load", EnergyForecast, "forecast", "state", "EnergyForecast", readers=("planner",)
)
FORECAST_REFRESH = _ch("forecast_refresh", "forecast/cmd/refresh", Command, "forecast", "command", "")

BATTERY_STATE = _ch(
    "battery_state",
    "battery/state",
    BatteryState,
    "executor",
    "state",
    "BatteryState: soc_pct, powers (battery + = discharging, grid + = import)",
    readers=("planner", "forecast", "accounting"),
)

PLAN = _ch(
    "plan",
    "planner/plan",
    Plan,
    "planner",
    "state",
    "Plan: slots with action, reason, expected SOC, import, cost; valid_until; the peak window and price limit used",
    readers=("executor", "accounting"),
)
PLAN_CURRENT = _ch(
    "plan_current",
    "planner/plan/current",
    PlanNow,
    "planner",
    "state",
    "PlanNow: the slot in progress and the next charge",
)
PLANNER_SETTING = _ch(
    "planner_setting",
    "planner/{setting}",
    None,
    "planner",
    "state",
    f"{' | '.join(PLANNER_SETTINGS)} (plain values)",
    readers=("executor",),
    values=PLANNER_SETTINGS,
)
PLANNER_SETTING_SET = _ch(
    "planner_setting_set", "planner/{setting}/set", None, "planner", "set", "plain value", values=PLANNER_SETTINGS
)
PLANNER_REPLAN = _ch("planner_replan", "planner/cmd/replan", Command, "planner", "command", "")

EXECUTOR_MODE = _ch("executor_mode", "executor/mode", None, "executor", "state", "auto | force_charge | hold | off")
EXECUTOR_MODE_SET = _ch("executor_mode_set", "executor/mode/set", None, "executor", "set", "plain value")
EXECUTOR_DRY_RUN = _ch("executor_dry_run", "executor/dry_run", None, "executor", "state", "true | false")
EXECUTOR_DRY_RUN_SET = _ch("executor_dry_run_set", "executor/dry_run/set", None, "executor", "set", "")
EXECUTOR_OVERRIDE = _ch(
    "executor_override",
    "executor/cmd/override",
    OverrideCommand,
    "executor",
    "command",
    '{"request_id": …, "action": "charge|hold|self_use|null", "until": …}',
)
EXECUTOR_OVERRIDE_STATE = _ch(
    "executor_override_state",
    "executor/override",
    OverrideState,
    "executor",
    "state",
    "OverrideState: the override in force (action, until, target) or none; none again after a restart",
)
EXECUTOR_APPLIED = _ch(
    "executor_applied",
    "executor/applied",
    AppliedDecision,
    "executor",
    "event",
    "AppliedDecision, one per decision: rules, desired, sent, read back",
)
EXECUTOR_LAST_DECISION = _ch(
    "executor_last_decision",
    "executor/last_decision",
    LastDecision,
    "executor",
    "state",
    "LastDecision: the latest decision in a few fields (action, outcome, rule, one plain line)",
)
EXECUTOR_HEARTBEAT = _ch(
    "executor_heartbeat", "executor/heartbeat", Heartbeat, "executor", "state", "Heartbeat", readers=("watchdog",)
)
EXECUTOR_ALERT = _ch(
    "executor_alert",
    "executor/alert",
    ExecutorAlert,
    "executor",
    "state",
    "ExecutorAlert: ok | netzero_refused | baseline_unrestorable, with what to do",
)
EXECUTOR_WINDOWS = _ch(
    "executor_windows",
    "executor/windows",
    WindowList,
    "executor",
    "state",
    "WindowList: the pending manual windows (charge or hold), by start",
    readers=("planner",),
)
EXECUTOR_WINDOW_ADD = _ch(
    "executor_window_add",
    "executor/cmd/window_add",
    WindowAddCommand,
    "executor",
    "command",
    '{"request_id": …, "start": …, "end": …, "action": "charge|hold", "target_soc_pct": …}',
)
EXECUTOR_WINDOW_DELETE = _ch(
    "executor_window_delete",
    "executor/cmd/window_delete",
    WindowDeleteCommand,
    "executor",
    "command",
    '{"request_id": …, "window_id": …}',
)
EXECUTOR_HISTORY_IMPORTED = _ch(
    "executor_history_imported",
    "executor/history/imported",
    ImportedHistory,
    "executor",
    "state",
    "ImportedHistory: decisions imported from the original app's database",
)
WATCHDOG_REPORT = _ch("watchdog_report", "executor/watchdog", WatchdogReport, "watchdog", "state", "WatchdogReport")
EXECUTOR_DAILY_SUMMARY = _ch(
    "executor_daily_summary",
    "executor/daily_summary",
    DailySummary,
    "accounting",
    "state",
    "DailySummary: yesterday's estimated cost vs plan and baselines",
)
ACCOUNTING_MONEY = _ch(
    "accounting_money",
    "accounting/money",
    MoneySummary,
    "accounting",
    "state",
    "MoneySummary: today so far, days, months, since install: cost vs no battery and vs self-use",
)

# Home Assistant's own topics, under its discovery prefix.
HA_STATUS = _ch(
    "ha_status", "status", None, "homeassistant", "event", "Home Assistant's birth message", scope="discovery"
)
HA_DISCOVERY = _ch(
    "ha_discovery",
    "{component}/{node}/{object_id}/config",
    None,
    "{service}",
    "event",
    "discovery, resent when HA says online",
    scope="discovery",
)

# A fleet's own topics, under its root (``BATSCHED_FLEET_ROOT``), beside the homes' prefixes.
FLEET_SYNC = _ch(
    "fleet_sync", "fleet/cmd/sync", Command, "fleet", "command", "a barrier: answered after earlier work", scope="fleet"
)
FLEET_STATS = _ch(
    "fleet_stats",
    "fleet/{worker}/stats",
    FleetStats,
    "fleet",
    "event",
    "FleetStats: a worker's counters",
    scope="fleet",
)

CHANNELS: tuple[Channel, ...] = (
    STATUS,
    HEALTH,
    IMPORT_RATES,
    IMPORT_CURRENT,
    IMPORT_ESTIMATE,
    EXPORT_RATES,
    PRICING_ALERT,
    PRICING_SESSIONS,
    PRICING_REFRESH,
    FORECAST_PV,
    FORECAST_PV_TODAY,
    FORECAST_LOAD,
    FORECAST_REFRESH,
    BATTERY_STATE,
    PLAN,
    PLAN_CURRENT,
    PLANNER_SETTING,
    PLANNER_SETTING_SET,
    PLANNER_REPLAN,
    EXECUTOR_MODE,
    EXECUTOR_MODE_SET,
    EXECUTOR_DRY_RUN,
    EXECUTOR_DRY_RUN_SET,
    EXECUTOR_OVERRIDE,
    EXECUTOR_OVERRIDE_STATE,
    EXECUTOR_APPLIED,
    EXECUTOR_LAST_DECISION,
    EXECUTOR_HEARTBEAT,
    EXECUTOR_ALERT,
    EXECUTOR_WINDOWS,
    EXECUTOR_WINDOW_ADD,
    EXECUTOR_WINDOW_DELETE,
    EXECUTOR_HISTORY_IMPORTED,
    WATCHDOG_REPORT,
    EXECUTOR_DAILY_SUMMARY,
    ACCOUNTING_MONEY,
    HA_STATUS,
    HA_DISCOVERY,
    FLEET_SYNC,
    FLEET_STATS,
)
BY_NAME = {c.name: c for c in CHANNELS}


def home_channels() -> list[Channel]:
    """Every concrete topic under one home's prefix (families expanded), in the registry's order."""
    out: list[Channel] = []
    for ch in CHANNELS:
        if ch.scope != "home":
            continue
        if ch.params == ("service",):
            out += [replace(ch.at(service=s), owner=s) for s in SERVICES]
        elif ch.params:
            out += [ch.at(**{ch.params[0]: v}) for v in ch.values]
        else:
            out.append(ch)
    return out


def schema_models() -> dict[str, type[BaseModel]]:
    """Every payload model on the bus, by its schema file's stem (``RateSeries`` → ``rate_series``): the models of
    the channels, the command answer, and ``PlannerSettings`` (the values of the planner's setting topics)."""
    models = [c.model for c in CHANNELS if c.model is not None] + [CommandResult, PlannerSettings]
    out: dict[str, type[BaseModel]] = {}
    for model in models:
        out.setdefault(re.sub(r"(?<!^)(?=[A-Z])", "_", model.__name__).lower(), model)
    return out


SCHEMA_MODELS = schema_models()


@dataclass(frozen=True)
class Route:
    """A topic filter and the channel whose payloads it carries (``None``: untyped, delivered as text)."""

    filter: str
    channel: Channel | None = None


def across_homes(root: str, channel: Channel, share_group: str | None = None) -> Route:
    """A channel in every home of a fleet: ``<root>/+/<path>``; with ``share_group`` a shared subscription
    (``$share/<group>/…``: the broker hands each message to one member of the group)."""
    topic = f"{root}/+/{channel.path}"
    return Route(f"$share/{share_group}/{topic}" if share_group else topic, channel)


# The answer to any command or setter, on the command's topic + ``/result`` (for parsing; see ``Channel.result``).
ANSWERS = Channel("answers", "{command}/result", CommandResult, "", False, "event", "the answer to a command")


def result_topic(command_topic: str) -> str:
    return f"{command_topic}/result"


def below(topic: str) -> str:
    """A filter for everything below a topic level: ``pricing`` → ``pricing/#``."""
    return f"{topic}/#"


def is_status_topic(topic: str) -> bool:
    """Whether a topic is a service's ``…/status`` (online/offline, its last will)."""
    return topic.rsplit("/", 1)[-1] == STATUS.path.rsplit("/", 1)[-1]


def is_state(relative: str) -> bool:
    """Whether a topic (below the prefix) carries state: not a command (``…/cmd/…``), a setter (``…/set``) or
    an answer (``…/result``)."""
    levels = relative.split("/")
    return levels[-1] not in ("set", "result") and "cmd" not in levels


class _Bound:
    """``Topics.<name>``: a registry channel's topic under the instance's prefix."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def __get__(self, obj: Topics | None, owner: type | None = None) -> Any:
        return self if obj is None else obj.of(self.channel)


@dataclass(frozen=True)
class Topics:
    """The registry bound to one prefix: the only place topic strings are built."""

    prefix: str = "batsched"
    discovery_prefix: str = "homeassistant"

    def __post_init__(self) -> None:
        if not _PREFIX_RE.match(self.prefix):
            raise ValueError(f"invalid topic prefix {self.prefix!r}: use levels of [A-Za-z0-9_-] separated by /")

    def of(self, channel: Channel, **params: str) -> str:
        """The topic of a channel (a family member when ``params`` are given) under this prefix."""
        ch = channel.at(**params) if params or channel.params else channel
        root = self.discovery_prefix if ch.scope == "discovery" else self.prefix
        return f"{root}/{ch.path}"

    def relative(self, topic: str) -> str:
        """``batsched/planner/plan`` → ``planner/plan`` (a topic outside the prefix is returned unchanged)."""
        head = f"{self.prefix}/"
        return topic[len(head) :] if topic.startswith(head) else topic

    @property
    def all(self) -> str:
        return below(self.prefix)

    @property
    def node_prefix(self) -> str:
        """The prefix as an id: ``batsched`` or ``batsched_site-0042``."""
        return self.prefix.replace("/", "_")

    def status(self, service: str) -> str:
        return self.of(STATUS, service=service)

    def health(self, service: str) -> str:
        return self.of(HEALTH, service=service)

    def planner_setting(self, name: str) -> str:
        if name not in PLANNER_SETTINGS:
            raise ValueError(f"unknown planner setting {name!r}")
        return self.of(PLANNER_SETTING, setting=name)

    def planner_setting_set(self, name: str) -> str:
        if name not in PLANNER_SETTINGS:
            raise ValueError(f"unknown planner setting {name!r}")
        return self.of(PLANNER_SETTING_SET, setting=name)

    def ha_discovery(self, component: str, service: str, object_id: str) -> str:
        node = f"{self.node_prefix}_{service}"
        return self.of(HA_DISCOVERY, component=component, node=node, object_id=object_id)

    import_rates = _Bound(IMPORT_RATES)
    import_current = _Bound(IMPORT_CURRENT)
    import_estimate = _Bound(IMPORT_ESTIMATE)
    export_rates = _Bound(EXPORT_RATES)
    pricing_alert = _Bound(PRICING_ALERT)
    pricing_sessions = _Bound(PRICING_SESSIONS)
    pricing_refresh = _Bound(PRICING_REFRESH)
    forecast_pv = _Bound(FORECAST_PV)
    forecast_load = _Bound(FORECAST_LOAD)
    forecast_pv_today = _Bound(FORECAST_PV_TODAY)
    forecast_refresh = _Bound(FORECAST_REFRESH)
    battery_state = _Bound(BATTERY_STATE)
    plan = _Bound(PLAN)
    plan_current = _Bound(PLAN_CURRENT)
    planner_replan = _Bound(PLANNER_REPLAN)
    executor_mode = _Bound(EXECUTOR_MODE)
    executor_mode_set = _Bound(EXECUTOR_MODE_SET)
    executor_dry_run = _Bound(EXECUTOR_DRY_RUN)
    executor_dry_run_set = _Bound(EXECUTOR_DRY_RUN_SET)
    executor_override = _Bound(EXECUTOR_OVERRIDE)
    executor_override_state = _Bound(EXECUTOR_OVERRIDE_STATE)
    executor_applied = _Bound(EXECUTOR_APPLIED)
    executor_last_decision = _Bound(EXECUTOR_LAST_DECISION)
    executor_heartbeat = _Bound(EXECUTOR_HEARTBEAT)
    executor_alert = _Bound(EXECUTOR_ALERT)
    executor_windows = _Bound(EXECUTOR_WINDOWS)
    executor_window_add = _Bound(EXECUTOR_WINDOW_ADD)
    executor_window_delete = _Bound(EXECUTOR_WINDOW_DELETE)
    executor_history_imported = _Bound(EXECUTOR_HISTORY_IMPORTED)
    executor_daily_summary = _Bound(EXECUTOR_DAILY_SUMMARY)
    accounting_money = _Bound(ACCOUNTING_MONEY)
    watchdog_report = _Bound(WATCHDOG_REPORT)
    ha_status = _Bound(HA_STATUS)

    def tree(self) -> dict[str, str]:
        """The whole topic tree of a home (for the README and for tests that pin it)."""
        out: dict[str, str] = {}
        for ch in home_channels():
            if dict(ch.args).get("service"):
                key = ch.path
            elif ch.args:
                key = f"{ch.name}:{ch.args[0][1]}"
            else:
                key = ch.name
            out[key] = self.of(ch)
        return out
