"""The planner's Home Assistant entities: what the battery does now, the plan's money, the settings to change.

Names are for a household ("Battery plan now", "Plan saving vs self-use"); ids stay stable. Money is a
``monetary`` sensor in GBP shown to the penny. The plan's figures are forecasts, not meters, so they have no
state class (HA would otherwise keep long-term statistics of a value that is replaced, not accumulated).
"""

from __future__ import annotations

import json
from typing import Any

from shared.bus import Bus
from shared.ha import entity
from shared.models import Action, PlannerSettings
from shared.topics import PLANNER_REPLAN, PLANNER_SETTING, PLANNER_SETTING_SET

# setting -> (name, unit, step); the bounds come from the settings model (PlannerSettings)
NUMBERS: dict[str, tuple[str, str, float]] = {
    "min_soc_pct": ("Battery reserve", "%", 1),
    "target_soc_cap_pct": ("Grid charge limit", "%", 1),
    "max_charge_price_gbp": ("Max charge price", "GBP/kWh", 0.001),
}
TIMES = {"peak_start_local": "Peak start (local time)", "peak_end_local": "Peak end (local time)"}
HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


def bounds(name: str) -> tuple[float, float]:
    """A numeric setting's (min, max), as the settings model validates it."""
    meta = PlannerSettings.model_fields[name].metadata
    lo = next(m.ge for m in meta if getattr(m, "ge", None) is not None)
    hi = next(m.le for m in meta if getattr(m, "le", None) is not None)
    return float(lo), float(hi)


def money(bus: Bus, object_id: str, name: str, topic: Any, template: str, **extra: Any) -> tuple[str, dict]:
    return entity(
        bus, "sensor", object_id, name, topic, value_template=template, device_class="monetary",
        unit_of_measurement="GBP", suggested_display_precision=2, **extra,
    )  # fmt: skip


def discovery(bus: Bus) -> list[tuple[str, dict[str, Any]]]:
    t = bus.topics
    saving = "{{ value_json.comparison.%s.saving_gbp if value_json.comparison else None }}"
    out = [
        entity(
            bus,
            "sensor",
            "next_action",
            "Battery plan now",
            t.plan_current,
            device_class="enum",
            options=[a.value for a in Action],
            # no slot in progress (no plan reaches now): unknown, not a guess
            value_template="{{ value_json.slot.action if value_json.slot else None }}",
            json_attributes_topic=t.plan_current,
            json_attributes_template=json.dumps(
                {
                    "reason": "{{ value_json.slot.reason if value_json.slot else None }}",
                    "detail": "{{ value_json.slot.reason_detail if value_json.slot else None }}",
                    "until": "{{ value_json.slot.end if value_json.slot else None }}",
                }
            ),
            icon="mdi:battery-clock",
        ),
        entity(
            bus,
            "sensor",
            "next_charge",
            "Next grid charge",
            t.plan_current,
            device_class="timestamp",
            value_template="{{ value_json.next_charge_start or None }}",
            icon="mdi:battery-charging-high",
        ),
        money(
            bus,
            "plan_expected_cost",
            "Plan cost",
            t.plan,
            "{{ value_json.expected_cost_gbp }}",
            json_attributes_topic=t.plan,
            json_attributes_template=(
                '{"until": {{ value_json.slots[-1].end | tojson }}, "status": {{ value_json.status | tojson }}, '
                '"end_soc_pct": {{ value_json.end_soc_pct | tojson }}, '
                '"note": {{ value_json.comparison_note | tojson }}}'
            ),
            icon="mdi:cash-clock",
        ),
        money(
            bus, "plan_saving_self_use", "Plan saving vs self-use", t.plan, saving % "self_use", icon="mdi:piggy-bank"
        ),
        money(
            bus,
            "plan_saving_no_battery",
            "Plan saving vs no battery",
            t.plan,
            saving % "no_battery",
            icon="mdi:piggy-bank-outline",
        ),
        entity(
            bus,
            "sensor",
            "plan_end_soc",
            "Battery at end of plan",
            t.plan,
            device_class="battery",
            unit_of_measurement="%",
            state_class="measurement",
            suggested_display_precision=0,
            value_template="{{ value_json.end_soc_pct if value_json.end_soc_pct is not none else None }}",
        ),
        entity(
            bus,
            "button",
            "replan",
            "Replan now",
            None,
            command_topic=PLANNER_REPLAN,
            payload_press='{"reason": "Home Assistant"}',
            icon="mdi:refresh",
        ),
    ]
    for name, (label, unit, step) in NUMBERS.items():
        lo, hi = bounds(name)
        out.append(
            entity(
                bus, "number", name, label, PLANNER_SETTING.at(setting=name),
                command_topic=PLANNER_SETTING_SET.at(setting=name), unit_of_measurement=unit,
                min=lo, max=hi, step=step, mode="box", entity_category="config",
            )
        )  # fmt: skip
    for name, label in TIMES.items():
        out.append(
            entity(
                bus, "text", name, label, PLANNER_SETTING.at(setting=name),
                command_topic=PLANNER_SETTING_SET.at(setting=name), pattern=HHMM, min=5, max=5,
                entity_category="config", icon="mdi:clock-outline",
            )
        )  # fmt: skip
    return out
