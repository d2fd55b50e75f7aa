"""Slot arithmetic across the UK clock changes of 2024, 2025 and 2026."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.slots import (
    SLOT,
    agile_day_bounds,
    in_local_window,
    local_day_bounds,
    local_day_slots,
    local_wall_time,
    slot_overlaps_local_window,
    slot_start,
    window_slots,
)

SPRING = [date(2024, 3, 31), date(2025, 3, 30), date(2026, 3, 29)]
AUTUMN = [date(2024, 10, 27), date(2025, 10, 26), date(2026, 10, 25)]
PEAK = (time(16), time(19))


@pytest.mark.parametrize("day", SPRING)
def test_spring_forward_day_has_46_slots(day: date) -> None:
    slots = local_day_slots(day)
    assert len(slots) == 46
    assert slots[0] == datetime.combine(day, time(0), tzinfo=UTC)  # still GMT at midnight
    assert slots[-1] == datetime.combine(day, time(22, 30), tzinfo=UTC)  # 23:30 BST


@pytest.mark.parametrize("day", AUTUMN)
def test_fall_back_day_has_50_slots(day: date) -> None:
    slots = local_day_slots(day)
    assert len(slots) == 50
    assert slots[0] == datetime.combine(day - timedelta(days=1), time(23), tzinfo=UTC)  # 00:00 BST
    assert slots[-1] == datetime.combine(day, time(23, 30), tzinfo=UTC)  # 23:30 GMT


@pytest.mark.parametrize("day", [date(2024, 1, 15), date(2025, 7, 1), date(2026, 12, 25)])
def test_ordinary_days_have_48_slots(day: date) -> None:
    assert len(local_day_slots(day)) == 48


def test_peak_window_is_local_time_in_summer_and_winter() -> None:
    winter = window_slots(date(2024, 1, 15), *PEAK)
    summer = window_slots(date(2024, 7, 15), *PEAK)
    assert winter[0] == datetime(2024, 1, 15, 16, tzinfo=UTC) and len(winter) == 6
    assert summer[0] == datetime(2024, 7, 15, 15, tzinfo=UTC) and len(summer) == 6


@pytest.mark.parametrize("day", SPRING + AUTUMN)
def test_peak_window_on_clock_change_days_is_three_hours(day: date) -> None:
    slots = window_slots(day, *PEAK)
    assert len(slots) == 6
    assert all(in_local_window(s, *PEAK) for s in slots)
    assert not in_local_window(slots[0] - SLOT, *PEAK)
    assert not in_local_window(slots[-1] + SLOT, *PEAK)


def test_window_overlap_catches_a_slot_straddling_the_edge() -> None:
    # A 16:15–19:15 window overlaps the 16:00 and 19:00 slots though neither starts inside it.
    start, end = time(16, 15), time(19, 15)
    assert slot_overlaps_local_window(datetime(2024, 1, 15, 16, tzinfo=UTC), start, end)
    assert slot_overlaps_local_window(datetime(2024, 1, 15, 19, tzinfo=UTC), start, end)
    assert not slot_overlaps_local_window(datetime(2024, 1, 15, 19, 30, tzinfo=UTC), start, end)


def test_nonexistent_local_time_moves_past_the_gap() -> None:
    assert local_wall_time(date(2025, 3, 30), time(1, 30)) == datetime(2025, 3, 30, 1, tzinfo=UTC)


def test_agile_day_runs_23_to_23_local() -> None:
    s, e = agile_day_bounds(date(2024, 5, 14))
    assert (s, e) == (datetime(2024, 5, 13, 22, tzinfo=UTC), datetime(2024, 5, 14, 22, tzinfo=UTC))
    s, e = agile_day_bounds(date(2024, 10, 27))
    assert (e - s) / SLOT == 50


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        slot_start(datetime(2024, 1, 1, 12))


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 30)))
def test_consecutive_local_days_tile_time(day: date) -> None:
    today, tomorrow = local_day_slots(day), local_day_slots(day + timedelta(days=1))
    assert today[-1] + SLOT == tomorrow[0]  # no gap, no overlap
    assert all(b - a == SLOT for a, b in pairwise(today))
    assert len(today) in (46, 48, 50)
    s, e = local_day_bounds(day)
    assert s == today[0] and e == tomorrow[0]


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)))
def test_every_instant_is_in_exactly_its_slot(t: datetime) -> None:
    s = slot_start(t)
    assert s <= t < s + SLOT
    assert s.minute in (0, 30) and s.second == 0 and s.microsecond == 0
