"""Prices beyond the published ones: an estimate learned from the tariff's own history. Pure: arrays in, arrays out.

An Agile-like tariff publishes a day at a time: the GB day-ahead auction's delivery day, 23:00 to 23:00 local,
announced at about 16:00 the day before. What follows the last published slot is unknown; this module estimates
it, for every half-hour of the next ``hours`` (48 by default), as a set of equally likely price paths plus their
per-slot median and a band (the paths' 5–95 % quantiles: analogs are a little too alike, and measured on 2022-2024
these hold about 80 % of real prices). It is never a price: nothing may charge on it (see ``PriceEstimate``).

Method ``analog-v1`` (an analog ensemble; measured against naive baselines by ``make bench-price-estimate``):

1. The history becomes a matrix of delivery days × 48 positions by local wall time (a clock-change day's doubled
   hour is averaged, its missing hour interpolated).
2. The latest complete published day (the anchor) is described by three level-free numbers: how its last four
   hours sit against its mean (prices falling into the night tend to go on falling: wind arriving), how its mean
   sits against the last week's, and its spread within the day.
3. The ``analogs`` past days that looked most like it (standardised distance over the last ``window_days``) each
   give one path: what really followed them, moved from their level to the anchor's level.
4. The last ``recent_days`` days (the anchor and those before it) give one path each too, moved to the anchor's
   level: they carry this week's shape (the season, the solar dip) that analogs from months ago may lack.
   Measured by ``make bench-planner``, the mix is never worse than either kind alone.

A path keeps a real day's spread (cheap night, dear evening), which the planner needs: a smooth average would
hide what stored energy is worth. Averaging over analog days, rather than extrapolating one, hedges the level,
which no price-only method foresees well (it follows the wind). With fewer than ``min_days`` days of its own, the
estimator also draws analogs from ``library`` (the bundled Agile history, same season) for a cold start; the
features are level-free, so another region's or year's days fit.

``with_external`` re-centres the paths on an external forecast (AgilePredict) while keeping the analogs' spread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from shared.models import SLOT, EstimateSlot, PriceEstimate
from shared.timeseries import DAY_S, SLOT_S, local_seconds, to_datetimes, utc_seconds

POSITIONS = 48  # half-hours of a 24-hour delivery day
DAY_START = time(23, 0)  # the day-ahead auction's delivery day starts at 23:00 local
METHOD = "analog-v1"
_TAIL_POSITIONS = 8  # the anchor day's last four hours


@dataclass(frozen=True)
class EstimateParams:
    analogs: int = 14  # paths from the past days that looked like the anchor
    recent_days: int = 7  # and one path from each of the last days (the anchor and the days before it)
    window_days: int = 120  # how far back analogs are sought (the store keeps a little more)
    min_days: int = 28  # fewer complete days of its own than this: analogs from the library too (cold start)
    season_days: int = 45  # library days within this many days of the year of the anchor
    band: tuple[float, float] = (0.05, 0.95)  # of the paths: about 80 % of real prices inside (measured)
    max_gap_positions: int = 4  # a day missing more positions than this is not used


@dataclass(frozen=True)
class Days:
    """Delivery days as a matrix: ``first`` is the date of row 0, rows are consecutive days, NaN = unknown."""

    first: date
    values: np.ndarray  # (days, POSITIONS) GBP/kWh

    @property
    def last(self) -> date:
        return self.first + timedelta(days=len(self.values) - 1)

    def complete(self) -> np.ndarray:
        return np.isfinite(self.values).all(axis=1)


@dataclass(frozen=True)
class Estimate:
    starts: list[datetime]  # UTC slot starts, from the end of the last published slot
    paths: np.ndarray  # (analogs, slots) GBP/kWh, equally likely
    median: np.ndarray
    low: np.ndarray
    high: np.ndarray
    method: str
    learned_from: str
    own_days: int  # complete delivery days of the tariff's own history the analogs were sought in
    library_days: int  # days of the cold-start library among the candidates (0 when not needed)


def delivery_positions(
    starts_utc: Sequence[datetime] | np.ndarray | Any, tz: ZoneInfo, day_start: time
) -> tuple[np.ndarray, np.ndarray]:
    """(delivery date as days since the epoch, position 0..47 by local wall time) of each slot (aware starts, UNIX
    seconds or a pandas ``DatetimeIndex``)."""
    wall = local_seconds(utc_seconds(starts_utc), tz)  # local wall time: arithmetic on the wall clock
    shifted = wall + (24 - day_start.hour) * 3600 - day_start.minute * 60
    day = shifted // DAY_S
    pos = (shifted - day * DAY_S) // SLOT_S
    return day.astype(int), pos.astype(int)


def _epoch_date(n: int) -> date:
    return date(1970, 1, 1) + timedelta(days=int(n))


def day_matrix(
    starts_utc: Sequence[datetime] | np.ndarray | Any,
    values: np.ndarray,
    tz: ZoneInfo,
    day_start: time = DAY_START,
    max_gap_positions: int = EstimateParams.max_gap_positions,
) -> Days | None:
    """Half-hourly prices (NaN = unknown) as delivery days × positions. A day missing a few positions (a
    clock change, a gap) has them interpolated; one missing more keeps its NaN and is never used."""
    ok = np.isfinite(values)
    if not ok.any():
        return None
    starts_s, values = utc_seconds(starts_utc)[ok], np.asarray(values, dtype=float)[ok]
    day, pos = delivery_positions(starts_s, tz, day_start)
    first = int(day.min())
    rows = int(day.max()) - first + 1
    total = np.zeros((rows, POSITIONS))
    count = np.zeros((rows, POSITIONS))
    np.add.at(total, (day - first, pos), values)  # the doubled autumn hour: mean of the two
    np.add.at(count, (day - first, pos), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mat = total / count
    missing = ~np.isfinite(mat)
    fixable = missing.any(axis=1) & (missing.sum(axis=1) <= max_gap_positions)
    x = np.arange(POSITIONS)
    for r in np.flatnonzero(fixable):
        known = ~missing[r]
        mat[r, missing[r]] = np.interp(x[missing[r]], x[known], mat[r, known])
    return Days(_epoch_date(first), mat)


def _features(d: np.ndarray, levels: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Level-free description of days ``rows`` (see the module docstring)."""
    week = np.array([np.nanmean(levels[max(0, r - 6) : r + 1]) for r in rows])
    tail = d[rows, -_TAIL_POSITIONS:].mean(axis=1) - levels[rows]
    spread = (d[rows] - levels[rows, None]).std(axis=1)
    return np.column_stack([tail, levels[rows] - week, spread])


