"""Fuzz every external HTTP client against a local server that answers with hypothesis-generated malformed
responses (status codes, HTML, truncated or wrong-shaped JSON, garbage bytes, huge bodies, bodies that come too
late, connections closed without an answer). Property: the client returns validated data or raises its documented
error type; nothing else ever escapes."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.reliability.fuzzconf import DERANDOMIZE, FUZZ_EXAMPLES, TIMEOUT_S
from tests.reliability.httpfake import Reply, ScriptedServer
from tests.reliability.payloads import encode, mutate
from tests.reliability.system import module_runnable

pytestmark = pytest.mark.timeout(TIMEOUT_S)

TIMEOUT_S = 0.25  # the client's timeout in these tests; "slow" replies wait longer than this
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    derandomize=DERANDOMIZE,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)
STATUSES = [200] * 8 + [201, 204, 301, 302, 304, 400, 401, 403, 404, 418, 429, 500, 502, 503, 504, 599]
CONTENT_TYPES = ["application/json", "text/html; charset=utf-8", "text/plain", None, "application/octet-stream"]
DEEP_NEST = b"[" * 1000
HTML = b"<!DOCTYPE html><html><head><title>403 Forbidden</title></head><body>Request blocked.</body></html>"


def envelope(data: st.DataObject, body: bytes, content_type: str | None) -> Reply:
    mode = data.draw(st.sampled_from(["normal"] * 90 + ["truncated"] * 5 + ["close"] * 4 + ["slow"]), label="mode")
    status = data.draw(st.sampled_from(STATUSES), label="status")
    headers = {}
    if status in (301, 302):
        # Mostly a dead end; now and then a redirect loop (30 hops per attempt: costly, so rare).
        headers["Location"] = data.draw(st.sampled_from(["http://127.0.0.1:9/x"] * 6 + ["ftp://x/", "/"]))
    if status == 429:
        headers["Retry-After"] = data.draw(st.sampled_from(["1", "-5", "soon", "99999999999"]))
    return Reply(status, body, content_type, headers, mode, delay_s=TIMEOUT_S * 3)


def common_body(data: st.DataObject, good: bytes) -> tuple[bytes, str | None]:
    """Bodies every client must survive, given one well-formed body ``good``."""
    kind = data.draw(
        st.sampled_from(["good"] * 3 + ["truncated", "html", "bytes", "empty", "json_scalar", "huge", "flipped"]),
        label="body",
    )
    ctype = data.draw(st.sampled_from(CONTENT_TYPES), label="ctype")
    if kind == "good":
        return good, ctype
    if kind == "truncated":
        return good[: data.draw(st.integers(0, max(0, len(good) - 1)))], ctype
    if kind == "html":
        return HTML, "text/html"
    if kind == "bytes":
        return data.draw(st.binary(max_size=500)), ctype
    if kind == "empty":
        return b"", ctype
    if kind == "json_scalar":
        return data.draw(st.sampled_from([b"null", b"[]", b"42", b'"x"', b"true", b"NaN", b"[{}]"])), ctype
    if kind == "huge":
        # ~2 MB: either the document repeated (not JSON any more) or padded with whitespace (still JSON).
        if data.draw(st.booleans(), label="padded"):
            return good + b" " * 2_000_000, ctype
        return good * max(1, 2_000_000 // max(1, len(good))), ctype
    flipped = bytearray(good)
    for _ in range(data.draw(st.integers(1, 20))):
        if flipped:
            i = data.draw(st.integers(0, len(flipped) - 1))
            flipped[i] = data.draw(st.integers(0, 255))
    return bytes(flipped), ctype


# ------------------------------------------------------------------------------------------------ Octopus


def octopus_page(now: datetime, n: int = 48, next_url: str | None = None) -> dict:
    first = now.replace(minute=0, second=0, microsecond=0)
    rows = []
    for i in range(n):
        start = first + timedelta(minutes=30 * (n - 1 - i))  # newest first, as the API sends
        inc = round(15 + 10 * math.sin(i / 7), 2)
        rows.append(
            {
                "value_exc_vat": round(inc / 1.05, 4),
                "value_inc_vat": inc,
                "valid_from": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "valid_to": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "payment_method": None,
            }
        )
    return {"count": n, "next": next_url, "previous": None, "results": rows}


@pytest.mark.skipif(not module_runnable("services.pricing"), reason="pricing has not landed")
def test_octopus_client_returns_valid_rates_or_raises_octopus_error() -> None:
    from services.pricing.octopus import OctopusClient, OctopusError
    from services.pricing.validation import BatchRejected, validate_rates

    now = datetime(2024, 3, 31, 0, 0, tzinfo=UTC)
    outcomes: dict[str, int] = {}
    with ScriptedServer() as server:
        client = OctopusClient(server.url, timeout_s=TIMEOUT_S, attempts=2, backoff_s=0.0)
        client.session.trust_env = False  # no proxy lookups from the environment on every request

        @FUZZ
        @given(st.data())
        def one(data: st.DataObject) -> None:
            nxt = data.draw(
                st.sampled_from([None] * 30 + [server.url + "/loop", "http://127.0.0.1:9/x", "not a url", 42]),
                label="next",
            )
            doc = octopus_page(now, data.draw(st.sampled_from([0, 1, 46, 48, 50, 400])), nxt)
            shape = data.draw(st.sampled_from(["as_is"] * 3 + ["mutated"] * 3 + ["far_apart"]), label="shape")
            if shape == "mutated":
                doc = mutate(data, doc)
            elif shape == "far_apart" and doc["results"]:
                # Two legal slots millennia apart: the gap between them must not be enumerated slot by slot.
                # (Year 1990 keeps the case fast: from year 0001 the gap list alone would need gigabytes.)
                far = {**doc["results"][0], "valid_from": "1990-01-01T00:00:00Z", "valid_to": "1990-01-01T00:30:00Z"}
                doc["results"].append(far)
            body, ctype = common_body(data, encode(doc))
            server.reply = envelope(data, body, ctype)
            try:
                rows = client.unit_rates("AGILE-24-10-01", "E-1R-AGILE-24-10-01-J", now, now + timedelta(days=1))
                validated = validate_rates(rows)
            except (OctopusError, BatchRejected) as exc:
                outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
                return
            assert all(math.isfinite(r.value_inc_vat) for r in validated.rates)
            starts = [r.start for r in validated.rates]
            assert starts == sorted(set(starts)), "validated rates must be sorted and unique"
            outcomes["ok"] = outcomes.get("ok", 0) + 1

        one()
    print(f"\noctopus client: {FUZZ_EXAMPLES} cases, {server.requests} requests -> {outcomes}")
    assert outcomes.get("ok") and outcomes.get("OctopusError"), "the fuzz never reached both outcomes"


@pytest.mark.skipif(not module_runnable("services.pricing"), reason="pricing has not landed")
def test_octopus_client_turns_hostile_json_nesting_into_octopus_error() -> None:
    from services.pricing.octopus import OctopusClient, OctopusError

    now = datetime(2024, 3, 31, 0, 0, tzinfo=UTC)
    with ScriptedServer() as server:
        server.reply = Reply(200, b'{"results": ' + b"[" * 5000 + b"]" * 5000 + b"}")
        client = OctopusClient(server.url, timeout_s=TIMEOUT_S, attempts=1, backoff_s=0.0)
        with pytest.raises(OctopusError):
            client.unit_rates("AGILE-24-10-01", "E-1R-AGILE-24-10-01-J", now, now + timedelta(days=1))


@pytest.mark.skipif(not module_runnable("services.pricing"), reason="pricing has not landed")
@pytest.mark.parametrize("edge", ["time", "number"])
def test_octopus_rows_at_the_edges_are_rejected_not_crashing(edge: str) -> None:
    from services.pricing.validation import BatchRejected, validate_rates

    row = {"valid_from": "0001-01-01T00:00:00+01:00", "valid_to": "0001-01-01T00:30:00+01:00", "value_inc_vat": 10}
    if edge == "number":
        row = {"valid_from": "2024-01-01T00:00:00Z", "valid_to": "2024-01-01T00:30:00Z", "value_inc_vat": 10**400}
    with pytest.raises(BatchRejected):
        validate_rates([row])


# ------------------------------------------------------------------------------------------------ Open-Meteo


def openmeteo_body(data: st.DataObject, start: int) -> bytes:
    import numpy as np

    from sim.openmeteo import build_flatbuffer

    n = data.draw(st.sampled_from([96, 24 * 4 * 3] * 3 + [0, 1, 20_000]), label="n")
    interval = data.draw(st.sampled_from([900] * 10 + [3600, 0, -900, 7]), label="interval")
    names = data.draw(
        st.sampled_from(
            [["global_tilted_irradiance", "temperature_2m"]] * 6
            + [
                ["temperature_2m", "global_tilted_irradiance"],
                ["global_tilted_irradiance"],
                [],
            ]
        ),
        label="vars",
    )
    fill = data.draw(st.sampled_from([100.0, float("nan"), float("inf"), -1e30, 0.0]), label="fill")
    cols = [(name, np.full(n, fill if i == 0 else 10.0)) for i, name in enumerate(names)]
    block = data.draw(st.sampled_from(["minutely_15"] * 6 + ["hourly"]), label="block")
    return build_flatbuffer(51.75, -1.26, block, start, interval, n, cols)


@pytest.mark.skipif(not module_runnable("services.forecast"), reason="forecast has not landed")
def test_openmeteo_client_returns_a_series_or_raises_openmeteo_error() -> None:
    from services.forecast.openmeteo_client import OpenMeteoClient, OpenMeteoError, make_session
    from services.forecast.pv_model import IrradianceSeries, PvArray

    start = int(datetime(2024, 6, 1, tzinfo=UTC).timestamp())
    outcomes: dict[str, int] = {}
    with ScriptedServer() as server:
        session = make_session("off", None, 0, retries=0)
        session.trust_env = False
        client = OpenMeteoClient(f"{server.url}/v1/forecast", session, TIMEOUT_S, "minutely_15", 3)

        @FUZZ
        @given(st.data())
        def one(data: st.DataObject) -> None:
            good = openmeteo_body(data, start)
            if data.draw(st.integers(0, 9), label="json_error") == 0:
                good = json.dumps({"error": True, "reason": "Cannot initialize WeatherVariable"}).encode()
            body, ctype = common_body(data, good)
            server.reply = envelope(data, body, ctype)
            try:
                series = client.fetch(PvArray())
            except OpenMeteoError as exc:
                outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
                return
            assert isinstance(series, IrradianceSeries)
            assert series.interval_s in (900, 3600)
            assert len(series.times) == len(series.gti_w_m2) == len(series.temperature_c)
            outcomes["ok"] = outcomes.get("ok", 0) + 1

        one()
    print(f"\nopen-meteo client: {FUZZ_EXAMPLES} cases, {server.requests} requests -> {outcomes}")
    assert outcomes.get("ok") and outcomes.get("OpenMeteoError"), "the fuzz never reached both outcomes"


# ------------------------------------------------------------------------------------------------ NetZero


class _NoBudget:
    """The executor's request budget, opened wide: these cases are about responses, not pacing."""

    per_minute = 10**6

    def try_acquire(self, spare: int = 0) -> bool:
        return True

    def block_until(self, _t: datetime) -> None:
        pass

    def next_free_in(self) -> float:
        return 0.0


