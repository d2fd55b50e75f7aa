"""The NetZero client against the simulator over HTTP: auth, rate limits, server errors, bad bodies, the budget."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from services.executor.limiter import RateLimiter
from services.executor.netzero import (
    AuthError,
    BadResponse,
    BudgetExhausted,
    NetZeroClient,
    RateLimited,
    ServerError,
    TransportError,
    config_body,
    measure_skew,
    parse_config,
)
from shared.clock import FixedClock
from shared.models import GridStatus, PowerwallConfig
from sim.netzero import NetZeroSim
from tests.executor.support import SITE, TOKEN, SimServer, utc

EXAMPLES = Path(__file__).resolve().parents[2] / "sim" / "data" / "netzero_config_examples.json"
T0 = utc(2023, 6, 12, 1, 0)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def server(clock: FixedClock) -> Iterator[SimServer]:
    s = SimServer(NetZeroSim(clock, TOKEN, SITE, apply_delay_s=0))
    yield s
    s.stop()


def client(server: SimServer, clock: FixedClock, token: str = TOKEN, site: str = SITE, per_minute: int = 4):
    return NetZeroClient(server.base_url, token, site, clock, RateLimiter(clock, per_minute), timeout_s=5)


def test_reads_the_configuration_and_live_status(server: SimServer, clock: FixedClock) -> None:
    status = client(server, clock).get()
    assert status.config == PowerwallConfig(
        operational_mode="self_consumption", backup_reserve_pct=20, grid_charging=False, energy_exports="pv_only"
    )
    assert status.soc_pct == pytest.approx(50.0)
    assert status.grid_status == GridStatus.ON_GRID
    state = status.battery_state()
    assert state.valid_until - state.observed_at == (utc(2023, 1, 1, 0, 5) - utc(2023, 1, 1))


def test_post_sends_only_the_given_fields_and_the_response_is_the_read_back(server: SimServer, clock) -> None:
    status = client(server, clock).post(PowerwallConfig(operational_mode="backup", grid_charging=True))
    assert status.config.operational_mode == "backup" and status.config.grid_charging is True
    sent = server.log()["requests"][-1]
    assert sent["body"] == {"operational_mode": "backup", "grid_charging": True}


@pytest.mark.parametrize("off", [timedelta(0), timedelta(minutes=5), -timedelta(days=14)])
def test_the_clock_skew_is_measured_from_netzeros_date(server: SimServer, clock: FixedClock, off: timedelta) -> None:
    """The simulator's HTTP Date is on its own clock, as a real server's is on real time; the client's clock may
    be off (a Pi without a real-time clock)."""
    c = client(server, FixedClock(T0 + off))
    assert c.clock_skew is None  # nothing measured yet
    c.get()
    assert c.clock_skew is not None and abs(c.clock_skew - off) <= timedelta(seconds=1)


def test_a_missing_or_unreadable_date_measures_nothing() -> None:
    t = utc(2024, 1, 15, 1, 0, 30)
    assert measure_skew("Mon, 15 Jan 2024 01:00:30 GMT", t, t) == -timedelta(milliseconds=500)
    assert measure_skew("Mon, 15 Jan 2024 01:00:30 -0000", t, t + timedelta(seconds=2)) == timedelta(seconds=0.5)
    for bad in (
        None,
        "",
        "yesterday",
        "Mon, 99 Foo 2024 99:99:99 GMT",
        "Mon, 15 Jan 99999999999 01:00:30 GMT",
    ):
        assert measure_skew(bad, t, t) is None, bad


def test_wrong_token_or_site_is_a_clear_auth_error(server: SimServer, clock: FixedClock) -> None:
    with pytest.raises(AuthError, match="token or site id"):
        client(server, clock, token="wrong").get()
    with pytest.raises(AuthError):
        client(server, clock, site="111").get()


def test_429_carries_the_reset_time_and_blocks_the_limiter(server: SimServer, clock: FixedClock) -> None:
    c = client(server, clock, per_minute=5)
    c.limiter.per_minute = 50  # let this client overrun the server's 5/min on purpose
    for _ in range(5):
        c.get()
    with pytest.raises(RateLimited) as info:
        c.get()
    assert info.value.limit == "5" and info.value.remaining == "0"
    assert info.value.retry_at is not None and info.value.retry_at > T0
    assert c.limiter.available() == 0  # blocked until the server's reset time
    with pytest.raises(BudgetExhausted):
        c.get()
    assert server.log()["rate_limited"] == 1  # the blocked call never reached the server
    clock.advance(61)
    c.get()


def test_server_errors_and_html_bodies_are_typed(server: SimServer, clock: FixedClock) -> None:
    c = client(server, clock)
    server.control(api_error={"status": 502, "html": True, "count": 1})
    with pytest.raises(ServerError, match="HTTP 502"):
        c.get()
    server.control(api_error={"status": 200, "count": 1})  # a proxy's maintenance page with status 200
    with pytest.raises(BadResponse, match="not JSON"):
        c.get()
    c.get()  # the errors were one-offs


def test_a_hanging_api_times_out_while_the_simulator_still_answers_its_switchboard(server, clock) -> None:
    """``hang_s`` holds API requests past the client's timeout; the held request is never carried out, and the
    simulator's own ``/_state`` and ``/_control`` answer meanwhile (its server is threaded)."""
    c = NetZeroClient(server.base_url, TOKEN, SITE, clock, RateLimiter(clock), timeout_s=0.5)
    server.control(hang_s=30)
    started = time.monotonic()
    with pytest.raises(TransportError, match=r"timed out after 0\.5s"):
        c.post(PowerwallConfig(operational_mode="backup", grid_charging=True))
    assert time.monotonic() - started < 5
    state = server.state()  # while the POST above is still held by the simulator
    assert state["hung"] == 1 and state["writes"] == 0 and state["config"]["grid_charging"] is False
    server.control(hang_s=0)  # releases it: answered 504, not applied
    assert c.get().config.grid_charging is False
    assert server.state()["hung"] == 1


