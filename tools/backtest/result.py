"""What a backtest produces: per-slot results of each strategy over the same inputs (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

LOCAL_TZ = "Europe/London"

# Display order and labels; the bound is marked as such wherever it is shown.
LABELS = {
    "no_battery": "No battery",
    "self_use": "Self-use",
    "seed_rule": "Seed rule (cheapest slots)",
    "batsched": "batsched",
    "bound": "Perfect-foresight bound (LP)",
}


@dataclass
class StrategyRun:
    name: str
    import_kwh: np.ndarray
    export_kwh: np.ndarray
    cost_gbp: np.ndarray  # per slot: import cost minus export earnings
    soc_pct: np.ndarray | None = None  # at the end of each slot
    action: np.ndarray | None = None  # per slot: self_use / hold / charge
    total_gbp: float | None = None  # when the strategy's own total differs from the slot sum (e.g. end value)
    note: str = ""

    @property
    def label(self) -> str:
        return LABELS.get(self.name, self.name)

    @property
    def total(self) -> float:
        return float(self.cost_gbp.sum()) if self.total_gbp is None else float(self.total_gbp)


@dataclass
class BacktestResult:
    slots: pd.DatetimeIndex  # UTC slot starts
    price: np.ndarray  # GBP/kWh
    load: np.ndarray  # kWh
    pv: np.ndarray  # kWh
    runs: dict[str, StrategyRun]
    settings: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def local(self) -> pd.DatetimeIndex:
        return self.slots.tz_convert(LOCAL_TZ)

    def annual(self) -> dict[str, dict[str, float]]:
        """Totals per strategy and the saving against no battery."""
        base = self.runs["no_battery"].total if "no_battery" in self.runs else None
        out = {}
        for name, run in self.runs.items():
            out[name] = {
                "cost_gbp": round(run.total, 2),
                "import_kwh": round(float(run.import_kwh.sum()), 1),
                "export_kwh": round(float(run.export_kwh.sum()), 1),
            }
            if base is not None:
                out[name]["saving_vs_no_battery_gbp"] = round(base - run.total, 2)
        return out

    def monthly(self) -> pd.DataFrame:
        """Cost per local month (rows) and strategy (columns), from the per-slot costs."""
        months = self.local.strftime("%Y-%m")
        frame = pd.DataFrame({name: run.cost_gbp for name, run in self.runs.items()}, index=months)
        return frame.groupby(level=0, sort=True).sum()

    def per_slot(self) -> pd.DataFrame:
        cols: dict[str, Any] = {
            "slot_start_utc": self.slots.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "local_time": self.local.strftime("%Y-%m-%d %H:%M%z"),
            "price_gbp_kwh": self.price,
            "load_kwh": self.load,
            "pv_kwh": self.pv,
        }
        for name, run in self.runs.items():
            if run.action is not None:
                cols[f"{name}_action"] = run.action
            if run.soc_pct is not None:
                cols[f"{name}_soc_pct"] = np.round(run.soc_pct, 2)
            cols[f"{name}_import_kwh"] = np.round(run.import_kwh, 4)
            cols[f"{name}_export_kwh"] = np.round(run.export_kwh, 4)
            cols[f"{name}_cost_gbp"] = np.round(run.cost_gbp, 5)
        return pd.DataFrame(cols)