@pytest.mark.skipif(not module_runnable("services.executor"), reason="executor has not landed")
def test_netzero_client_returns_a_site_status_or_raises_netzero_error() -> None:
    from pathlib import Path

    from services.executor.netzero import NetZeroClient, NetZeroError
    from shared.clock import FixedClock
    from shared.models import BatteryState

    examples = json.loads((Path(__file__).parents[2] / "sim" / "data" / "netzero_config_examples.json").read_text())
    seeds = [examples["docs_example"], examples["issue29_capture"]]
    clock = FixedClock(datetime(2024, 6, 1, 12, 0, tzinfo=UTC))
    outcomes: dict[str, int] = {}
    with ScriptedServer() as server:
        client = NetZeroClient(f"{server.url}/api/v1", "token", "1234", clock, _NoBudget(), timeout_s=TIMEOUT_S)
        client._session.trust_env = False

        @FUZZ
        @given(st.data())
        def one(data: st.DataObject) -> None:
            seed = data.draw(st.sampled_from(seeds), label="seed")
            doc = mutate(data, seed) if data.draw(st.booleans(), label="mutate") else seed
            body, ctype = common_body(data, encode(doc))
            server.reply = envelope(data, body, ctype)
            try:
                status = client.get()
            except NetZeroError as exc:
                outcomes[type(exc).__name__] = outcomes.get(type(exc).__name__, 0) + 1
                return
            state = status.battery_state(clock.now())  # a read the client accepted must publish
            assert isinstance(BatteryState.model_validate(state.model_dump()), BatteryState)
            outcomes["ok"] = outcomes.get("ok", 0) + 1

        one()
    print(f"\nnetzero client: {FUZZ_EXAMPLES} cases, {server.requests} requests -> {outcomes}")
    assert outcomes.get("ok") and sum(v for k, v in outcomes.items() if k != "ok"), outcomes