def test_unreachable_api_is_a_transport_error(clock: FixedClock) -> None:
    c = NetZeroClient("http://127.0.0.1:9/api/v1", TOKEN, SITE, clock, RateLimiter(clock), timeout_s=1)
    with pytest.raises(TransportError):
        c.get()


def test_the_limiter_allows_four_a_minute_whatever_calls_it(server: SimServer, clock: FixedClock) -> None:
    limiter = RateLimiter(clock, 4)
    a = NetZeroClient(server.base_url, TOKEN, SITE, clock, limiter)
    b = NetZeroClient(server.base_url, TOKEN, SITE, clock, limiter)
    made = 0
    for c in (a, b, a, b, a, b):
        try:
            c.get()
            made += 1
        except BudgetExhausted:
            pass
    assert made == 4
    clock.advance(30)
    assert limiter.available() == 0
    clock.advance(30)
    assert limiter.available() == 4
    assert server.log()["max_per_minute"] == 4


def test_reserve_81_to_99_is_never_sent() -> None:
    for pct in (81, 90, 99):
        with pytest.raises(ValueError, match="coerced"):
            config_body(PowerwallConfig(backup_reserve_pct=pct))
    assert config_body(PowerwallConfig(backup_reserve_pct=80)) == {"backup_reserve_percent": 80}
    assert config_body(PowerwallConfig(backup_reserve_pct=100)) == {"backup_reserve_percent": 100}


def test_parses_the_published_example_bodies() -> None:
    examples = json.loads(EXAMPLES.read_text())
    docs = parse_config(examples["docs_example"], T0)
    assert docs.soc_pct == 70 and docs.config.operational_mode == "autonomous"
    assert docs.capacity_kwh == pytest.approx(28.097)
    captured = parse_config(examples["issue29_capture"], T0)
    assert captured.config.energy_exports is None  # null on AU systems: not a crash
    assert captured.grid_status == GridStatus.ON_GRID and captured.battery_power_w == -4990


