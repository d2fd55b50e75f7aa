"""Run the same household, battery and planner over the same period on each tariff (``batsched compare-tariffs``).

Every tariff goes through the backtest's engine (``tools.backtest.engine.run_backtest``: the planner's own replay,
battery model and rules, as ``make bench-planner``), with that tariff's historical rates on the same half-hour
axis. What the planner may see follows the tariff: Agile and Tracker prices appear at 16:00 for the next day,
the others are known as far ahead as the pricing service publishes them (``replay.known_ahead_end``). Intelligent
Octopus Go is counted without smart-charge dispatches (they depend on a car), i.e. its off-peak window only.
Standing charges (when asked for) are added per local day; they do not depend on the battery.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from services.planner.battery import BatteryModel
from services.planner.replay import HISTORY_DAYS, known_ahead_end
from shared.models import PlannerSettings
from tools.backtest import sources
from tools.backtest.engine import Scenario, run_backtest
from tools.tariffs.catalog import TariffChoice
from tools.tariffs.rates import RateCache

Fetch = Callable[[str, datetime, datetime], pd.Series]  # (product, start, end) -> GBP/kWh by UTC slot


@dataclass(frozen=True)
class TariffResult:
    name: str
    import_code: str
    export_code: str
    days: float
    consumption_kwh: float
    cost_no_battery_gbp: float
    cost_battery_gbp: float
    seconds: float
    standing_gbp: float = 0.0  # import and export standing charges over the period

    @property
    def per_year(self) -> float:
        return 365.0 / self.days

    @property
    def annual_no_battery_gbp(self) -> float:
        return self.cost_no_battery_gbp * self.per_year

    @property
    def annual_battery_gbp(self) -> float:
        return self.cost_battery_gbp * self.per_year

    @property
    def annual_saving_gbp(self) -> float:
        return self.annual_no_battery_gbp - self.annual_battery_gbp

    @property
    def annual_standing_gbp(self) -> float:
        return self.standing_gbp * self.per_year

    @property
    def annual_total_battery_gbp(self) -> float:
        """With the battery, standing charges included: the figure to choose a tariff by."""
        return self.annual_battery_gbp + self.annual_standing_gbp

    @property
    def effective_p_per_kwh(self) -> float:
        """What each kWh the house used cost on average with the battery (export earnings netted), p/kWh."""
        return self.cost_battery_gbp / self.consumption_kwh * 100.0 if self.consumption_kwh else float("nan")

    @property
    def effective_no_battery_p_per_kwh(self) -> float:
        return self.cost_no_battery_gbp / self.consumption_kwh * 100.0 if self.consumption_kwh else float("nan")

    def row(self) -> dict[str, object]:
        return {
            "tariff": self.name,
            "import_tariff": self.import_code,
            "export_tariff": self.export_code,
            "days": round(self.days, 2),
            "consumption_kwh": round(self.consumption_kwh, 1),
            "cost_no_battery_gbp": round(self.cost_no_battery_gbp, 2),
            "cost_with_battery_gbp": round(self.cost_battery_gbp, 2),
            "annual_cost_no_battery_gbp": round(self.annual_no_battery_gbp, 2),
            "annual_cost_with_battery_gbp": round(self.annual_battery_gbp, 2),
            "annual_saving_gbp": round(self.annual_saving_gbp, 2),
            "annual_standing_charge_gbp": round(self.annual_standing_gbp, 2),
            "annual_total_with_battery_gbp": round(self.annual_total_battery_gbp, 2),
            "effective_p_per_kwh_no_battery": round(self.effective_no_battery_p_per_kwh, 2),
            "effective_p_per_kwh_with_battery": round(self.effective_p_per_kwh, 2),
        }


def fetcher(cache: RateCache, region: str) -> Fetch:
    return lambda product, start, end: cache.series(product, region, start, end)


def standing_fetcher(cache: RateCache, region: str) -> Callable[[str, datetime, datetime], float]:
    return lambda product, start, end: cache.standing_gbp(product, region, start, end)


def compare(
    tariffs: tuple[TariffChoice, ...],
    fetch: Fetch,
    load: pd.Series,
    start: datetime,
    end: datetime,
    pv: Callable[[pd.DatetimeIndex], np.ndarray] | None = None,
    model: BatteryModel | None = None,
    settings: PlannerSettings | None = None,
    forecasts: str = "perfect",
    soc0_pct: float | None = None,
    fill_gaps: int = 0,
    progress: Callable[[int], None] | None = None,
    region: str = "",
    standing: Callable[[str, datetime, datetime], float] | None = None,
) -> list[TariffResult]:
    """Each tariff over ``[start, end)``; ``progress(k)`` is told of every replayed half-hour."""
    model = model or BatteryModel()
    settings = settings or PlannerSettings()
    lo, hi = start - pd.Timedelta(days=HISTORY_DAYS), end + sources.LOOKAHEAD
    results = []
    for t in tariffs:
        t0 = time.perf_counter()
        prices = fetch(t.import_product, lo, hi)
        axis, i0, i1 = sources.window(prices, load, start, end)
        price, _ = sources.on_axis(prices, axis, i0, i1, f"{t.name} import prices", fill_outside=False)
        if t.export_product:
            exp = fetch(t.export_product, lo, hi)
            export, _ = sources.on_axis(exp, axis, i0, i1, f"{t.name} export prices", fill_outside=True)
        else:
            export = np.full(len(axis), model.export_price_gbp)
        load_kwh, _ = sources.on_axis(load, axis, i0, i1, "consumption", True, fill_gaps)
        pv_kwh = pv(axis) if pv is not None else np.zeros(len(axis))
        known = known_ahead_end(axis) if t.known_in_advance else None
        sc = Scenario(axis, price, load_kwh, pv_kwh, export, i0, i1, known)
        tick = (lambda _n, _label: progress) if progress else None
        charges = 0.0
        if standing is not None:
            charges = sum(standing(code, start, end) for code in (t.import_product, t.export_product) if code)
        res = run_backtest(sc, model, settings, forecasts, soc0_pct, ("no_battery", "batsched"), tick)  # type: ignore[arg-type]
        results.append(
            TariffResult(
                t.name,
                f"E-1R-{t.import_product}-{region}" if region else t.import_product,
                (f"E-1R-{t.export_product}-{region}" if region else t.export_product) if t.export_product else "flat",
                (i1 - i0) / 48.0,
                float(load_kwh[i0:i1].sum()),
                res.runs["no_battery"].total,
                res.runs["batsched"].total,
                time.perf_counter() - t0,
                charges,
            )
        )
    return results
