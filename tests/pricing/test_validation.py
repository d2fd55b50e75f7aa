"""Validation of raw Octopus rows: what is kept, what rejects the whole batch (pure, no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.pricing.validation import BatchRejected, Bounds, validate_rates
from shared.slots import SLOT, agile_day_bounds, iter_slots


def row(start: datetime, inc_p: float, exc_p: float | None = None, minutes: int = 30) -> dict:
    return {
        "value_exc_vat": round(inc_p / 1.05, 4) if exc_p is None else exc_p,
        "value_inc_vat": inc_p,
        "valid_from": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "valid_to": (start + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "payment_method": None,
    }


def day_rows(day: date, price=lambda i: 10.0 + i) -> list[dict]:
    starts = list(iter_slots(*agile_day_bounds(day)))
    return [row(s, price(i)) for i, s in enumerate(starts)][::-1]  # newest first, like the API


T0 = datetime(2023, 6, 12, 12, tzinfo=UTC)


@pytest.mark.parametrize(("day", "n"), [(date(2023, 6, 12), 48), (date(2024, 3, 31), 46), (date(2023, 10, 29), 50)])
def test_a_publication_day_keeps_every_slot_sorted_in_gbp(day: date, n: int) -> None:
    out = validate_rates(day_rows(day))
    assert len(out.rates) == n
    assert [r.start for r in out.rates] == sorted(r.start for r in out.rates)
    assert out.rates[0].value_inc_vat == pytest.approx(0.10)  # pence / 100, oldest first
    assert not out.gaps and out.duplicates_dropped == 0


def test_a_repeated_slot_with_the_same_price_is_dropped() -> None:
    rows = [row(T0, 12.0), row(T0 + SLOT, 13.0), row(T0, 12.0)]
    out = validate_rates(rows)
    assert [r.value_inc_vat for r in out.rates] == [0.12, 0.13]
    assert out.duplicates_dropped == 1


def test_a_repeated_slot_with_a_different_price_rejects_the_batch() -> None:
    with pytest.raises(BatchRejected, match="appears twice with different prices"):
        validate_rates([row(T0, 12.0), row(T0 + SLOT, 13.0), row(T0, 19.5)])


def test_a_missing_slot_is_a_gap_not_zero() -> None:
    out = validate_rates([row(T0, 12.0), row(T0 + 2 * SLOT, 14.0)])
    assert [r.start for r in out.rates] == [T0, T0 + 2 * SLOT]
    assert out.gaps == [T0 + SLOT]


@pytest.mark.parametrize("inc_p", [-19.94, 0.0, 100.0])
def test_negative_zero_and_capped_prices_are_kept(inc_p: float) -> None:
    out = validate_rates([row(T0, inc_p)])
    assert out.rates[0].value_inc_vat == pytest.approx(inc_p / 100)


@pytest.mark.parametrize("inc_p", [100.5, 150.0, -60.0])
def test_prices_outside_the_plausible_range_reject_the_batch(inc_p: float) -> None:
    with pytest.raises(BatchRejected, match="outside the plausible range"):
        validate_rates([row(T0, 12.0), row(T0 + SLOT, inc_p)])


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ({"valid_to": "2023-06-12T13:00:00Z"}, "not 30 minutes"),
        ({"valid_from": "2023-06-12T12:15:00Z", "valid_to": "2023-06-12T12:45:00Z"}, "half-hour grid"),
        ({"valid_from": "2023-06-12T12:00:00"}, "no time zone"),
        ({"valid_from": "yesterday"}, "not an ISO time"),
        ({"value_inc_vat": None}, "not a finite number"),
        ({"value_inc_vat": "12.0"}, "not a finite number"),
        ({"value_inc_vat": float("nan")}, "not a finite number"),
        ({"value_exc_vat": 5.0}, "does not match value_exc_vat"),
    ],
)
def test_malformed_rows_reject_the_batch(bad: dict, reason: str) -> None:
    with pytest.raises(BatchRejected, match=reason):
        validate_rates([row(T0 + SLOT, 13.0), {**row(T0, 12.0), **bad}])


@pytest.mark.parametrize("rows", [None, {"results": []}, "<html>", [1, 2]])
def test_not_a_list_of_objects_is_rejected(rows) -> None:
    with pytest.raises(BatchRejected):
        validate_rates(rows)


def test_export_prices_carry_no_vat() -> None:
    out = validate_rates([row(T0, 5.0, exc_p=5.0)], Bounds(min_gbp=0.0, vat_included=False))
    assert out.rates[0].value_inc_vat == 0.05


@given(
    keep=st.lists(st.booleans(), min_size=50, max_size=50),
    repeat=st.lists(st.integers(0, 49), max_size=5),
    seed=st.randoms(use_true_random=False),
)
def test_any_subset_in_any_order_keeps_exactly_the_sent_slots(keep: list[bool], repeat: list[int], seed) -> None:
    all_starts = list(iter_slots(*agile_day_bounds(date(2023, 10, 29))))  # the 50-slot day
    prices = {s: round(seed.uniform(-20, 100), 4) for s in all_starts}
    sent = [s for s, k in zip(all_starts, keep, strict=True) if k]
    rows = [row(s, prices[s]) for s in sent] + [row(all_starts[i], prices[all_starts[i]]) for i in repeat if keep[i]]
    seed.shuffle(rows)
    out = validate_rates(rows)
    assert [r.start for r in out.rates] == sent
    assert all(r.value_inc_vat == pytest.approx(prices[r.start] / 100) for r in out.rates)
    if sent:
        inside = [s for s in all_starts if sent[0] <= s <= sent[-1]]
        assert sorted(out.gaps) == [s for s in inside if s not in set(sent)]
