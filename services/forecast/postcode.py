"""Where the PV panels are, from a UK postcode: looked up once (postcodes.io API) and cached in the data directory.

``locate`` chooses the PV arrays' location at start, as the original app did: the postcode's location; if the
postcode cannot be looked up now (service down), the configured latitude/longitude, or else none yet (no PV
forecast until a later lookup works); an unknown postcode is a configuration error (one line, exit 2) unless a
latitude/longitude is configured to fall back on. Arrays configured explicitly (``BATSCHED_PV_ARRAYS``) carry
their own location and are left alone.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from services.forecast.pv_model import PvArray

CACHE_FILE = "postcode_cache.json"
_SHAPE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$")


class UnknownPostcode(ValueError):
    """The lookup service says there is no such postcode."""


class LookupUnavailable(Exception):
    """The lookup service could not answer (network, 5xx, garbage)."""


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    source: str  # "postcode OX1 2JD", "cache", "BATSCHED_PV_LATITUDE/LONGITUDE"


def normal(postcode: str) -> str:
    return re.sub(r"\s+", "", postcode).upper()


class PostcodeLookup:
    """``GET {base}/postcodes/{postcode}`` → ``result.latitude/longitude``; answers kept in ``cache_path``."""

    def __init__(self, base_url: str, cache_path: Path, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.cache_path = cache_path
        self.timeout_s = timeout_s
        self._lock = threading.Lock()

    def _cache(self) -> dict[str, Any]:
        try:
            doc = json.loads(self.cache_path.read_text())
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def cached(self, postcode: str) -> Location | None:
        hit = self._cache().get(normal(postcode))
        if not isinstance(hit, dict):
            return None
        try:
            return Location(float(hit["latitude"]), float(hit["longitude"]), f"postcode {postcode} (cached)")
        except (KeyError, TypeError, ValueError):
            return None

    def _store(self, postcode: str, loc: Location) -> None:
        doc = self._cache()
        doc[normal(postcode)] = {
            "latitude": loc.latitude,
            "longitude": loc.longitude,
            "looked_up_at": datetime.now(UTC).isoformat(),
        }
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cache_path.parent, prefix=".postcode-")
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, self.cache_path)

    def lookup(self, postcode: str) -> Location:
        """The postcode's location: from the cache, else the service. Raises ``UnknownPostcode`` or
        ``LookupUnavailable``."""
        with self._lock:
            hit = self.cached(postcode)
            if hit is not None:
                return hit
            if not _SHAPE.match(" ".join(postcode.upper().split())):
                raise UnknownPostcode(f"{postcode!r} is not shaped like a UK postcode")
            url = f"{self.base_url}/postcodes/{quote(normal(postcode))}"
            try:
                r = requests.get(url, timeout=self.timeout_s)
            except requests.RequestException as exc:
                raise LookupUnavailable(f"{type(exc).__name__}: {exc}") from None
            if r.status_code == 404:
                try:
                    why = str(r.json().get("error") or "not found")
                except ValueError:
                    why = "not found"
                raise UnknownPostcode(f"{postcode!r}: {why}")
            if r.status_code != 200:
                raise LookupUnavailable(f"HTTP {r.status_code}")
            try:
                result = r.json()["result"]
                loc = Location(float(result["latitude"]), float(result["longitude"]), f"postcode {postcode}")
            except (ValueError, KeyError, TypeError):
                raise LookupUnavailable("the answer has no latitude and longitude") from None
            if not (-90 <= loc.latitude <= 90 and -180 <= loc.longitude <= 180):
                raise LookupUnavailable("the answer's latitude or longitude is out of range")
            self._store(postcode, loc)
            return loc


def placed(arrays: list[PvArray], loc: Location) -> list[PvArray]:
    return [a.model_copy(update={"latitude": loc.latitude, "longitude": loc.longitude}) for a in arrays]


class PvLocation:
    """The PV arrays with their location once it is known (``arrays`` is None until then)."""

    def __init__(self, settings: Any, lookup: PostcodeLookup, log: Any) -> None:
        self.settings = settings
        self.lookup = lookup
        self.log = log
        self.arrays: list[PvArray] | None = None
        self.location: Location | None = None

    def _fallback(self) -> Location | None:
        s = self.settings
        if s.pv_latitude is not None and s.pv_longitude is not None:
            return Location(s.pv_latitude, s.pv_longitude, "BATSCHED_PV_LATITUDE/LONGITUDE")
        return None

    def _use(self, loc: Location) -> None:
        self.location = loc
        self.arrays = placed(list(self.settings.pv_arrays), loc)
        self.log.info("PV location", latitude=loc.latitude, longitude=loc.longitude, source=loc.source)

    def start(self) -> None:
        """At start-up. Raises ``UnknownPostcode`` (a configuration error) when there is nothing to fall back on."""
        s = self.settings
        if s.pv_arrays_given:
            if s.postcode:
                self.log.info("PV arrays are configured with their location: the postcode is not used")
            self.arrays = list(s.pv_arrays)
            return
        if not s.postcode:
            fallback = self._fallback()
            if fallback is not None:
                self._use(fallback)
            else:
                self.arrays = list(s.pv_arrays)
            return
        try:
            self._use(self.lookup.lookup(s.postcode))
        except UnknownPostcode as exc:
            fallback = self._fallback()
            if fallback is None:
                raise
            self.log.warning("postcode unknown: using the configured latitude and longitude", error=str(exc))
            self._use(fallback)
        except LookupUnavailable as exc:
            fallback = self._fallback()
            if fallback is not None:
                self.log.warning("postcode lookup failed: using the configured latitude and longitude", error=str(exc))
                self._use(fallback)
            else:
                self.log.error(
                    "postcode lookup failed: no PV forecast until it works (tried again before each PV refresh)",
                    postcode=s.postcode,
                    error=str(exc),
                )

    def ready(self) -> bool:
        """Whether the arrays are placed; tries the lookup again when they are not."""
        if self.arrays is not None:
            return True
        try:
            self._use(self.lookup.lookup(self.settings.postcode))
        except (UnknownPostcode, LookupUnavailable) as exc:
            self.log.warning("postcode lookup still failing: no PV forecast", error=str(exc))
            return False
        return True
