"""The pricing service's Home Assistant entities: the price now and the next cheapest slot."""

from __future__ import annotations

from typing import Any

from shared.bus import Bus
from shared.ha import entity
from shared.topics import IMPORT_CURRENT


def discovery(bus: Bus) -> list[tuple[str, dict[str, Any]]]:
    return [
        entity(
            bus,
            "sensor",
            "agile_price_now",
            "Electricity price now",
            IMPORT_CURRENT,
            unit_of_measurement="GBP/kWh",
            state_class="measurement",
            suggested_display_precision=4,
            value_template="{{ value_json.value_inc_vat if value_json.known else None }}",
            json_attributes_topic=IMPORT_CURRENT,
            icon="mdi:currency-gbp",
        ),
        entity(
            bus,
            "sensor",
            "agile_next_cheapest_slot",
            "Cheapest upcoming half-hour",
            IMPORT_CURRENT,
            device_class="timestamp",
            value_template="{{ value_json.next_cheapest_start or None }}",
            json_attributes_topic=IMPORT_CURRENT,
            json_attributes_template='{"price_gbp_per_kwh": {{ value_json.next_cheapest_value_inc_vat | tojson }}}',
            icon="mdi:clock-start",
        ),
    ]
