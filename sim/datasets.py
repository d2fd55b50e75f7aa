"""Loaders for the real data bundled in ``sim/data`` (see its README for sources, licences and time semantics).

Used by the simulators, the benchmarks and the tests, so each dataset is parsed one way only.
All series are indexed by aware UTC half-hour slot starts unless said otherwise.

pandas is imported by the loaders that return pandas objects only: the pricing service reads the Agile history
for its cold start through ``agile_price_arrays`` (the standard library's csv), in an image without pandas.
"""

from __future__ import annotations

import csv
import gzip
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

DATA = Path(__file__).resolve().parent / "data"
LONDON = "Europe/London"


@cache
def agile_price_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Agile import prices, region J: (UTC slot starts as UNIX seconds, GBP/kWh incl. VAT), sorted by time
    (2021-09-01 … 2024-05-14). Read-only arrays (cached)."""
    with gzip.open(DATA / "agile_import_J.csv.gz", "rt", newline="") as f:
        rows = list(csv.DictReader(f))
    starts = np.array([int(datetime.fromisoformat(r["slot_start_utc"]).timestamp()) for r in rows], dtype=np.int64)
    values = np.array([float(r["value_inc_vat_p"]) for r in rows]) / 100.0
    order = np.argsort(starts, kind="stable")
    starts, values = starts[order], values[order]
    starts.flags.writeable = values.flags.writeable = False
    return starts, values


@cache
def agile_prices() -> pd.Series:
    """Agile import prices, region J, GBP/kWh incl. VAT, indexed by UTC slot start (2021-09-01 … 2024-05-14)."""
    import pandas as pd

    starts, values = agile_price_arrays()
    index = pd.DatetimeIndex(pd.to_datetime(starts, unit="s", utc=True))
    return pd.Series(values.copy(), index=index, name="gbp_kwh")


@cache
def agile_prices_through(end: str) -> pd.Series:
    """The Agile prices continued past their end to ``end`` (ISO date, UTC) by repeating them 364 days later (same
    weekday and UTC time): illustrative prices for dates the bundled data does not reach (e.g. 2024-10-27)."""
    import pandas as pd  # the simulators' extra only: the services' image has no pandas

    s = agile_prices()
    stop = pd.Timestamp(end, tz="UTC")
    parts = [s]
    while parts[-1].index[-1] < stop:
        shifted = s.copy()
        shifted.index = s.index + pd.Timedelta(days=364 * len(parts))
        parts.append(shifted[shifted.index > parts[-1].index[-1]])
    out = pd.concat(parts)
    return out[out.index < stop]


@cache
def household_hourly() -> pd.DataFrame:
    """The household's hourly rows as published: ``local_time`` (naive Europe/London), ``elec_import_kwh``."""
    import pandas as pd

    return pd.read_csv(DATA / "household_hourly_import.csv.gz", na_values=["NA"])


@cache
def household_load() -> pd.Series:
    """Half-hourly grid import (kWh), UTC slot starts, 2021-10-01 … 2023-07-01.

    A row stamped HH (local) sums the half-hours ending HH:00 and HH:30, i.e. it covers [HH-0:30, HH+0:30); it is
    split evenly over those two slots. The missing spring-forward hour and the merged autumn hour leave a few
    slots that are filled from their neighbours (at most two slots). Before 2022-09-20 this is gross load;
    afterwards it is net of self-consumed PV.
    """
    import pandas as pd

    df = household_hourly()
    local = pd.to_datetime(df["local_time"])
    stamps = local.dt.tz_localize(LONDON, ambiguous=True, nonexistent="shift_forward").dt.tz_convert("UTC")
    half = df["elec_import_kwh"].to_numpy(dtype=float) / 2.0
    first = pd.Series(half, index=pd.DatetimeIndex(stamps - pd.Timedelta(minutes=30)))
    second = pd.Series(half, index=pd.DatetimeIndex(stamps))
    s = pd.concat([first, second])
    s = s[~s.index.duplicated(keep="first")].sort_index()
    full = pd.date_range(s.index[0], s.index[-1], freq="30min")
    return s.reindex(full).ffill(limit=2).bfill(limit=2).rename("load_kwh")


PV_INSTALLED_DAY = "2022-09-20"  # local date


def gross_load_year() -> pd.Series:
    """The gross-load period (before the household's PV): 2021-10-01 … 2022-09-19 local, half-hourly kWh."""
    import pandas as pd

    s = household_load()
    return s[(s.index >= pd.Timestamp("2021-10-01", tz=LONDON)) & (s.index < pd.Timestamp(PV_INSTALLED_DAY, tz=LONDON))]


@cache
def _gross_load_table() -> tuple[pd.Series, frozenset[int]]:
    import pandas as pd

    src = gross_load_year()
    loc = src.index.tz_convert(LONDON)
    iso = loc.isocalendar()
    table = pd.DataFrame(
        {"week": iso.week.to_numpy(), "dow": iso.day.to_numpy(), "hhmm": loc.hour * 60 + loc.minute, "v": src.values}
    ).drop_duplicates(["week", "dow", "hhmm"])
    return table.set_index(["week", "dow", "hhmm"])["v"], frozenset(int(w) for w in table["week"])


def gross_load_for(slots: pd.DatetimeIndex) -> np.ndarray:
    """The gross-load year mapped onto any ``slots`` (kWh per slot) by ISO week, weekday and local wall time
    (weeks the year lacks take the nearest earlier week): a realistic house for dates outside the data."""
    import pandas as pd

    lookup, weeks = _gross_load_table()
    tl = slots.tz_convert(LONDON)
    tiso = tl.isocalendar()
    week = tiso.week.to_numpy().astype(int)
    for k, wk in enumerate(week):
        while wk not in weeks:
            wk = wk - 1 if wk > 1 else 52
        week[k] = wk
    keys = pd.MultiIndex.from_arrays([week, tiso.day.to_numpy(), tl.hour * 60 + tl.minute])
    out = lookup.reindex(keys).to_numpy()
    return pd.Series(out).ffill().bfill().to_numpy()


@cache
def pvgis_hourly_w_per_kwp() -> pd.Series:
    """Modelled PV power (W per kWp) for each hour of 2016, indexed by the hour's UTC start."""
    import pandas as pd

    df = pd.read_csv(DATA / "pvgis_hourly_1kwp.csv.gz")
    idx = pd.to_datetime(df["time_utc"], utc=True).dt.floor("h")
    return pd.Series(df["pv_w"].to_numpy(dtype=float), index=pd.DatetimeIndex(idx), name="w_per_kwp")


def pv_energy(slots: pd.DatetimeIndex, kwp: float) -> np.ndarray:
    """PV energy (kWh) per half-hour slot for a ``kwp`` system, from the 2016 PVGIS profile by day of year and UTC
    time of day (the hour's mean power applies to both of its half-hours)."""

    profile = pvgis_hourly_w_per_kwp()
    table = profile.to_numpy().reshape(-1, 24)  # 366 days × 24 hours
    utc = slots.tz_convert("UTC")
    doy = np.minimum(utc.day_of_year.to_numpy() - 1, table.shape[0] - 1)
    return table[doy, utc.hour.to_numpy()] * kwp / 1000.0 * 0.5


@cache
def household_daily() -> pd.DataFrame:
    """Daily totals incl. hand-read PV yield, indexed by local date."""
    import pandas as pd

    df = pd.read_csv(DATA / "household_daily.csv")
    df.index = pd.to_datetime(df.pop("date"), format="%d/%m/%y").dt.date
    return df