@pytest.mark.skipif(not module_runnable("services.executor"), reason="executor has not landed")
def test_netzero_client_turns_hostile_json_nesting_into_netzero_error() -> None:
    from services.executor.netzero import NetZeroClient, NetZeroError
    from shared.clock import FixedClock

    clock = FixedClock(datetime(2024, 6, 1, 12, 0, tzinfo=UTC))
    with ScriptedServer() as server:
        server.reply = Reply(200, b'{"live_status": ' + b"[" * 5000 + b"]" * 5000 + b"}")
        client = NetZeroClient(f"{server.url}/api/v1", "token", "1234", clock, _NoBudget(), timeout_s=TIMEOUT_S)
        with pytest.raises(NetZeroError):
            client.get()


@pytest.mark.skipif(not module_runnable("services.executor"), reason="executor has not landed")
@pytest.mark.parametrize("field", ["solar_power", "backup_reserve_percent", "huge_reserve", "tiny_pack"])
def test_netzero_non_finite_numbers_are_a_bad_response(field: str) -> None:
    from services.executor.netzero import BadResponse, parse_config

    body = {
        "backup_reserve_percent": 20,
        "operational_mode": "self_consumption",
        "grid_charging": False,
        "percentage_charged": 50,
        "grid_status": "Active (on_grid)",
        "live_status": {"solar_power": float("nan"), "battery_power": 0, "load_power": 500, "grid_power": 500},
    }
    if field in ("backup_reserve_percent", "huge_reserve"):
        body["backup_reserve_percent"] = float("inf") if field == "backup_reserve_percent" else 10**400
        body["live_status"]["solar_power"] = 0
    if field == "tiny_pack":
        body["live_status"].update(solar_power=0, total_pack_energy=5e-324, energy_left=0)
    now = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    if field == "tiny_pack":  # an implausible pack size is "not reported", and the state still publishes
        assert parse_config(body, now).battery_state(now).capacity_kwh is None
        return
    with pytest.raises(BadResponse):
        parse_config(body, now).battery_state(now)
