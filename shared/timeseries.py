"""Half-hourly series on numpy alone: UTC instants as int64 UNIX seconds, local wall-clock time by ``zoneinfo``.

The services do their time arithmetic here instead of with pandas (which the image does not carry: about 40 MB
that only the tools, the benchmarks and the simulators use). The functions also accept what those pass in (a
pandas ``DatetimeIndex`` or ``Series``), read by duck typing, so the same model code serves both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DAY_S = 86400
SLOT_S = 1800
_SECOND = timedelta(seconds=1)


def utc_seconds(times: Any) -> np.ndarray:
    """UNIX seconds (int64) of aware datetimes, of a tz-aware pandas ``DatetimeIndex``, or of ``datetime64``
    values (read as UTC). Raises ``ValueError`` for naive datetimes."""
    if hasattr(times, "tz_convert"):  # a pandas DatetimeIndex (tools and tests)
        if times.tz is None:
            raise ValueError("times must be timezone-aware")
        times = times.tz_convert("UTC").tz_localize(None).to_numpy()
    arr = np.asarray(times)
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[s]").astype(np.int64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    out = np.empty(arr.size, dtype=np.int64)
    for k, t in enumerate(arr.ravel()):
        if t.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        out[k] = (t - EPOCH) // _SECOND
    return out


def to_datetimes(seconds: Iterable[int]) -> list[datetime]:
    """Aware UTC datetimes of UNIX seconds."""
    return [EPOCH + timedelta(seconds=int(s)) for s in seconds]


@lru_cache(maxsize=65536)
def _offset_s(tz: ZoneInfo | str, at_s: int) -> int:
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    offset = (EPOCH + timedelta(seconds=at_s)).astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def local_seconds(utc_s: np.ndarray, tz: ZoneInfo | str) -> np.ndarray:
    """Local wall-clock time of each UTC instant, as seconds since the (naive) epoch: ``// 86400`` is the local
    date's day number, ``% 86400`` the time of day.

    A zone's offset is looked up once per UTC day (at its first and last second); only the instants of a day in
    which the offset changes (a clock change) are looked up one by one."""
    ts = np.asarray(utc_s, dtype=np.int64)
    if ts.size == 0:
        return ts.copy()
    days, inverse = np.unique(ts // DAY_S, return_inverse=True)
    first = np.array([_offset_s(tz, int(d) * DAY_S) for d in days], dtype=np.int64)
    last = np.array([_offset_s(tz, int(d) * DAY_S + DAY_S - 1) for d in days], dtype=np.int64)
    offsets = first[inverse]
    changing = (first != last)[inverse]
    if changing.any():
        offsets[changing] = [_offset_s(tz, int(t)) for t in ts[changing]]
    return ts + offsets


@dataclass(frozen=True)
class SlotSeries:
    """Values per half-hour, by UTC slot start (UNIX seconds, ascending); NaN = unknown."""

    starts_s: np.ndarray  # int64
    values: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def of(cls, starts: Sequence[datetime] | Any, values: Sequence[float] | np.ndarray) -> SlotSeries:
        return cls(utc_seconds(starts), np.asarray(values, dtype=float))

    @classmethod
    def empty(cls) -> SlotSeries:
        return cls(np.empty(0, dtype=np.int64), np.empty(0))

    def starts(self) -> list[datetime]:
        return to_datetimes(self.starts_s)

    def before(self, t: datetime) -> SlotSeries:
        """The slots that start before ``t``."""
        keep = self.starts_s < utc_seconds([t])[0]
        return SlotSeries(self.starts_s[keep], self.values[keep])


def as_slot_series(series: SlotSeries | Any) -> SlotSeries:
    """A ``SlotSeries`` as it is, or a pandas ``Series`` indexed by aware slot starts (what the tools pass)."""
    if isinstance(series, SlotSeries):
        return series
    if len(series) == 0:
        return SlotSeries.empty()
    return SlotSeries(utc_seconds(series.index), np.asarray(series.to_numpy(), dtype=float))
