"""The accounting service's Home Assistant entities: today's money and since install, from ``accounting/money``.

Money is a ``monetary`` sensor in GBP shown to the penny with state class ``total`` (HA's only one for money):
today's figures restart each day, the since-install ones only grow or shrink with real savings or losses.
"""

from __future__ import annotations

from typing import Any

from shared.bus import Bus
from shared.ha import entity
from shared.topics import ACCOUNTING_MONEY

# object id -> (name, period, field, icon)
MONEY = {
    "cost_today": ("Electricity cost today", "today", "actual_cost_gbp", "mdi:cash"),
    "saved_today_no_battery": ("Saved today vs no battery", "today", "saved_vs_no_battery_gbp", "mdi:piggy-bank"),
    "saved_today_self_use": ("Saved today vs self-use", "today", "saved_vs_self_use_gbp", "mdi:piggy-bank"),
    "saved_total_no_battery": (
        "Saved since install vs no battery", "since_install", "saved_vs_no_battery_gbp", "mdi:piggy-bank-outline",
    ),
    "saved_total_self_use": (
        "Saved since install vs self-use", "since_install", "saved_vs_self_use_gbp", "mdi:piggy-bank-outline",
    ),
}  # fmt: skip


def discovery(bus: Bus) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for object_id, (name, period, field, icon) in MONEY.items():
        value = f"value_json.{period}.{field}"
        out.append(
            entity(
                bus, "sensor", object_id, name, ACCOUNTING_MONEY,
                value_template=f"{{{{ {value} if value_json.{period} and {value} is not none else None }}}}",
                device_class="monetary", unit_of_measurement="GBP", state_class="total",
                suggested_display_precision=2, icon=icon,
                **({"json_attributes_topic": ACCOUNTING_MONEY,
                    "json_attributes_template": '{"note": {{ value_json.stored_value_note | tojson }}}'}
                   if object_id == "saved_total_self_use" else {}),
            )
        )  # fmt: skip
    return out
