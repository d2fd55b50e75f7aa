"""Turn the command line's choices into the backtest's series: files, the Octopus API, or the bundled examples."""

from __future__ import annotations

import gzip
import json
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from services.planner.replay import HISTORY_DAYS
from shared.slots import local_midnight
from tools.backtest import inputs, octopus
from tools.backtest.inputs import InputError

LOOKAHEAD = timedelta(days=2)  # data after the period kept for plans near its end (never reported)
HISTORY = timedelta(days=HISTORY_DAYS)  # prices before the period the planner may look back at (never reported)
LOAD_HISTORY = timedelta(days=14)  # consumption before the period (the planner's own load forecast looks back 7)


def read_text(path: Path) -> str:
    if not path.exists():
        raise InputError(str(path), "file not found")
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(str(path), "not a UTF-8 text file") from None


def _is_json(text: str) -> bool:
    return text.lstrip().startswith(("{", "["))


def load_prices(path: Path) -> pd.Series:
    text = read_text(path)
    if _is_json(text):
        return inputs.parse_rates_json(json.loads(text), str(path.name))
    return inputs.parse_prices_csv(text, str(path.name))


def load_consumption(path: Path) -> pd.Series:
    text = read_text(path)
    if _is_json(text):
        return inputs.parse_consumption_json(json.loads(text), str(path.name))
    return inputs.parse_consumption_csv(text, str(path.name))


def load_pv(path: Path) -> pd.Series:
    return inputs.parse_pv_csv(read_text(path), str(path.name))


def local_range(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """``--from``/``--to`` are local dates, both included."""
    return (
        local_midnight(first) if first else None,
        local_midnight(last + timedelta(days=1)) if last else None,
    )


def octopus_prices(product: str, region: str, start: datetime, end: datetime, base_url: str) -> pd.Series:
    doc = octopus.fetch_rates(product, region, start - HISTORY, end + LOOKAHEAD, base_url)
    return inputs.parse_rates_json(doc, f"Octopus {octopus.tariff_code(product, region)}")


def octopus_consumption(mpan: str, serial: str, key: str, start: datetime, end: datetime, base_url: str) -> pd.Series:
    doc = octopus.fetch_consumption(mpan, serial, key, start - LOAD_HISTORY, end + LOOKAHEAD, base_url)
    return inputs.parse_consumption_json(doc, f"Octopus consumption {mpan}/{serial}")


def window(
    prices: pd.Series, load: pd.Series, start: datetime | None, end: datetime | None
) -> tuple[pd.DatetimeIndex, int, int]:
    """The slot axis and the reported ``[start, stop)`` on it. The axis also holds up to ``HISTORY`` before the
    period (what the planner's own forecasts and its price forecast look back at) and ``LOOKAHEAD`` after it (so
    plans near the end see the next day's prices), within the price data; like the planner benchmark."""
    period = inputs.align(load, prices, start, end)
    lo, hi = period[0], period[-1] + pd.Timedelta(minutes=30)
    axis_lo = max(lo - pd.Timedelta(HISTORY), prices.index[0])
    axis_hi = min(hi + pd.Timedelta(LOOKAHEAD), prices.index[-1] + pd.Timedelta(minutes=30))
    axis = pd.date_range(axis_lo, axis_hi, freq="30min", inclusive="left")
    i0 = int(axis.searchsorted(lo))
    return axis, i0, i0 + len(period)


def on_axis(
    series: pd.Series, axis: pd.DatetimeIndex, i0: int, i1: int, what: str, fill_outside: bool, fill_gaps: int = 0
) -> tuple[np.ndarray, list[pd.Timestamp]]:
    """The series on the axis and the slots that were filled. Inside the reported period it must be complete: an
    error names the first missing slot, unless at most ``fill_gaps`` are missing, which then take the period's
    mean (and are listed). Outside the period, gaps are NaN (prices: not published) or the period's mean (load,
    PV), as in the planner benchmark."""
    values = series.reindex(axis).to_numpy(dtype=float)
    missing = np.isnan(values[i0:i1])
    filled: list[pd.Timestamp] = []
    if missing.any():
        first = axis[i0 + int(np.argmax(missing))]
        count = int(missing.sum())
        if count > fill_gaps:
            hint = f" (--fill-gaps {count} fills them with the mean)" if fill_outside else ""
            raise InputError(
                what, f"{count} half-hour(s) missing in the period, first at {first:%Y-%m-%dT%H:%MZ}{hint}"
            )
        filled = [axis[i0 + k] for k in np.flatnonzero(missing)]
    if fill_outside or filled:
        mean = float(np.nanmean(values[i0:i1]))
        if fill_outside:
            values = np.where(np.isnan(values), mean, values)
        else:
            values[i0:i1] = np.where(np.isnan(values[i0:i1]), mean, values[i0:i1])
    return values, filled
