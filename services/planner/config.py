"""Planner service settings (env prefix ``BATSCHED_``). The bus-settable knobs live in ``PlannerSettings``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.settings import ServiceSettings

_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"
_START = "; applied at start when it differs from the value applied at the last start (a change on the bus stays "
_START += "until the environment changes)"


class PlannerServiceSettings(ServiceSettings):
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
    # Start values of the bus settings (planner/<name>), e.g. from the seed's MAX_AGILE_PRICE_PPK; unset = as stored.
    min_soc_pct: Annotated[float, Field(ge=0, le=100)] | None = Field(
        None, description="Reserve the plan keeps (planner/min_soc_pct)" + _START
    )
    max_charge_price_gbp: Annotated[float, Field(ge=-1, le=2)] | None = Field(
        None, description="Planner price limit, GBP/kWh (planner/max_charge_price_gbp)" + _START
    )
    target_soc_cap_pct: Annotated[float, Field(ge=0, le=100)] | None = Field(
        None, description="Grid charging stops at this SOC (planner/target_soc_cap_pct)" + _START
    )
    peak_start_local: Annotated[str, Field(pattern=_HHMM)] | None = Field(
        None, description="Peak start the plan avoids (planner/peak_start_local)" + _START
    )
    peak_end_local: Annotated[str, Field(pattern=_HHMM)] | None = Field(
        None, description="Peak end (planner/peak_end_local)" + _START
    )

    def bus_setting_values(self) -> dict[str, object]:
        """The bus settings this environment sets (the others are left as stored)."""
        names = ("min_soc_pct", "max_charge_price_gbp", "target_soc_cap_pct", "peak_start_local", "peak_end_local")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}