def _stack(own: Days, library: Days | None) -> tuple[np.ndarray, int]:
    """The library's days, one unknown day, then the own days (so no path runs from one into the other)."""
    if library is None:
        return own.values, 0
    gap = np.full((1, POSITIONS), np.nan)
    return np.vstack([library.values, gap, own.values]), len(library.values) + 1


def _season(library: Days, anchor: date, days: int) -> Days:
    """The library with days far from the anchor's time of year blanked out."""
    doy = np.array([(library.first + timedelta(days=k)).timetuple().tm_yday for k in range(len(library.values))])
    a = anchor.timetuple().tm_yday
    dist = np.minimum(np.abs(doy - a), 365 - np.abs(doy - a))
    return Days(library.first, np.where((dist <= days)[:, None], library.values, np.nan))


def estimate(
    history_starts: Sequence[datetime] | np.ndarray | Any,
    history_values: np.ndarray,
    published_until: datetime,
    hours: float,
    tz: ZoneInfo,
    params: EstimateParams = EstimateParams(),
    library: Days | None = None,
    library_name: str = "the bundled history",
    day_start: time = DAY_START,
) -> Estimate | None:
    """Estimate the ``hours`` after ``published_until`` (the end of the last published slot) from the tariff's
    own half-hourly history (UTC starts, GBP/kWh, NaN = unknown; nothing at or after ``published_until`` is
    read; the starts as aware datetimes, UNIX seconds or a pandas ``DatetimeIndex``). None when there is too little
    history (fewer than two complete consecutive days)."""
    history_s = utc_seconds(history_starts)
    until_s = int(utc_seconds([published_until])[0])
    cut = history_s < until_s
    own = day_matrix(history_s[cut], np.asarray(history_values)[cut], tz, day_start)
    n_out = round(hours * 2)
    if own is None or n_out <= 0:
        return None
    out = until_s + SLOT_S * np.arange(n_out, dtype=np.int64)
    out_day, out_pos = delivery_positions(out, tz, day_start)
    complete_own = own.complete()
    before = (out_day[0] - (own.first - date(1970, 1, 1)).days) - 1  # own row of the day before the first output
    anchors = np.flatnonzero(complete_own[: max(before + 1, 0)])
    if not anchors.size:
        return None
    a_own = int(anchors[-1])
    anchor_date = own.first + timedelta(days=a_own)
    span = int(out_day.max() - (anchor_date - date(1970, 1, 1)).days)  # path length in days after the analog
    lo_row = max(0, a_own - params.window_days)
    own_window = Days(own.first + timedelta(days=lo_row), own.values[lo_row : a_own + 1])
    own_days = int(own_window.complete().sum())
    lib = None
    if library is not None and own_days < params.min_days:
        lib = _season(library, anchor_date, params.season_days)
    d, offset = _stack(own_window, lib)
    anchor = offset + (a_own - lo_row)
    ok = np.isfinite(d).all(axis=1)
    levels = np.where(ok, np.nanmean(np.where(ok[:, None], d, 0.0), axis=1), np.nan)
    # A candidate and the ``span`` days after it are complete, and all of them before the anchor.
    n = len(d)
    if n <= span:  # too few days for one analog and its path (a new tariff without the bundled history)
        return None
    follow = np.ones(n, dtype=bool)
    for k in range(span + 1):
        follow[: n - k] &= ok[k:]
        follow[n - k :] = False
    cands = np.flatnonzero(follow[:anchor] & (np.arange(anchor) + span <= anchor))
    if not cands.size:
        return None
    feats = _features(d, levels, cands)
    target = _features(d, levels, np.array([anchor]))[0]
    scale = feats.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    dist = (((feats - target) / scale) ** 2).sum(axis=1)
    order = np.lexsort((-cands, dist))  # nearest first; among equals the most recent
    chosen = cands[order[: params.analogs]]
    offsets = out_day - (anchor_date - date(1970, 1, 1)).days  # 1 = the day after the anchor
    paths = d[chosen[:, None] + offsets[None, :], out_pos[None, :]] - levels[chosen, None] + levels[anchor]
    recent = []
    for r in range(anchor, max(anchor - params.recent_days, offset - 1), -1):  # own days only
        days_after = np.minimum(r + offsets - 1, anchor)  # the day itself, then the days that followed it
        path = d[days_after, out_pos] - levels[r] + levels[anchor]
        if np.isfinite(path).all():
            recent.append(path)
    paths = np.vstack([paths, *recent])
    q_lo, q_hi = params.band
    lib_used = int(np.isfinite(lib.values).all(axis=1).sum()) if lib is not None else 0
    learned = (
        f"{len(chosen)} analog days and the last {len(recent)} days, among {own_days} complete days of this tariff's"
        " history "
        f"({own_window.first.isoformat()}..{anchor_date.isoformat()})"
    )
    if lib_used:
        learned += f" and {lib_used} days of {library_name} around this time of year (cold start)"
    return Estimate(
        starts=to_datetimes(out),
        paths=paths,
        median=np.median(paths, axis=0),
        low=np.quantile(paths, q_lo, axis=0),
        high=np.quantile(paths, q_hi, axis=0),
        method=METHOD,
        learned_from=learned,
        own_days=own_days,
        library_days=lib_used,
    )


