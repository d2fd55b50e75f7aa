"""The executor's Home Assistant entities: battery SOC and power, the mode select, the dry-run switch, the problem
flag and the last decision. Pure data: the table depends only on the bus's names (node, service), not on state."""

from __future__ import annotations

from typing import Any

from shared.bus import Bus
from shared.ha import entity
from shared.models import ExecutorMode
from shared.topics import (
    BATTERY_STATE,
    EXECUTOR_ALERT,
    EXECUTOR_APPLIED,
    EXECUTOR_DRY_RUN,
    EXECUTOR_DRY_RUN_SET,
    EXECUTOR_MODE,
    EXECUTOR_MODE_SET,
)


def discovery(bus: Bus) -> list[tuple[str, dict[str, Any]]]:
    """The (topic, payload) of each entity, for ``shared.ha.register_discovery``."""
    return [
        entity(
            bus,
            "sensor",
            "battery_soc",
            "Battery SOC",
            BATTERY_STATE,
            device_class="battery",
            unit_of_measurement="%",
            state_class="measurement",
            value_template="{{ value_json.soc_pct }}",
            expire_after=600,
        ),
        entity(
            bus,
            "sensor",
            "battery_power",
            "Battery power",
            BATTERY_STATE,
            device_class="power",
            unit_of_measurement="W",
            state_class="measurement",
            value_template="{{ value_json.battery_power_w }}",
            expire_after=600,
        ),
        entity(
            bus,
            "select",
            "executor_mode",
            "Executor mode",
            EXECUTOR_MODE,
            command_topic=EXECUTOR_MODE_SET,
            options=[m.value for m in ExecutorMode],
        ),
        entity(
            bus,
            "switch",
            "executor_dry_run",
            "Executor dry run",
            EXECUTOR_DRY_RUN,
            command_topic=EXECUTOR_DRY_RUN_SET,
            payload_on="true",
            payload_off="false",
            state_on="true",
            state_off="false",
        ),
        entity(
            bus,
            "binary_sensor",
            "executor_problem",
            "Executor problem",
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
            "Last decision",
            EXECUTOR_APPLIED,
            value_template="{{ value_json.action or 'stand aside' }} ({{ value_json.outcome }})",
            json_attributes_topic=EXECUTOR_APPLIED,
        ),
    ]
