"""Octopus's rate rows of every tariff kind as half-hours: bands, open-ended prices, Tracker days, bad edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.pricing.tariffs import Kind, RowsRejected, day_ahead, half_hour_rows, kind_of
from services.pricing.validation import BatchRejected, validate_rates


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("AGILE-24-10-01", Kind.AGILE),
        ("AGILE-FLEX-22-11-25", Kind.AGILE),
        ("AGILE-OUTGOING-19-05-13", Kind.AGILE_OUTGOING),
        ("GO-VAR-22-10-14", Kind.GO),
        ("INTELLI-VAR-22-10-14", Kind.INTELLIGENT_GO),
        ("FLUX-IMPORT-23-02-14", Kind.FLUX_IMPORT),
        ("FLUX-EXPORT-23-02-14", Kind.FLUX_EXPORT),
        ("COSY-22-12-08", Kind.COSY),
        ("SILVER-23-12-06", Kind.TRACKER),
        ("OE-FIX-12M-24-09-18", Kind.FIXED),
        ("OUTGOING-FIX-12M-19-05-13", Kind.FIXED),
        ("VAR-22-11-01", Kind.FIXED),
        ("GOOD-ENERGY-1", Kind.FIXED),  # "GO" only as a whole first part
    ],
)
def test_the_kind_of_a_product_follows_its_code(code: str, kind: Kind) -> None:
    assert kind_of(code) == kind


def test_only_agile_and_tracker_wait_for_the_afternoon_publication() -> None:
    assert day_ahead("AGILE-24-10-01") and day_ahead("SILVER-23-12-06")
    assert not day_ahead("GO-VAR-22-10-14") and not day_ahead("OE-FIX-12M-24-09-18")


def row(lo: str, hi: str | None, p: float) -> dict:
    return {"valid_from": lo, "valid_to": hi, "value_inc_vat": p, "value_exc_vat": round(p / 1.05, 6)}


def test_a_band_and_an_open_ended_price_become_half_hours_inside_the_window() -> None:
    start, end = utc("2024-03-31T00:00Z"), utc("2024-03-31T06:00Z")
    rows = [
        row("2024-03-30T04:30Z", "2024-03-31T00:30Z", 27.0),  # starts before the window
        row("2024-03-31T00:30Z", "2024-03-31T03:30Z", 8.5),
        row("2024-03-31T03:30Z", None, 27.0),  # the current price, open-ended
    ]
    out = half_hour_rows(rows, start, end)
    checked = validate_rates(out.rows)
    assert [r.start for r in checked.rates] == [start + timedelta(minutes=30 * k) for k in range(12)]
    assert [round(r.value_inc_vat * 100, 2) for r in checked.rates] == [27.0] + [8.5] * 6 + [27.0] * 5
    assert out.open_ended == 1 and out.banded == 3
    assert not checked.gaps


def test_half_hour_rows_pass_through_so_validation_still_judges_them() -> None:
    rows = [row("2024-03-31T00:00Z", "2024-03-31T00:30Z", 10.0), row("2024-03-31T00:00Z", "2024-03-31T00:30Z", 12.0)]
    out = half_hour_rows(rows, utc("2024-03-31T00:00Z"), utc("2024-03-31T01:00Z"))
    assert out.rows == rows
    with pytest.raises(BatchRejected, match="twice with different prices"):
        validate_rates(out.rows)


def test_overlapping_bands_with_different_prices_reject_the_batch() -> None:
    rows = [row("2024-03-31T00:00Z", "2024-03-31T02:00Z", 10.0), row("2024-03-31T01:00Z", None, 20.0)]
    out = half_hour_rows(rows, utc("2024-03-31T00:00Z"), utc("2024-03-31T03:00Z"))
    with pytest.raises(BatchRejected, match="2024-03-31T01:00Z appears twice"):
        validate_rates(out.rows)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([row("2024-03-31T00:15Z", "2024-03-31T04:30Z", 8.5)], "valid_from 2024-03-31T00:15:00Z is not on the"),
        ([row("2024-03-31T04:30Z", "2024-03-31T00:30Z", 8.5)], "is not after valid_from"),
        ([row("2024-03-31T00:30", "2024-03-31T04:30Z", 8.5)], "has no time zone"),
        ([row("yesterday", None, 8.5)], "not an ISO time"),
    ],
)
def test_a_row_that_cannot_be_placed_is_refused_with_the_reason(rows: list, message: str) -> None:
    with pytest.raises(RowsRejected, match=message):
        half_hour_rows(rows, utc("2024-03-30T00:00Z"), utc("2024-04-01T00:00Z"))


def test_the_replay_sees_a_tariff_known_ahead_to_midnight_after_tomorrow_across_the_clock_change() -> None:
    import pandas as pd

    from services.planner.replay import known_ahead_end, published_end

    slots = pd.date_range("2024-03-29T00:00Z", "2024-04-03T00:00Z", freq="30min", inclusive="left")
    i = int(slots.searchsorted(pd.Timestamp("2024-03-30T12:00Z")))  # noon GMT on the Saturday
    ahead, agile = known_ahead_end(slots), published_end(slots)
    assert slots[ahead[i]] == pd.Timestamp("2024-03-31T23:00Z")  # local midnight starting Monday 1 April (BST)
    assert slots[agile[i]] == pd.Timestamp("2024-03-30T23:00Z")  # before 16:00: Agile ends 23:00 today (GMT)
    j = int(slots.searchsorted(pd.Timestamp("2024-03-31T15:00Z")))  # 16:00 BST on the Sunday
    assert slots[agile[j]] == pd.Timestamp("2024-04-01T22:00Z") and slots[ahead[j]] == pd.Timestamp("2024-04-01T23:00Z")