def with_external(
    est: Estimate,
    starts: Sequence[datetime] | Any,
    median: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    name: str,
) -> Estimate:
    """The estimate re-centred on an external forecast where it has one: each path keeps its deviation from the
    learned median (the analogs' spread), the median and band are the external ones."""
    position = {int(t): k for k, t in enumerate(utc_seconds(starts))}
    at = [position.get(int(t), -1) for t in utc_seconds(est.starts)]
    has = np.array([k >= 0 for k in at], dtype=bool)
    if not has.any():
        return est
    k = np.array([k for k in at if k >= 0], dtype=int)
    med, lo, hi = est.median.copy(), est.low.copy(), est.high.copy()
    paths = est.paths.copy()
    paths[:, has] += (median[k] - med[has])[None, :]
    med[has], lo[has], hi[has] = median[k], low[k], high[k]
    return replace(
        est,
        paths=paths,
        median=med,
        low=lo,
        high=hi,
        method=f"{name}+{est.method}",
        learned_from=f"{name} for {int(has.sum())} of {len(has)} slots; spread and the rest: {est.learned_from}",
    )


def to_message(
    est: Estimate, tariff_code: str, generated_at: datetime, published_until: datetime, direction: str = "import"
) -> PriceEstimate:
    """The estimate as the bus message (values rounded to 0.01p); it goes stale when its last slot ends."""
    r = 4
    slots = [
        EstimateSlot(
            start=t,
            end=t + SLOT,
            median_gbp=round(float(m), r),
            low_gbp=round(float(lo), r),
            high_gbp=round(float(hi), r),
        )
        for t, m, lo, hi in zip(est.starts, est.median, est.low, est.high, strict=True)
    ]
    return PriceEstimate(
        generated_at=generated_at,
        valid_until=slots[-1].end,
        tariff_code=tariff_code,
        direction=direction,  # type: ignore[arg-type]
        method=est.method,
        source="agilepredict" if est.method.startswith("agilepredict") else "learned",
        learned_from=est.learned_from,
        published_until=published_until,
        slots=slots,
        scenarios_gbp=np.round(est.paths, r).tolist(),
    )
