"""Historical unit rates of any Octopus tariff for a region, from Octopus's public API, cached on disk.

The cache holds the API's own rows (one JSON file per tariff and period), so a second comparison of the same
period asks Octopus nothing. Rows of any length (bands, Tracker days, open-ended fixed prices) become half-hours
with the pricing service's own ``tariffs.half_hour_rows``; the backtest's parser then checks them.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pandas as pd

from services.pricing.octopus import OctopusClient
from services.pricing.tariffs import RowsRejected, half_hour_rows
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

    def _path(self, code: str, start: datetime, end: datetime) -> Path:
        return self.dir / f"{code}_{start:%Y%m%dT%H%MZ}_{end:%Y%m%dT%H%MZ}.json"

    def rows(self, product: str, region: str, start: datetime, end: datetime) -> list:
        code = tariff_code(product, region)
        path = self._path(code, start, end)
        if path.exists():
            try:
                return json.loads(path.read_text())
            except ValueError:
                path.unlink(missing_ok=True)  # a broken cache file: ask again
        rows = self.client.unit_rates(product, code, start, end)
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
