"""One home's planning inputs and the one entry point that plans a home: the planner service and every home of a
fleet go through ``plan_home``, so a fleet home is planned exactly as a single home (price history, the price
estimate, manual windows and Octopus sessions included)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.planner.optimiser import PlannerConfig, plan
from shared.models import (
    BatteryState,
    EnergyForecast,
    Plan,
    PlannerSettings,
    PriceEstimate,
    RateSeries,
    SessionList,
    WindowList,
)
from shared.settings import SafetySettings
from shared.topics import PLANNER_SETTINGS

HISTORY = timedelta(days=10)  # past import prices kept to forecast prices beyond the published ones


def initial_settings(s: SafetySettings) -> PlannerSettings:
    """A home's planner settings before anyone changed them on the bus: the safety values from the environment
    (the shared ones, and the planner's SOC limits where the settings have them)."""
    return PlannerSettings(**{n: getattr(s, n) for n in PLANNER_SETTINGS if hasattr(s, n)})


@dataclass
class HomeInputs:
    """The latest validated inputs of one home (None: not received, or cleared) and its recent import prices."""

    rates: RateSeries | None = None
    export_rates: RateSeries | None = None
    estimate: PriceEstimate | None = None  # values energy beyond the known prices; never a price
    pv: EnergyForecast | None = None
    load: EnergyForecast | None = None
    battery: BatteryState | None = None
    windows: WindowList | None = None  # manual windows (executor/windows): fixed in the plan
    sessions: SessionList | None = None  # Octopus sessions (pricing/sessions): fixed in the plan
    history: dict[datetime, float] = field(default_factory=dict)  # UTC slot start -> GBP/kWh

    def remember(self, rates: RateSeries, now: datetime) -> None:
        """Keep the import prices of the last ``HISTORY`` for the price forecast."""
        for r in rates.rates:
            self.history[r.start] = r.value_inc_vat
        cutoff = now - HISTORY
        for start in [s for s in self.history if s < cutoff]:
            del self.history[start]

    def set(self, name: str, value: object, now: datetime) -> None:
        """A new input (None forgets it); new import prices are also remembered."""
        setattr(self, name, value)
        if name == "rates" and isinstance(value, RateSeries):
            self.remember(value, now)


def plan_home(home: HomeInputs, settings: PlannerSettings, now: datetime, config: PlannerConfig) -> Plan:
    return plan(
        home.rates,
        home.pv,
        home.load,
        home.battery,
        settings,
        now,
        export_prices=home.export_rates,
        price_history=home.history,
        price_estimate=home.estimate,
        config=config,
        windows=home.windows,
        sessions=home.sessions,
    )
