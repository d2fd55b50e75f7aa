"""The words a household reads for the system's codes: actions, outcomes, plan reasons, safety rules, Powerwall
settings, and message text freed of Python reprs and raw ISO timestamps. Pure; one place for every page."""

from __future__ import annotations

import ast
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

ACTION_WORDS = {"charge": "charge", "hold": "hold", "self_use": "self-use", None: "stand aside"}
OUTCOME_WORDS = {
    "applied": "applied",
    "unchanged": "already set",
    "dry_run": "dry run, nothing sent",
    "stood_aside": "stood aside",
    "deferred": "deferred",
    "failed": "failed",
    "mismatch": "read back differently",
    "grid_down_after_write": "grid went down after sending",
}
# Why the plan chose a slot's action (shared.models.Reason), as a person would say it.
REASON_WORDS = {
    "cheapest_needed": "among the cheapest hours before the energy is needed",
    "negative_price": "the price is below zero",
    "solar_covers": "the sun covers the house",
    "peak_blocked": "no grid charging in the peak",
    "price_above_limit": "the price is above your limit",
    "no_price": "the price is not known yet",
    "hold_for_later": "keeping the charge for the dearer hours later",
    "battery_full": "the battery is full",
    "self_use": "the battery runs the house as usual",
    "no_inputs": "inputs are missing, so the battery runs as usual",
    "stale_inputs": "inputs are out of date, so the battery runs as usual",
    "override": "your override",
    "manual_window": "your manual window",
    "saving_session": "an Octopus Saving Session pays for using less from the grid",
    "free_session": "Octopus electricity is free now",
}
# The executor's safety rules (RuleOutcome.rule).
RULE_WORDS = {
    "peak_window": "Peak-time rule",
    "price_limit": "Price limit",
    "off_grid": "Grid outage",
    "stale_inputs": "Out-of-date inputs",
    "clock_skew": "Clock check",
    "baseline": "Your own Powerwall settings",
    "bounds": "Battery limits",
    "budget": "NetZero request limit",
    "fresh_read": "Fresh reading first",
    "leaving": "Shutting down",
    "manual_window": "Manual window",
    "seed": "Original app",
}
MODE_WORDS = {
    "auto": "following the plan",
    "force_charge": "mode force charge",
    "hold": "mode hold",
    "off": "mode off: the Powerwall runs by itself",
}
POWERWALL_MODES = {"autonomous": "time-based control", "self_consumption": "self-powered", "backup": "backup only"}

_DICT_RE = re.compile(r"\{[^{}]*\}")
_ISO_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?")


def action_word(action: str | None) -> str:
    return ACTION_WORDS.get(action, str(action).replace("_", " "))


def outcome_word(outcome: str) -> str:
    return OUTCOME_WORDS.get(outcome, outcome.replace("_", " "))


def reason_word(reason: str | None) -> str:
    if not reason:
        return ""
    return REASON_WORDS.get(reason, reason.replace("_", " "))


def rule_word(rule: str) -> str:
    return RULE_WORDS.get(rule, rule.replace("_", " ").capitalize())


def powerwall_text(cfg: dict[str, Any] | None) -> str:
    """A Powerwall configuration (``PowerwallConfig`` as a dict) in words: ``backup only, reserve 80 %, grid
    charging on``; ``—`` for nothing."""
    if not cfg:
        return "—"
    parts = []
    mode = cfg.get("operational_mode")
    if mode:
        parts.append(POWERWALL_MODES.get(mode, str(mode).replace("_", " ")))
    if cfg.get("backup_reserve_pct") is not None:
        parts.append(f"reserve {cfg['backup_reserve_pct']} %")
    if cfg.get("grid_charging") is not None:
        parts.append("grid charging on" if cfg["grid_charging"] else "grid charging off")
    if cfg.get("energy_exports"):
        parts.append(f"exports {str(cfg['energy_exports']).replace('_', ' ')}")
    return ", ".join(parts) or "—"


def plain(text: str | None, tz: ZoneInfo) -> str:
    """Message text as a person reads it: ``{'operational_mode': 'backup', …}`` becomes ``backup only, …`` and an
    ISO timestamp becomes local ``Mon 15 Jan 14:30:05``."""
    if not text:
        return ""

    def dict_words(m: re.Match[str]) -> str:
        try:
            value = ast.literal_eval(m.group(0))
        except (ValueError, SyntaxError):
            return m.group(0).replace("'", "")
        if isinstance(value, dict):
            return powerwall_text(value) if value else "nothing"
        return m.group(0)

    def local_time(m: re.Match[str]) -> str:
        try:
            t = datetime.fromisoformat(m.group(0).replace("Z", "+00:00"))
        except ValueError:
            return m.group(0)
        if t.tzinfo is None:
            return t.strftime("%a %d %b %H:%M:%S")
        return t.astimezone(tz).strftime("%a %d %b %H:%M:%S")

    return _ISO_RE.sub(local_time, _DICT_RE.sub(dict_words, text))


def kw(watts: float) -> str:
    w = abs(watts)
    return f"{w / 1000:.2f} kW" if w >= 1000 else f"{w:.0f} W"


IDLE_W = 20.0  # below this a flow reads as idle: sensor noise, not energy moving


def power_flows(battery: float | None, grid: float | None, solar: float | None, load: float | None) -> list[dict]:
    """The Now page's power lines, with the direction in the words and never a sign: BatteryState counts battery
    + discharging / - charging and grid + importing / - exporting."""

    def flow(label: str, w: float | None, plus: str, minus: str) -> dict[str, str]:
        if w is None:
            return {"label": label, "text": "unknown", "direction": "unknown"}
        if abs(w) < IDLE_W:
            return {"label": label, "text": "idle", "direction": "idle"}
        word = plus if w > 0 else minus
        return {"label": label, "text": f"{word} {kw(w)}", "direction": word}

    return [
        flow("Battery", battery, "discharging", "charging"),
        flow("Grid", grid, "importing", "exporting"),
        flow("Solar", solar, "generating", "generating"),
        flow("Home", load, "using", "using"),
    ]
