"""The executor's Home Assistant entities: the battery's level and powers, the mode select, the dry-run switch, the
override buttons and the override in force, the problem flag and the last decision. Pure data: the table depends
only on the bus's names (node, service), not on state. Names are a household's ("Battery level", "Charge now for an
hour"); ids stay.

``last_decision`` is what ``executor/last_decision`` (retained) carries: a decision in a few fields and one plain
line, so Home Assistant shows it again after a restart and its attributes stay small (``executor/applied``, the
whole decision, is an event)."""

from __future__ import annotations

from typing import Any

from shared.bus import Bus
from shared.ha import entity
from shared.models import Action, AppliedDecision, ExecutorMode, LastDecision
from shared.topics import (
    BATTERY_STATE,
    EXECUTOR_ALERT,
    EXECUTOR_DRY_RUN,
    EXECUTOR_DRY_RUN_SET,
    EXECUTOR_LAST_DECISION,
    EXECUTOR_MODE,
    EXECUTOR_MODE_SET,
    EXECUTOR_OVERRIDE,
    EXECUTOR_OVERRIDE_STATE,
)

ACTION_WORDS = {
    Action.CHARGE: "Charging the battery from the grid",
    Action.HOLD: "Holding the battery; the house runs from the grid",
    Action.SELF_USE: "The battery powers the house",
    None: "Standing aside: the Powerwall is left as it is",
}
OUTCOME_WORDS = {
    "applied": "applied",
    "unchanged": "already in place",
    "dry_run": "dry run, nothing sent",
    "stood_aside": "stood aside",
    "deferred": "waiting for a fresh reading",
    "failed": "failed",
    "mismatch": "the Powerwall reads back differently",
    "grid_down_after_write": "the grid went down after the change",
}
SUMMARY_MAX = 200  # LastDecision.summary's limit (HA keeps states up to 255 characters)
# (object id, name, action or None to cancel, icon): each sends an override until an hour from the press
OVERRIDES = (
    ("override_charge", "Charge now for an hour", "charge", "mdi:battery-charging-high"),
    ("override_hold", "Hold the battery for an hour", "hold", "mdi:battery-lock"),
    ("override_self_use", "Battery powers the house for an hour", "self_use", "mdi:home-battery"),
    ("override_cancel", "Cancel override", None, "mdi:cancel"),
)


def last_decision(applied: AppliedDecision) -> LastDecision:
    """The few fields Home Assistant shows of a decision, with the rule that changed or blocked it, if one did."""
    rule = next((r for r in applied.rules if r.verdict != "pass"), None)
    line = f"{ACTION_WORDS[applied.action]} ({OUTCOME_WORDS.get(applied.outcome, applied.outcome)})"
    if rule is not None and rule.detail:
        line += f": {rule.detail}"
    return LastDecision(
        generated_at=applied.generated_at,
        decision_id=applied.decision_id,
        action=applied.action,
        requested_action=applied.requested_action,
        outcome=applied.outcome,
        mode=applied.mode,
        dry_run=applied.dry_run,
        rule=rule.rule if rule else None,
        summary=line if len(line) <= SUMMARY_MAX else line[: SUMMARY_MAX - 1] + "…",
        soc_pct=applied.soc_pct,
    )


def _power(bus: Bus, object_id: str, name: str, field: str, icon: str) -> tuple[str, dict[str, Any]]:
    return entity(
        bus, "sensor", object_id, name, BATTERY_STATE, device_class="power", unit_of_measurement="W",
        state_class="measurement", suggested_display_precision=0, icon=icon,
        value_template=f"{{{{ value_json.{field} if value_json.{field} is not none else None }}}}", expire_after=600,
    )  # fmt: skip


def _override(object_id: str, name: str, action: str | None, icon: str, bus: Bus) -> tuple[str, dict[str, Any]]:
    if action is None:
        template = '{"action": null, "reason": "Home Assistant"}'
    else:  # rendered by Home Assistant at the press: an hour from then, with its UTC offset
        template = (
            f'{{"action": "{action}", "until": "{{{{ (now() + timedelta(hours=1)).isoformat() }}}}", '
            '"reason": "Home Assistant"}'
        )
    return entity(bus, "button", object_id, name, None, command_topic=EXECUTOR_OVERRIDE, command_template=template,
                  icon=icon)  # fmt: skip


def discovery(bus: Bus) -> list[tuple[str, dict[str, Any]]]:
    """The (topic, payload) of each entity, for ``shared.ha.register_discovery``."""
    return [
        entity(
            bus,
            "sensor",
            "battery_soc",
            "Battery level",
            BATTERY_STATE,
            device_class="battery",
            unit_of_measurement="%",
            state_class="measurement",
            suggested_display_precision=0,
            value_template="{{ value_json.soc_pct }}",
            expire_after=600,
        ),
        _power(bus, "battery_power", "Battery power (+ discharging)", "battery_power_w", "mdi:home-battery"),
        _power(bus, "grid_power", "Grid power (+ importing)", "grid_power_w", "mdi:transmission-tower"),
        _power(bus, "solar_power", "Solar power", "solar_power_w", "mdi:solar-power"),
        _power(bus, "home_power", "Home power", "load_power_w", "mdi:home-lightning-bolt"),
        entity(
            bus,
            "select",
            "executor_mode",
            "Battery control mode",
            EXECUTOR_MODE,
            command_topic=EXECUTOR_MODE_SET,
            options=[m.value for m in ExecutorMode],
            icon="mdi:tune",
        ),
        entity(
            bus,
            "switch",
            "executor_dry_run",
            "Dry run (decide, change nothing)",
            EXECUTOR_DRY_RUN,
            command_topic=EXECUTOR_DRY_RUN_SET,
            payload_on="true",
            payload_off="false",
            state_on="true",
            state_off="false",
            entity_category="config",
        ),
        entity(
            bus,
            "binary_sensor",
            "executor_problem",
            "Battery control problem",
            EXECUTOR_ALERT,
            device_class="problem",
            value_template="{{ 'OFF' if value_json.code == 'ok' else 'ON' }}",
            json_attributes_topic=EXECUTOR_ALERT,
            json_attributes_template="{{ {'code': value_json.code, 'message': value_json.message} | tojson }}",
        ),
        entity(
            bus,
            "sensor",
            "last_decision",
            "Last battery decision",
            EXECUTOR_LAST_DECISION,
            value_template="{{ value_json.summary }}",
            json_attributes_topic=EXECUTOR_LAST_DECISION,
            json_attributes_template=(
                '{"action": {{ value_json.action | tojson }}, "outcome": {{ value_json.outcome | tojson }}, '
                '"rule": {{ value_json.rule | tojson }}, "mode": {{ value_json.mode | tojson }}, '
                '"decided_at": {{ value_json.generated_at | tojson }}}'
            ),
            icon="mdi:head-cog",
        ),
        entity(
            bus,
            "sensor",
            "override_in_force",
            "Battery override",
            EXECUTOR_OVERRIDE_STATE,
            value_template="{{ value_json.summary }}",  # "Charge until 05:30 (to 90 %)" or "None in force"
            json_attributes_topic=EXECUTOR_OVERRIDE_STATE,
            json_attributes_template=(
                '{"action": {{ value_json.action | tojson }}, "until": {{ value_json.until | tojson }}, '
                '"target_soc_pct": {{ value_json.target_soc_pct | tojson }}}'
            ),
            icon="mdi:hand-back-right",
        ),
        *(_override(*o, bus) for o in OVERRIDES),
    ]
