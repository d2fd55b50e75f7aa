"""What the planner knows about the future, and how it values energy beyond the known prices.

Octopus publishes the next day's Agile prices at about 16:00 local, so before then the known prices end at 23:00
tonight. A planner that values energy left at that point at 0 empties the battery every evening and buys it back
at night. Three choices, compared by ``tools/bench_planner.py``:

- ``zero``: leftover energy is worth nothing;
- ``linear``: every stored kWh is worth a fixed price (the recent days' mean price times the discharge
  efficiency);
- ``estimate`` (default): the pricing service's price estimate (``pricing/import/estimate``, see
  ``services/pricing/estimate.py``): its equally likely price paths over the day or two after the known prices
  are the scenarios, valued as below. Without a usable estimate (none, expired, or not reaching the end of the
  known prices) the plan falls back to ``scenarios`` and says so in its ``reason``;
- ``scenarios``: each of the last 7 days' prices is a scenario for the day after the known prices; the
  optimal cost-to-go over that day (with forecast load and PV) is computed for every SOC by the DP's backward pass,
  and the mean over the scenarios is the terminal value. Averaging values, not prices, keeps each day's spread;
  each scenario is shifted to the level of the latest known day.
  It changes only when prices are published, so a replay computes it twice a day;
- ``forecast``: the plan is extended by a day of forecast prices (the mean of the same half-hour over
  the last 7 days of known prices), with forecast load and PV; the extension's cost-to-go is the value of the
  energy at the horizon's end. Only the known slots are published; the extension is never executed. Energy still
  left after the extension is credited at half the recent mean price (it will mostly be replaced by cheap night
  energy; measured slightly better than 0 or the full mean).

Everything here uses only information available at planning time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

import numpy as np

from shared.models import PriceEstimate

SLOTS_PER_DAY = 48
TAIL_END_SHARE = 0.5  # energy left after the forecast day: this share of the recent mean price
DEFAULT_LOAD_KWH = 0.4  # per half-hour, when there is no load forecast or history at all
EndValue = Literal["zero", "linear", "forecast", "scenarios", "estimate"]


def same_time_mean(past: np.ndarray, n_ahead: int, days: int = 7, quantile: float | None = None) -> np.ndarray:
    """Forecast ``n_ahead`` slots after ``past`` (a regular half-hourly series, NaN = unknown) as the mean of the
    same half-hour on the ``days`` most recent days that are in ``past``. NaN where nothing is known."""
    n_past = len(past)
    n_ahead = max(n_ahead, 0)
    j = np.arange(n_ahead)
    first_day = j // SLOTS_PER_DAY + 1  # the most recent day whose same slot is already in the past
    lags = (first_day[:, None] + np.arange(days)[None, :]) * SLOTS_PER_DAY
    idx = n_past + j[:, None] - lags
    ok = idx >= 0
    vals = np.where(ok, past[np.clip(idx, 0, max(n_past - 1, 0))] if n_past else np.nan, np.nan)
    count = np.sum(np.isfinite(vals), axis=1)
    if quantile is not None:
        out = np.full(n_ahead, np.nan)
        rows = count > 0
        if rows.any():
            out[rows] = np.nanquantile(vals[rows], quantile, axis=1)
        return out
    total = np.nansum(vals, axis=1)
    out = np.full(n_ahead, np.nan)
    np.divide(total, count, out=out, where=count > 0)
    return out


def fill_gaps(values: np.ndarray, fallback: np.ndarray | float) -> np.ndarray:
    """Replace NaN with ``fallback`` (per slot or scalar), then with the mean of what is known, then 0."""
    out = np.where(np.isfinite(values), values, fallback)
    if not np.isfinite(out).all():
        known = out[np.isfinite(out)]
        out = np.where(np.isfinite(out), out, known.mean() if known.size else 0.0)
    return out


def linear_end_value(past_prices: np.ndarray, eta_discharge: float, days: int = 7) -> float:
    """GBP per stored kWh: the mean known price of the last ``days`` days, after the discharge loss."""
    recent = past_prices[-days * SLOTS_PER_DAY :]
    recent = recent[np.isfinite(recent)]
    return float(max(recent.mean(), 0.0) * eta_discharge) if recent.size else 0.0


def estimate_paths(
    estimate: PriceEstimate | None, starts: Sequence[datetime], now: datetime, known: Mapping[datetime, float]
) -> tuple[np.ndarray | None, str | None]:
    """The estimate's price paths on ``starts`` (scenarios × slots, GBP/kWh), a known price wherever there is one:
    only the leading slots it covers without a gap. ``(None, why)`` when it cannot be used."""
    if estimate is None:
        return None, "no price estimate"
    if not estimate.is_valid(now):
        return None, f"price estimate expired at {estimate.valid_until.isoformat()}"
    column = {s.start: k for k, s in enumerate(estimate.slots)}
    paths = np.array(estimate.scenarios_gbp, dtype=float)
    cols: list[np.ndarray] = []
    for t in starts:
        if t in known:
            cols.append(np.full(len(paths), known[t]))
        elif t in column:
            cols.append(paths[:, column[t]])
        else:
            break
    if not cols:
        return None, f"price estimate does not reach {starts[0].isoformat()}" if starts else "no slots to value"
    return np.column_stack(cols), None