@pytest.mark.parametrize(
    "body",
    [[], {"operational_mode": "backup"}, {"percentage_charged": 150, "operational_mode": "backup"}, "x"],
)
def test_unexpected_shapes_are_bad_responses(body: object) -> None:
    with pytest.raises(BadResponse):
        parse_config(body, T0)


def test_off_grid_and_storm_are_read() -> None:
    body = {
        "backup_reserve_percent": 20,
        "operational_mode": "self_consumption",
        "grid_charging": False,
        "percentage_charged": 40,
        "grid_status": "Inactive (off_grid)",
        "live_status": {"grid_status": "Inactive", "island_status": "off_grid", "storm_mode_active": True},
    }
    status = parse_config(body, T0)
    assert status.grid_status == GridStatus.OFF_GRID and status.storm_mode_active is True


# ------------------------------------------------------------------ the simulator's hostile mode


def test_hostile_events_flip_the_grid_between_a_read_and_the_next_write(server: SimServer, clock) -> None:
    c = client(server, clock)
    server.control(events=[{"on": "after_get", "set": {"grid_outage": True}}])
    assert c.get().grid_status == GridStatus.ON_GRID  # the read was answered before the switch
    after = c.post(PowerwallConfig(operational_mode="backup", grid_charging=True))
    assert after.grid_status == GridStatus.OFF_GRID  # the write's response shows it
    log = server.log()
    assert [r["shown"]["grid_up"] for r in log["requests"]] == [True, False]
    assert [e["on"] for e in log["events"]] == ["after_get"]


def test_hostile_events_at_the_nth_request_and_at_a_time(server: SimServer, clock) -> None:
    c = client(server, clock, per_minute=50)
    server.control(
        events=[
            {"on": "before_post", "nth": 2, "set": {"storm": True}},
            {"on": "time", "t": (T0 + timedelta(seconds=90)).isoformat(), "set": {"storm": False}},
        ]
    )
    change = PowerwallConfig(grid_charging=False)
    assert c.post(change).storm_mode_active is False
    assert c.get().storm_mode_active is False  # a GET does not count towards a before_post event
    assert c.post(change).storm_mode_active is True  # the second POST's response shows the storm watch
    clock.advance(89)
    assert c.get().storm_mode_active is True
    clock.advance(2)
    assert c.get().storm_mode_active is False
    assert server.log()["events"][1]["t"] == (T0 + timedelta(seconds=90)).isoformat()


def test_hostile_mode_refuses_only_writes_and_answers_429_with_retry_after(server: SimServer, clock) -> None:
    c = client(server, clock)
    server.control(api_error={"status": 429, "retry_after_s": 120, "methods": ["POST"], "html": False, "count": 1})
    c.get()  # reads still work
    with pytest.raises(RateLimited) as info:
        c.post(PowerwallConfig(grid_charging=False))
    assert info.value.retry_at == T0 + timedelta(seconds=120)  # Retry-After, not the window's reset
    assert server.state()["writes"] == 0
    server.control(api_error={"status": 403, "methods": ["GET"]})
    with pytest.raises(AuthError, match="HTTP 403"):
        client(server, clock).get()


def test_hostile_mode_reset_starts_a_new_case(server: SimServer, clock) -> None:
    c = client(server, clock)
    server.control(grid_outage=True, events=[{"on": "before_any", "set": {"storm": True}}])
    c.get()
    server.control(reset=True, config={"backup_reserve_percent": 100}, soc_pct=30)
    state = server.state()
    assert state["grid_up"] and not state["storm"] and state["request_count"] == 0
    assert state["config"]["backup_reserve_percent"] == 100 and state["soc_pct"] == pytest.approx(30)
    assert c.limiter.available() == 3  # the client's own window is its own affair
    assert server.log()["events"] == []
    with pytest.raises(Exception, match="400"):
        server.control(events=[{"on": "sometime", "set": {}}])
