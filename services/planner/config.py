"""Planner service settings (env prefix ``BATSCHED_``). The bus-settable knobs live in ``PlannerSettings``; they start
from the environment: the peak window and the price limit from ``SafetySettings`` (shared with the executor), the
SOC limits from here. A value the environment sets is applied at start when it differs from the last start's."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.models import PlannerSettings
from shared.settings import SafetySettings
from shared.topics import PLANNER_SETTINGS

_PLANNER_DEFAULTS = PlannerSettings()
_START = "; applied at start when it differs from the value applied at the last start (a change on the bus stays "
_START += "until the environment changes)"


class PlannerServiceSettings(SafetySettings):
    planner_debounce_s: Annotated[float, Field(ge=0, le=10)] = Field(
        0.2, description="Wait this long after a new input before replanning (bursts make one plan)"
    )
    planner_lease_min: Annotated[int, Field(ge=5, le=24 * 60)] = Field(
        90, description="Plan lease: the executor drops a plan this long after it was made"
    )
    planner_horizon_slots: Annotated[int, Field(ge=2, le=192)] = Field(96, description="Published horizon")
    planner_end_value: Literal["estimate", "scenarios", "forecast", "linear", "zero"] = Field(
        "estimate", description="How energy left at the horizon's end is valued (see services/planner/horizon.py)"
    )
    battery_capacity_kwh: Annotated[float, Field(gt=0, le=200)] = Field(13.5, description="Usable capacity")
    battery_grid_charge_kw: Annotated[float, Field(gt=0, le=50)] = Field(3.3, description="Grid-charge power")
    battery_charge_kw: Annotated[float, Field(gt=0, le=50)] = Field(5.0, description="Total charge power")
    battery_discharge_kw: Annotated[float, Field(gt=0, le=50)] = Field(5.0, description="Discharge power")
    battery_eta_charge: Annotated[float, Field(gt=0.5, le=1)] = Field(0.95, description="Charge efficiency")
    battery_eta_discharge: Annotated[float, Field(gt=0.5, le=1)] = Field(0.95, description="Discharge efficiency")
    battery_wear_gbp_per_kwh: Annotated[float, Field(ge=0, le=1)] = Field(0.0, description="Cycle-wear cost")
    export_price_gbp: Annotated[float, Field(ge=-1, le=2)] = Field(
        0.15, description="Export price per kWh when no export rates are published"
    )
    default_load_kwh: Annotated[float, Field(ge=0, le=10)] = Field(
        0.4, description="Load per half-hour assumed when there is no load forecast"
    )
    # The planner's own safety values (the shared ones are in SafetySettings), e.g. from the seed's MIN_SOC.
    min_soc_pct: Annotated[float, Field(ge=0, le=100)] = Field(
        _PLANNER_DEFAULTS.min_soc_pct, description="Reserve the plan keeps (planner/min_soc_pct)" + _START
    )
    target_soc_cap_pct: Annotated[float, Field(ge=0, le=100)] = Field(
        _PLANNER_DEFAULTS.target_soc_cap_pct,
        description="Grid charging stops at this SOC (planner/target_soc_cap_pct)" + _START,
    )

    def bus_setting_values(self) -> dict[str, object]:
        """The bus settings (``planner/<name>``) this environment sets; the others are left as stored."""
        return self.given(PLANNER_SETTINGS)
