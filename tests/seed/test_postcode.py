"""Postcode → location for the PV forecast (the seed's CUST_POSTCODE), against a fake postcodes.io."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.forecast.config import ForecastSettings
from services.forecast.postcode import LookupUnavailable, PostcodeLookup, PvLocation, UnknownPostcode
from shared.logging import get_logger
from shared.settings import build_settings
from sim.openmeteo import OpenMeteoSim
from sim.postcodes import FakePostcodes

OXFORD = (51.7520, -1.2578)


@pytest.fixture
def postcodes() -> Iterator[FakePostcodes]:
    api = FakePostcodes().start()
    yield api
    api.stop()


def test_lookup_is_cached_across_restarts(postcodes: FakePostcodes, tmp_path: Path) -> None:
    cache = tmp_path / "postcode_cache.json"
    loc = PostcodeLookup(postcodes.url, cache).lookup("ox1 2jd")
    assert (loc.latitude, loc.longitude) == OXFORD and postcodes.requests == 1
    assert PostcodeLookup(postcodes.url, cache).lookup("OX12JD").latitude == OXFORD[0]
    postcodes.fail = -1  # the service is down: the cache still answers, with no request
    assert PostcodeLookup(postcodes.url, cache).lookup("OX1 2JD").longitude == OXFORD[1]
    assert postcodes.requests == 1


def test_unknown_and_malformed_postcodes_are_clear_errors(postcodes: FakePostcodes, tmp_path: Path) -> None:
    lookup = PostcodeLookup(postcodes.url, tmp_path / "c.json")
    with pytest.raises(UnknownPostcode, match="Postcode not found"):
        lookup.lookup("ZZ99 9ZZ")
    with pytest.raises(UnknownPostcode, match="not shaped like a UK postcode"):
        lookup.lookup("XY991A")
    assert postcodes.requests == 1  # the malformed one never left the house
    postcodes.fail = 1
    with pytest.raises(LookupUnavailable, match="HTTP 503"):
        lookup.lookup("SW1A 1AA")
    assert not (tmp_path / "c.json").exists()  # failures are not cached
    with pytest.raises(LookupUnavailable):
        PostcodeLookup("http://127.0.0.1:9", tmp_path / "c.json", timeout_s=1).lookup("SW1A 1AA")


def _settings(env: dict[str, str], postcodes: FakePostcodes) -> ForecastSettings:
    return build_settings(ForecastSettings, environ={"BATSCHED_POSTCODE_URL": postcodes.url, **env})


def test_only_a_postcode_places_the_arrays(postcodes: FakePostcodes, tmp_path: Path) -> None:
    s = _settings({"CUST_POSTCODE": "OX1 2JD", "PV_NUM_PANELS": "10", "PV_NOMINAL_WATTAGE": "400"}, postcodes)
    loc = PvLocation(s, PostcodeLookup(s.postcode_url, tmp_path / "c.json"), get_logger("test"))
    loc.start()
    [a] = loc.arrays or []
    assert (a.latitude, a.longitude, a.kwp) == (*OXFORD, 4.0)


def test_configured_arrays_keep_their_own_location(postcodes: FakePostcodes, tmp_path: Path) -> None:
    arrays = json.dumps([{"latitude": 53.0, "longitude": -2.0, "kwp": 3}])
    s = _settings({"CUST_POSTCODE": "OX1 2JD", "BATSCHED_PV_ARRAYS": arrays}, postcodes)
    loc = PvLocation(s, PostcodeLookup(s.postcode_url, tmp_path / "c.json"), get_logger("test"))
    loc.start()
    assert [(a.latitude, a.longitude) for a in loc.arrays or []] == [(53.0, -2.0)] and postcodes.requests == 0


def test_lookup_down_falls_back_or_waits(postcodes: FakePostcodes, tmp_path: Path) -> None:
    postcodes.fail = -1
    s = _settings({"CUST_POSTCODE": "OX1 2JD", "LATITUDE": "52.2", "LONGITUDE": "0.12"}, postcodes)
    loc = PvLocation(s, PostcodeLookup(s.postcode_url, tmp_path / "a.json"), get_logger("test"))
    loc.start()
    assert [(a.latitude, a.longitude) for a in loc.arrays or []] == [(52.2, 0.12)]  # the seed's fallback

    s = _settings({"CUST_POSTCODE": "OX1 2JD"}, postcodes)
    loc = PvLocation(s, PostcodeLookup(s.postcode_url, tmp_path / "b.json"), get_logger("test"))
    loc.start()
    assert loc.arrays is None and not loc.ready()  # no PV forecast at a made-up place
    postcodes.fail = 0
    assert loc.ready() and [(a.latitude, a.longitude) for a in loc.arrays or []] == [OXFORD]

    s = _settings({"CUST_POSTCODE": "ZZ99 9ZZ", "LATITUDE": "52.2", "LONGITUDE": "0.12"}, postcodes)
    loc = PvLocation(s, PostcodeLookup(s.postcode_url, tmp_path / "c.json"), get_logger("test"))
    loc.start()
    assert loc.location is not None and loc.location.latitude == 52.2
    s = _settings({"CUST_POSTCODE": "ZZ99 9ZZ"}, postcodes)
    with pytest.raises(UnknownPostcode):
        PvLocation(s, PostcodeLookup(s.postcode_url, tmp_path / "d.json"), get_logger("test")).start()


def test_forecast_service_with_only_the_seed_postcode(spawn, probe, postcodes: FakePostcodes, tmp_path: Path) -> None:
    om = OpenMeteoSim().start()
    try:
        env = {
            "CUST_POSTCODE": "OX1 2JD",
            "BATSCHED_POSTCODE_URL": postcodes.url,
            "BATSCHED_OPENMETEO_URL": om.url,
            "BATSCHED_OPENMETEO_CACHE": "off",
        }
        proc = spawn("services.forecast", env, name="forecast-ok")
        pv = probe.wait_json("batsched/forecast/pv", timeout=60)
        assert pv["kind"] == "pv" and pv["slots"]
        lines = [json.loads(x) for x in proc.log().splitlines() if x.startswith("{")]
        [where] = [x for x in lines if x.get("event") == "PV location"]
        assert (where["latitude"], where["longitude"]) == OXFORD
        cached = json.loads((tmp_path / "data" / "postcode_cache.json").read_text())
        assert cached["OX12JD"]["latitude"] == OXFORD[0]

        bad = spawn("services.forecast", {**env, "CUST_POSTCODE": "ZZ99 9ZZ"}, name="forecast-bad")
        deadline = time.monotonic() + 60
        while bad.alive() and time.monotonic() < deadline:
            time.sleep(0.1)  # waiting for a process to exit: nothing to subscribe to
        assert bad.proc is not None and bad.proc.returncode == 2
        err = [x for x in bad.log().splitlines() if "configuration error" in x]
        assert len(err) == 1 and "unknown postcode 'ZZ99 9ZZ'" in err[0] and "CUST_POSTCODE" in err[0]
    finally:
        om.stop()
