"""A stand-in service that announces the Home Assistant entities the issue asks for, through ``shared.ha``.

The discovery tests run it against a real broker. It is also the reference for service authors: each entity
below says which service should own it (pricing: current price; planner: next action; executor: SOC, mode
select, dry-run switch; every service: its status, added by ``register_discovery``).
"""

from __future__ import annotations

from typing import Any

from shared.bus import Bus
from shared.ha import entity, register_discovery
from shared.runner import ServiceContext, run_service
from shared.settings import ServiceSettings


def reference_entities(bus: Bus) -> list[tuple[str, dict[str, Any]]]:
    t = bus.topics
    return [
        entity(
            bus,
            "sensor",
            "import_price",
            "Import price",
            t.import_current,
            value_template="{{ value_json.value_inc_vat }}",
            unit_of_measurement="GBP/kWh",
            state_class="measurement",
            suggested_display_precision=4,
            icon="mdi:cash",
        ),
        entity(
            bus,
            "sensor",
            "next_action",
            "Next action",
            t.plan_current,
            value_template="{{ value_json.slot.action if value_json.slot else 'unknown' }}",
            device_class="enum",
            options=["self_use", "charge", "hold", "export", "unknown"],
        ),
        entity(
            bus,
            "sensor",
            "battery_soc",
            "Battery",
            t.battery_state,
            value_template="{{ value_json.soc_pct }}",
            device_class="battery",
            unit_of_measurement="%",
            state_class="measurement",
            suggested_display_precision=0,
        ),
        entity(
            bus,
            "select",
            "mode",
            "Mode",
            t.executor_mode,
            command_topic=t.executor_mode_set,
            options=["auto", "force_charge", "hold", "off"],
        ),
        entity(
            bus,
            "switch",
            "dry_run",
            "Dry run",
            t.executor_dry_run,
            command_topic=t.executor_dry_run_set,
            payload_on="true",
            payload_off="false",
            entity_category="config",
        ),
    ]


def wire(ctx: ServiceContext[ServiceSettings]) -> None:
    register_discovery(ctx.bus, lambda: reference_entities(ctx.bus))


if __name__ == "__main__":
    raise SystemExit(run_service("hademo", ServiceSettings, wire))
