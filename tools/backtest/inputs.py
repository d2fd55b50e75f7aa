"""Parse and check a backtest's inputs (pure: text or JSON in, half-hourly series out).

Every problem is an ``InputError`` naming the problem and the line (1 = the header), never a silently wrong
total: gaps, duplicate or ambiguous (clock-change) times, wrong units, an unknown column layout, intervals that
are not half-hours, unreadable numbers. Series are indexed by aware UTC half-hour slot starts.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

SLOT = timedelta(minutes=30)
LONDON = ZoneInfo("Europe/London")
# A half-hour above this is not a household: 25 kWh in 30 min is a steady 50 kW (a 100 A single-phase supply
# tops out near 23 kW). Figures this large in a "kWh" column are almost always Wh.
MAX_KWH_PER_SLOT = 25.0

CONSUMPTION_COLUMNS = {
    "consumption (kwh)": 1.0,
    "consumption": 1.0,
    "consumption_kwh": 1.0,
    "kwh": 1.0,
    "energy_kwh": 1.0,
    "import_kwh": 1.0,
    "consumption (wh)": 0.001,
    "consumption_wh": 0.001,
    "wh": 0.001,
    "energy_wh": 0.001,
}
START_COLUMNS = ("start", "interval_start", "start time", "start_time", "timestamp", "valid_from", "slot_start_utc")
END_COLUMNS = ("end", "interval_end", "end time", "end_time", "valid_to")
UNIT_COLUMNS = ("unit", "units", "uom")
UNIT_FACTORS = {"kwh": 1.0, "wh": 0.001}


class InputError(ValueError):
    """A problem in an input file, with the 1-based line it was found on (the header is line 1)."""

    def __init__(self, source: str, problem: str, line: int | None = None) -> None:
        self.source, self.problem, self.line = source, problem, line
        where = f", line {line}" if line is not None else ""
        super().__init__(f"{source}{where}: {problem}")


@dataclass(frozen=True)
class _Row:
    line: int
    start: datetime
    end: datetime | None
    value: float


def _norm(name: str) -> str:
    return " ".join(name.strip().lower().replace("\ufeff", "").split())


def _parse_time(text: str, source: str, line: int, what: str) -> tuple[datetime, bool]:
    """An aware UTC instant and whether the text carried its own offset (naive times are Europe/London)."""
    raw = text.strip()
    try:
        t = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "T", 1) if "T" not in raw else raw)
    except ValueError:
        raise InputError(
            source, f"cannot read the {what} time {raw!r} (expected ISO 8601, e.g. 2024-01-15T00:00:00Z)", line
        ) from None
    if t.tzinfo is not None:
        return t.astimezone(UTC), True
    return t.replace(tzinfo=LONDON).astimezone(UTC), False


def _local_ambiguous(naive_text: str) -> bool:
    """A local wall time that happens twice (autumn) or never (spring) in Europe/London."""
    t = datetime.fromisoformat(naive_text.strip().replace(" ", "T", 1))
    a = t.replace(tzinfo=LONDON, fold=0)
    b = t.replace(tzinfo=LONDON, fold=1)
    round_trip = a.astimezone(UTC).astimezone(LONDON).replace(tzinfo=None)
    return a.utcoffset() != b.utcoffset() or round_trip != t


def _number(text: str, source: str, line: int, what: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise InputError(source, f"{what} {text.strip()!r} is not a number", line) from None
    if not math.isfinite(value):
        raise InputError(source, f"{what} {text.strip()!r} is not a finite number", line)
    return value


def _check_series(rows: list[_Row], source: str, what: str) -> pd.Series:
    """Half-hour alignment, no duplicates, no gaps: the common checks of every series."""
    if not rows:
        raise InputError(source, f"no {what} rows found")
    rows = sorted(rows, key=lambda r: r.start)
    seen: dict[datetime, int] = {}
    for r in rows:
        if r.start.minute % 30 or r.start.second or r.start.microsecond:
            raise InputError(source, f"{r.start:%Y-%m-%dT%H:%M:%SZ} is not the start of a half-hour", r.line)
        if r.end is not None and r.end - r.start != SLOT:
            minutes = (r.end - r.start).total_seconds() / 60
            raise InputError(
                source,
                f"interval {r.start:%Y-%m-%dT%H:%MZ}–{r.end:%H:%MZ} lasts {minutes:g} minutes; half-hourly data "
                "is needed (download the half-hourly CSV, not hourly or daily totals)",
                r.line,
            )
        if r.start in seen:
            raise InputError(
                source,
                f"duplicate reading for {r.start:%Y-%m-%dT%H:%MZ} (also on line {seen[r.start]})",
                r.line,
            )
        seen[r.start] = r.line
    gaps = []
    for prev, cur in itertools.pairwise(rows):
        if cur.start - prev.start != SLOT:
            gaps.append((prev, cur))
    if gaps:
        prev, cur = gaps[0]
        missing = sum(int((c.start - p.start) / SLOT) - 1 for p, c in gaps)
        raise InputError(
            source,
            f"gap: no {what} from {prev.start + SLOT:%Y-%m-%dT%H:%MZ} to {cur.start:%Y-%m-%dT%H:%MZ} "
            f"(between lines {prev.line} and {cur.line}); {missing} half-hour(s) missing in {len(gaps)} gap(s)",
            cur.line,
        )
    index = pd.DatetimeIndex([r.start for r in rows])
    return pd.Series([r.value for r in rows], index=index, dtype=float)


def _reader(text: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    body = [(i + 2, row) for i, row in enumerate(lines[1:]) if any(c.strip() for c in row)]
    return (lines[0] if lines else []), body


def _find(header: list[str], names: Iterable[str]) -> int | None:
    normed = [_norm(h) for h in header]
    for name in names:
        if name in normed:
            return normed.index(name)
    return None


# ------------------------------------------------------------------------------------------- consumption


def parse_consumption_csv(text: str, source: str = "consumption CSV") -> pd.Series:
    """The CSV Octopus lets customers download (``Consumption (kWh), Start, End`` with local offsets), or a
    similar layout (``interval_start``/``consumption``, a ``Unit`` column, a ``(Wh)`` header). kWh per slot."""
    header, body = _reader(text)
    normed = [_norm(h) for h in header]
    value_i = next((i for i, h in enumerate(normed) if h in CONSUMPTION_COLUMNS), None)
    start_i = _find(header, START_COLUMNS)
    if value_i is None or start_i is None:
        raise InputError(
            source,
            "unknown column layout: expected a header like 'Consumption (kWh), Start, End' (the Octopus download); "
            f"found {', '.join(repr(h.strip()) for h in header) or 'nothing'}",
            1,
        )
    end_i = _find(header, END_COLUMNS)
    unit_i = _find(header, UNIT_COLUMNS)
    header_factor = CONSUMPTION_COLUMNS[normed[value_i]]
    rows: list[_Row] = []
    naive_seen: dict[str, int] = {}
    for line, cells in body:
        if len(cells) < len(header):
            raise InputError(source, f"expected {len(header)} columns, found {len(cells)}", line)
        start, has_offset = _parse_time(cells[start_i], source, line, "start")
        if not has_offset:
            key = cells[start_i].strip()
            if key in naive_seen or _local_ambiguous(key):
                also = f"; also on line {naive_seen[key]}" if key in naive_seen else ""
                raise InputError(
                    source,
                    f"local time {key!r} without a UTC offset is ambiguous on a clock change "
                    f"(it occurs twice or never that day{also}); "
                    "use the Octopus download, whose times carry offsets like +01:00",
                    line,
                )
            naive_seen[key] = line
        end = _parse_time(cells[end_i], source, line, "end")[0] if end_i is not None else None
        factor = header_factor
        if unit_i is not None:
            unit = _norm(cells[unit_i])
            if unit not in UNIT_FACTORS:
                raise InputError(source, f"unknown unit {cells[unit_i].strip()!r} (expected kWh or Wh)", line)
            factor = UNIT_FACTORS[unit]
        value = _number(cells[value_i], source, line, "consumption") * factor
        if value < 0:
            raise InputError(source, f"negative consumption {value:g} kWh (exports belong in a separate file)", line)
        if value > MAX_KWH_PER_SLOT:
            raise InputError(
                source,
                f"{cells[value_i].strip()} kWh in one half-hour is not a household (a steady {value * 2:g} kW); "
                "the values look like Wh: label the column 'Consumption (Wh)' or add a Unit column",
                line,
            )
        rows.append(_Row(line, start, end, value))
    return _check_series(rows, source, "consumption").rename("load_kwh")


def parse_consumption_json(doc: Any, source: str = "Octopus consumption") -> pd.Series:
    """``/consumption/`` results: ``{"results": [{"consumption", "interval_start", "interval_end"}]}``."""
    results = _results(doc, source)
    rows = []
    for i, r in enumerate(results, start=1):
        try:
            start = _parse_time(str(r["interval_start"]), source, i, "start")[0]
            end = _parse_time(str(r["interval_end"]), source, i, "end")[0] if r.get("interval_end") else None
            value = _number(str(r["consumption"]), source, i, "consumption")
        except KeyError as exc:
            raise InputError(source, f"result {i} has no {exc.args[0]!r}", i) from None
        if value < 0 or value > MAX_KWH_PER_SLOT:
            raise InputError(source, f"consumption {value:g} kWh in one half-hour is not plausible", i)
        rows.append(_Row(i, start, end, value))
    return _check_series(rows, source, "consumption").rename("load_kwh")


# ------------------------------------------------------------------------------------------- prices


def parse_prices_csv(text: str, source: str = "prices CSV") -> pd.Series:
    """Prices in GBP/kWh. Layouts: the bundled ``slot_start_utc, value_inc_vat_p`` (pence), the Octopus API's
    ``value_exc_vat, value_inc_vat, valid_from, valid_to`` (pence), or ``start, value_inc_vat_gbp`` (GBP)."""
    header, body = _reader(text)
    normed = [_norm(h) for h in header]
    start_i = _find(header, START_COLUMNS)
    end_i = _find(header, END_COLUMNS)
    if "value_inc_vat_gbp" in normed:
        value_i, factor = normed.index("value_inc_vat_gbp"), 1.0
    elif "value_inc_vat_p" in normed:
        value_i, factor = normed.index("value_inc_vat_p"), 0.01
    elif "value_inc_vat" in normed:
        value_i, factor = normed.index("value_inc_vat"), 0.01  # the Octopus API's unit: pence
    else:
        value_i, factor = None, 1.0
    if value_i is None or start_i is None:
        raise InputError(
            source,
            "unknown column layout: expected 'slot_start_utc, value_inc_vat_p' or the Octopus API's "
            f"'value_inc_vat, valid_from, valid_to'; found {', '.join(repr(h.strip()) for h in header) or 'nothing'}",
            1,
        )
    rows = []
    for line, cells in body:
        start, _ = _parse_time(cells[start_i], source, line, "start")
        end = _parse_time(cells[end_i], source, line, "end")[0] if end_i is not None and cells[end_i].strip() else None
        rows.append(
            _Row(line, start, end, _check_price(_number(cells[value_i], source, line, "price") * factor, source, line))
        )
    return _check_series(rows, source, "prices").rename("gbp_kwh")


def parse_rates_json(doc: Any, source: str = "Octopus rates") -> pd.Series:
    """``standard-unit-rates`` results (pence, newest first) → GBP/kWh by UTC slot start."""
    rows = []
    for i, r in enumerate(_results(doc, source), start=1):
        try:
            start = _parse_time(str(r["valid_from"]), source, i, "valid_from")[0]
            end = _parse_time(str(r["valid_to"]), source, i, "valid_to")[0] if r.get("valid_to") else None
            value = _number(str(r["value_inc_vat"]), source, i, "value_inc_vat") / 100.0
        except KeyError as exc:
            raise InputError(source, f"result {i} has no {exc.args[0]!r}", i) from None
        rows.append(_Row(i, start, end, _check_price(value, source, i)))
    return _check_series(rows, source, "prices").rename("gbp_kwh")


def _check_price(gbp: float, source: str, line: int) -> float:
    # Agile is capped at 100p inc VAT and has gone to about -20p: anything beyond ±£5 is a unit mistake.
    if abs(gbp) > 5.0:
        raise InputError(
            source, f"price £{gbp:g}/kWh is not plausible (are the values in pence or tenths of pence?)", line
        )
    return gbp


def _results(doc: Any, source: str) -> list[dict[str, Any]]:
    if isinstance(doc, dict) and isinstance(doc.get("results"), list):
        return doc["results"]
    if isinstance(doc, list):
        return doc
    raise InputError(source, "expected the Octopus API's JSON shape: an object with a 'results' list")


# ------------------------------------------------------------------------------------------- PV


def parse_pv_csv(text: str, source: str = "PV CSV") -> pd.Series:
    """Half-hourly PV generation: a start column and ``pv_kwh`` (or ``energy_kwh``/``generation (kwh)``)."""
    header, body = _reader(text)
    normed = [_norm(h) for h in header]
    start_i = _find(header, START_COLUMNS)
    value_i = next(
        (normed.index(n) for n in ("pv_kwh", "generation (kwh)", "generation_kwh", "energy_kwh") if n in normed), None
    )
    if value_i is None or start_i is None:
        raise InputError(
            source,
            f"unknown column layout: expected 'start, pv_kwh'; found {', '.join(repr(h.strip()) for h in header)}",
            1,
        )
    rows = []
    for line, cells in body:
        start, _ = _parse_time(cells[start_i], source, line, "start")
        value = _number(cells[value_i], source, line, "PV energy")
        if value < 0 or value > MAX_KWH_PER_SLOT:
            raise InputError(source, f"PV energy {value:g} kWh in one half-hour is not plausible", line)
        rows.append(_Row(line, start, None, value))
    return _check_series(rows, source, "PV").rename("pv_kwh")


def align(load: pd.Series, prices: pd.Series, start: datetime | None, end: datetime | None) -> pd.DatetimeIndex:
    """The reported slots: ``[start, end)`` when given (the data must then cover it), else where both consumption
    and prices are known. An error if they do not overlap."""
    lo = pd.Timestamp(start) if start else max(load.index[0], prices.index[0])
    hi = pd.Timestamp(end) if end else min(load.index[-1] + SLOT, prices.index[-1] + SLOT)
    if lo >= hi or lo > min(load.index[-1], prices.index[-1]) or hi <= max(load.index[0], prices.index[0]):
        raise InputError(
            "inputs",
            f"consumption ({load.index[0]:%Y-%m-%d}…{load.index[-1]:%Y-%m-%d}) and prices "
            f"({prices.index[0]:%Y-%m-%d}…{prices.index[-1]:%Y-%m-%d}) do not overlap in the chosen period",
        )
    return pd.date_range(lo, hi, freq="30min", inclusive="left")
