"""Intelligent Octopus Go: the smart-charge dispatches read from the account's GraphQL API make their half-hours
off-peak on the bus (also outside 23:30-05:30), follow the account's changes, and survive a failing API."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from services.pricing.dispatches import Dispatch, parse_dispatches, with_dispatches
from shared.clock import FixedClock
from shared.models import Rate
from shared.slots import SLOT
from sim import octopus_tariffs as ot
from sim.octopus import ACCOUNT_NUMBER, API_KEY, FakeOctopus
from tests.support.probe import Probe

RATES, CURRENT = "batsched/pricing/import/rates", "batsched/pricing/import/current"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def price_p(series: dict, start: str) -> float:
    return next(round(r["value_inc_vat"] * 100, 4) for r in series["rates"] if utc(r["start"]) == utc(start))


def test_both_answer_shapes_are_read_and_a_touched_half_hour_counts_whole() -> None:
    data = {
        "plannedDispatches": [{"start": "2024-10-27 14:10:00+00:00", "end": "2024-10-27 15:00:00+00:00"}],
        "completedDispatches": [{"startDt": "2024-10-27T02:00:00Z", "endDt": "2024-10-27T02:30:00Z", "meta": None}],
    }
    found = parse_dispatches(data)
    assert [d.start for d in found] == [utc("2024-10-27T02:00Z"), utc("2024-10-27T14:10Z")]
    t0 = utc("2024-10-27T13:30Z")
    rates = [Rate(start=t0 + k * SLOT, end=t0 + (k + 1) * SLOT, value_inc_vat=0.265) for k in range(4)]
    rates.append(Rate(start=t0 + 4 * SLOT, end=t0 + 5 * SLOT, value_inc_vat=0.07))
    out, changed = with_dispatches(rates, [Dispatch(utc("2024-10-27T14:10Z"), utc("2024-10-27T15:00Z"))])
    assert [r.value_inc_vat for r in out] == [0.265, 0.07, 0.07, 0.265, 0.07]
    assert changed == 2


def test_dispatched_half_hours_are_published_off_peak_and_follow_the_account(
    pricing, probe: Probe, clock: FixedClock, fake: FakeOctopus
) -> None:
    clock.set(utc("2024-10-27T12:00Z"))
    fake.graphql.update({"dispatches": [{"start": "2024-10-27T14:10:00Z", "end": "2024-10-27T15:00:00Z"}]})
    running = pricing(
        octopus_product=ot.INTELLIGENT_GO, octopus_account=ACCOUNT_NUMBER, octopus_api_key=API_KEY,
        dispatch_refresh_s=60,
    )  # fmt: skip
    series = probe.wait_json(RATES, lambda d: price_p(d, "2024-10-27T14:00Z") == 7.0, timeout=15)
    assert price_p(series, "2024-10-27T14:30Z") == 7.0
    assert price_p(series, "2024-10-27T13:30Z") == price_p(series, "2024-10-27T15:00Z") == 26.5
    assert price_p(series, "2024-10-27T23:30Z") == 7.0  # the tariff's own window is still there

    # The car plans another charge: the next read publishes it.
    fake.graphql.update(
        {"dispatches": [{"start": "2024-10-27T14:10:00Z", "end": "2024-10-27T15:00:00Z"},
                        {"start": "2024-10-27T17:00:00Z", "end": "2024-10-27T17:30:00Z"}]}
    )  # fmt: skip
    next_read(clock, fake)
    series = probe.wait_json(RATES, lambda d: price_p(d, "2024-10-27T17:00Z") == 7.0, timeout=15)
    assert price_p(series, "2024-10-27T14:00Z") == 7.0

    # GraphQL fails: the dispatches last known stay, one warning.
    fake.graphql.update({"fail_500": -1})
    warning = "Intelligent Octopus Go dispatches not read; keeping the last known"
    next_read(clock, fake)
    next_read(clock, fake)
    assert len(running.logged(warning)) == 1
    latest = probe.latest(RATES)
    assert latest is not None and price_p(latest.json(), "2024-10-27T17:00Z") == 7.0


def next_read(clock: FixedClock, fake: FakeOctopus, tries: int = 20) -> None:
    """Move the clock a read interval on until the service reads the dispatches again (a move made while the
    previous read was still publishing counts from the moved time, so one move is not always enough)."""
    asked = sum(1 for r in fake.graphql.requests if r["operation"] == "plannedDispatches")
    for _ in range(tries):
        clock.advance(timedelta(seconds=61))
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            if sum(1 for r in fake.graphql.requests if r["operation"] == "plannedDispatches") > asked:
                return
            time.sleep(0.02)
    raise AssertionError("the service did not read the dispatches again")


def test_without_the_account_no_dispatch_is_read(pricing, probe: Probe, clock: FixedClock, fake: FakeOctopus) -> None:
    clock.set(utc("2024-10-27T12:00Z"))
    fake.graphql.update({"dispatches": [{"start": "2024-10-27T14:00:00Z", "end": "2024-10-27T15:00:00Z"}]})
    pricing(octopus_product=ot.INTELLIGENT_GO)
    series = probe.wait_json(RATES, timeout=15)
    assert price_p(series, "2024-10-27T14:00Z") == 26.5
    assert not fake.graphql.requests
