"""When the service fetches and when it says prices are late (pure functions of time and coverage)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from services.pricing.schedule import (
    Timetable,
    end_of_agile_day,
    has_tomorrow,
    next_delay,
    prices_late,
    tomorrow_overdue,
)
from shared.slots import LONDON

TT = Timetable(tz=LONDON)
RNG = random.Random(7)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_tomorrow_ends_at_23_local_across_the_clock_change() -> None:
    # Saturday 2023-10-28 (BST) → Sunday 2023-10-29 23:00 GMT = 23:00Z.
    assert end_of_agile_day(utc("2023-10-28T17:00"), LONDON, 1) == utc("2023-10-29T23:00")
    # Saturday 2024-03-30 (GMT) → Sunday 2024-03-31 23:00 BST = 22:00Z.
    assert end_of_agile_day(utc("2024-03-30T17:00"), LONDON, 1) == utc("2024-03-31T22:00")


def test_refreshes_hourly_in_the_morning_but_wakes_at_16_local() -> None:
    today_end = utc("2023-06-12T22:00")  # 23:00 BST: today's prices are complete
    assert 3600 <= next_delay(utc("2023-06-12T08:00"), today_end, TT, rng=RNG) <= 3960
    # 15:30 BST: poll start (16:00 BST = 15:00Z) is 30 min away, so wake then (+ a little jitter).
    delay = next_delay(utc("2023-06-12T14:30"), today_end, TT, rng=RNG)
    assert 1800 < delay <= 1860


def test_after_16_local_polls_every_few_minutes_backing_off_until_tomorrow_appears() -> None:
    now, today_end = utc("2023-06-12T15:10"), utc("2023-06-12T22:00")
    delays = [next_delay(now, today_end, TT, polls_without_news=n, rng=RNG) for n in range(8)]
    assert 300 <= delays[0] <= 330
    assert delays[2] > delays[1] > delays[0]
    assert max(delays) <= 1800 * 1.1
    # Once tomorrow is there: back to hourly.
    assert next_delay(now, utc("2023-06-13T22:00"), TT, rng=RNG) >= 3600


def test_failures_back_off_to_a_ceiling() -> None:
    now = utc("2023-06-12T08:00")
    delays = [next_delay(now, None, TT, failures=n, rng=RNG) for n in range(1, 10)]
    assert 60 <= delays[0] <= 66
    assert delays[3] > delays[1] > delays[0]
    assert max(delays) <= 1800 * 1.1


@pytest.mark.parametrize(
    ("now", "coverage", "late"),
    [
        ("2023-06-12T18:59", "2023-06-12T22:00", False),  # 19:59 BST, tomorrow not out: not late yet
        ("2023-06-12T19:00", "2023-06-12T22:00", True),  # 20:00 BST: late
        ("2023-06-12T19:00", "2023-06-13T22:00", False),  # tomorrow published
        ("2023-06-12T19:00", "2023-06-13T12:00", True),  # tomorrow only partly published
        ("2023-06-12T08:00", "2023-06-12T12:00", True),  # today itself incomplete
        ("2023-06-12T08:00", None, True),
    ],
)
def test_prices_late(now: str, coverage: str | None, late: bool) -> None:
    cov = utc(coverage) if coverage else None
    assert prices_late(utc(now), cov, TT) is late


def test_late_and_has_tomorrow_use_local_time_in_winter() -> None:
    # 2024-01-15 is GMT: 20:00 local = 20:00Z; tomorrow ends 2024-01-16T23:00Z.
    assert not tomorrow_overdue(utc("2024-01-15T19:59"), utc("2024-01-15T23:00"), TT)
    assert tomorrow_overdue(utc("2024-01-15T20:00"), utc("2024-01-15T23:00"), TT)
    assert has_tomorrow(utc("2024-01-15T20:00"), utc("2024-01-16T23:00"), TT)
