"""The battery and site model the planner, its baselines, the LP bound and the replay all share.

Energies are kWh per half-hour slot on the AC side unless named ``_dc``; the SOC is stored (DC) energy.
Physics (one slot, ``net = load - pv``):
- ``self_use``: a deficit is covered from the battery (down to the reserve, at most the discharge power); a PV
  surplus charges it (at most the charge power, up to full) and the rest is exported.
- ``hold``: the battery does not discharge; a deficit comes from the grid; a PV surplus still charges it.
- ``charge``: ``hold`` plus grid charging towards a target SOC at the grid-charge power.
The battery never exports (``energy_exports = pv_only``).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.models import PlannerSettings

SLOT_H = 0.5

SELF_USE, HOLD, CHARGE = 0, 1, 2
ACTION_NAMES = ("self_use", "hold", "charge")


@dataclass(frozen=True)
class BatteryModel:
    """Physical parameters (not bus-settable; they describe the hardware and the tariff's fixed parts)."""

    capacity_kwh: float = 13.5
    grid_charge_kw: float = 3.3  # grid charging in backup mode (about 1.8 kW otherwise)
    charge_kw: float = 5.0  # total charge power (PV surplus + grid)
    discharge_kw: float = 5.0
    eta_charge: float = 0.95
    eta_discharge: float = 0.95
    export_price_gbp: float = 0.15  # fixed export price when no export rates are published
    wear_gbp_per_kwh: float = 0.0  # optional cost per kWh of stored energy moved in or out
    soc_step_kwh: float = 0.05  # DP grid resolution (see dp.py for why not 0.1)

    @property
    def grid_charge_kwh(self) -> float:
        return self.grid_charge_kw * SLOT_H

    @property
    def charge_kwh(self) -> float:
        return self.charge_kw * SLOT_H

    @property
    def discharge_kwh(self) -> float:
        return self.discharge_kw * SLOT_H


@dataclass(frozen=True)
class Limits:
    """SOC bounds of one plan, in kWh of stored energy."""

    min_kwh: float  # reserve: self-use never discharges below it
    charge_cap_kwh: float  # grid charging never goes above it (PV may fill the battery beyond)


def limits_for(m: BatteryModel, settings: PlannerSettings) -> Limits:
    """The SOC bounds the bus settings give (reserve and grid-charge cap, as kWh)."""
    return Limits(
        min_kwh=m.capacity_kwh * settings.min_soc_pct / 100.0,
        charge_cap_kwh=m.capacity_kwh * settings.target_soc_cap_pct / 100.0,
    )


def step_slot(
    m: BatteryModel, lim: Limits, soc: float, action: int, target_kwh: float, load: float, pv: float
) -> tuple[float, float, float]:
    """The real (continuous) outcome of one slot: (new SOC kWh, grid import kWh, grid export kWh)."""
    net = load - pv
    room = max(m.capacity_kwh - soc, 0.0)
    if net > 0 and action == SELF_USE:
        dc = min(net / m.eta_discharge, m.discharge_kwh / m.eta_discharge, max(soc - lim.min_kwh, 0.0))
        return soc - dc, net - dc * m.eta_discharge, 0.0
    pv_in = min(max(-net, 0.0), m.charge_kwh, room / m.eta_charge)
    soc_after = soc + pv_in * m.eta_charge
    grid = max(net, 0.0)
    export = max(-net, 0.0) - pv_in
    if action == CHARGE:
        want = max(min(target_kwh, lim.charge_cap_kwh) - soc_after, 0.0) / m.eta_charge
        g = min(want, m.grid_charge_kwh, m.charge_kwh - pv_in)
        g = max(g, 0.0)
        soc_after += g * m.eta_charge
        grid += g
    return soc_after, grid, export
