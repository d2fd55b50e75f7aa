"""Historical unit rates of any Octopus tariff for a region, from Octopus's public API, cached on disk.

The cache holds the API's own rows (one JSON file per tariff and period), so a second comparison of the same
period asks Octopus nothing. Rows of any length (bands, Tracker days, open-ended fixed prices) become half-hours
with the pricing service's own ``tariffs.half_hour_rows``; the backtest's parser then checks them. Standing charges
(pence per day) come from the tariff's ``standing-charges`` rows, one per local day.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from services.pricing.octopus import OctopusClient
from services.pricing.tariffs import RowsRejected, half_hour_rows
from shared.slots import LONDON, local_midnight
from tools.backtest import inputs
from tools.backtest.octopus import tariff_code


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "batsched" / "octopus-rates"


class RateCache:
    def __init__(self, base_url: str, cache_dir: Path, client: OctopusClient | None = None) -> None:
        self.base_url = base_url
        self.dir = cache_dir
        self.client = client or OctopusClient(base_url, timeout_s=30)
        self.fetched = 0  # API calls made (the rest came from the cache)

    def _path(self, code: str, start: datetime, end: datetime, what: str = "") -> Path:
        return self.dir / f"{code}{what}_{start:%Y%m%dT%H%MZ}_{end:%Y%m%dT%H%MZ}.json"

    def rows(self, product: str, region: str, start: datetime, end: datetime, standing: bool = False) -> list:
        code = tariff_code(product, region)
        path = self._path(code, start, end, "_standing" if standing else "")
        if path.exists():
            try:
                return json.loads(path.read_text())
            except ValueError:
                path.unlink(missing_ok=True)  # a broken cache file: ask again
        get = self.client.standing_charges if standing else self.client.unit_rates
        rows = get(product, code, start, end)
        self.fetched += 1
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows))
        tmp.replace(path)
        return rows

    def series(self, product: str, region: str, start: datetime, end: datetime) -> pd.Series:
        """GBP/kWh inc VAT by UTC half-hour start over ``[start, end)`` (gaps where Octopus has no price)."""
        code = tariff_code(product, region)
        try:
            expanded = half_hour_rows(self.rows(product, region, start, end), start, end)
        except RowsRejected as exc:
            raise inputs.InputError(f"Octopus {code}", str(exc)) from None
        return inputs.parse_rates_json({"results": expanded.rows}, f"Octopus {code}")

    def standing_gbp(self, product: str, region: str, start: datetime, end: datetime) -> float:
        """The standing charges over the local days of ``[start, end)`` in GBP inc VAT (0 for an export tariff)."""
        rows = [r for r in self.rows(product, region, start, end, standing=True) if isinstance(r, dict)]
        total_p, day = 0.0, start.astimezone(LONDON).date()
        while local_midnight(day) < end:
            t = local_midnight(day)
            for r in rows:
                lo, hi = _time(r.get("valid_from")), _time(r.get("valid_to"))
                if (lo is None or lo <= t) and (hi is None or t < hi):
                    total_p += float(r["value_inc_vat"])
                    break
            day += timedelta(days=1)
        return total_p / 100.0


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
