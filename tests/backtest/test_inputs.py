"""Bad backtest inputs give a clear message naming the problem and the line, never a silently wrong total."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tools.backtest.inputs import (
    InputError,
    parse_consumption_csv,
    parse_consumption_json,
    parse_prices_csv,
    parse_rates_json,
)

HEADER = "Consumption (kWh), Start, End\n"


def octopus_rows(start: datetime, n: int, value: float = 0.25, tz_offset_h: int = 0) -> list[str]:
    """Rows shaped like the Octopus download: local offsets (+01:00 in summer)."""
    from datetime import timezone

    tz = timezone(timedelta(hours=tz_offset_h))
    out = []
    for i in range(n):
        s = (start + timedelta(minutes=30 * i)).astimezone(tz)
        out.append(f"{value}, {s.isoformat()}, {(s + timedelta(minutes=30)).isoformat()}")
    return out


def test_the_octopus_download_parses_with_local_offsets() -> None:
    rows = octopus_rows(datetime(2023, 6, 1, 0, tzinfo=UTC) - timedelta(hours=1), 48, 0.2, tz_offset_h=1)
    s = parse_consumption_csv(HEADER + "\n".join(rows) + "\n")
    assert len(s) == 48 and s.sum() == pytest.approx(9.6)
    assert s.index[0] == datetime(2023, 5, 31, 23, 0, tzinfo=UTC)


def test_the_autumn_clock_change_with_offsets_is_fine() -> None:
    # 2023-10-29: 01:00 and 01:30 happen twice locally, but the offsets tell them apart.
    rows = [
        "0.1, 2023-10-29T00:30:00+01:00, 2023-10-29T01:00:00+01:00",
        "0.1, 2023-10-29T01:00:00+01:00, 2023-10-29T01:30:00+01:00",
        "0.1, 2023-10-29T01:30:00+01:00, 2023-10-29T01:00:00+00:00",
        "0.1, 2023-10-29T01:00:00+00:00, 2023-10-29T01:30:00+00:00",
        "0.1, 2023-10-29T01:30:00+00:00, 2023-10-29T02:00:00+00:00",
    ]
    assert len(parse_consumption_csv(HEADER + "\n".join(rows))) == 5


def test_a_gap_names_the_missing_period_and_the_lines() -> None:
    rows = octopus_rows(datetime(2024, 1, 15, tzinfo=UTC), 10)
    del rows[4:7]  # three half-hours missing
    with pytest.raises(InputError) as err:
        parse_consumption_csv(HEADER + "\n".join(rows))
    msg = str(err.value)
    assert "gap" in msg and "2024-01-15T02:00Z" in msg and "2024-01-15T03:30Z" in msg
    assert "between lines 5 and 6" in msg and "3 half-hour(s) missing" in msg
    assert err.value.line == 6


def test_naive_local_times_repeated_at_the_autumn_change_are_rejected() -> None:
    text = "Consumption (kWh),Start\n0.1,2023-10-29 00:30:00\n0.1,2023-10-29 01:00:00\n0.1,2023-10-29 01:30:00\n"
    text += "0.1,2023-10-29 01:00:00\n"
    with pytest.raises(InputError) as err:
        parse_consumption_csv(text)
    assert "ambiguous on a clock change" in str(err.value) and err.value.line == 3


def test_an_exact_duplicate_reading_is_rejected_with_both_lines() -> None:
    rows = octopus_rows(datetime(2024, 1, 15, tzinfo=UTC), 4)
    rows.insert(2, rows[1])
    with pytest.raises(InputError) as err:
        parse_consumption_csv(HEADER + "\n".join(rows))
    assert "duplicate reading for 2024-01-15T00:30Z" in str(err.value)
    assert "line 3" in str(err.value) and "line 4" in str(err.value)


def test_wh_values_in_a_kwh_column_are_caught() -> None:
    rows = octopus_rows(datetime(2024, 1, 15, tzinfo=UTC), 4, value=350.0)
    with pytest.raises(InputError) as err:
        parse_consumption_csv(HEADER + "\n".join(rows))
    assert "look like Wh" in str(err.value) and err.value.line == 2


def test_a_wh_header_or_a_unit_column_converts_explicitly() -> None:
    wh = parse_consumption_csv(
        "Consumption (Wh),Start,End\n" + "\n".join(octopus_rows(datetime(2024, 1, 15, tzinfo=UTC), 2, 350.0))
    )
    assert wh.sum() == pytest.approx(0.7)
    text = "Start,Consumption,Unit\n2024-01-15T00:00:00Z,500,Wh\n2024-01-15T00:30:00Z,0.5,kWh\n"
    assert parse_consumption_csv(text).tolist() == [0.5, 0.5]
    with pytest.raises(InputError) as err:
        parse_consumption_csv("Start,Consumption,Unit\n2024-01-15T00:00:00Z,5,MWh\n")
    assert "unknown unit 'MWh'" in str(err.value) and err.value.line == 2


def test_an_unknown_column_layout_names_what_it_found() -> None:
    with pytest.raises(InputError) as err:
        parse_consumption_csv("date,reading,meter\n2024-01-15,123,abc\n")
    assert "unknown column layout" in str(err.value) and "'reading'" in str(err.value) and err.value.line == 1


def test_hourly_rows_are_not_taken_for_half_hours() -> None:
    text = HEADER + "0.4, 2024-01-15T00:00:00Z, 2024-01-15T01:00:00Z\n"
    with pytest.raises(InputError) as err:
        parse_consumption_csv(text)
    assert "lasts 60 minutes" in str(err.value) and err.value.line == 2


def test_a_bad_number_or_time_names_the_line() -> None:
    rows = octopus_rows(datetime(2024, 1, 15, tzinfo=UTC), 3)
    rows[1] = rows[1].replace("0.25", "n/a")
    with pytest.raises(InputError) as err:
        parse_consumption_csv(HEADER + "\n".join(rows))
    assert "'n/a' is not a number" in str(err.value) and err.value.line == 3
    with pytest.raises(InputError) as err:
        parse_consumption_csv(HEADER + "0.1, yesterday, today\n")
    assert "cannot read the start time 'yesterday'" in str(err.value)


def test_consumption_api_json() -> None:
    doc = {
        "results": [
            {
                "consumption": 0.113,
                "interval_start": "2024-05-07T00:30:00+01:00",
                "interval_end": "2024-05-07T01:00:00+01:00",
            },
            {
                "consumption": 0.2,
                "interval_start": "2024-05-07T00:00:00+01:00",
                "interval_end": "2024-05-07T00:30:00+01:00",
            },
        ]
    }
    s = parse_consumption_json(json.loads(json.dumps(doc)))
    assert s.index[0] == datetime(2024, 5, 6, 23, 0, tzinfo=UTC) and s.tolist() == [0.2, 0.113]


def test_prices_csv_layouts_and_units() -> None:
    bundled = parse_prices_csv("slot_start_utc,value_inc_vat_p\n2024-01-15T00:00:00Z,15.0\n2024-01-15T00:30:00Z,-2.1\n")
    assert bundled.tolist() == pytest.approx([0.15, -0.021])
    api = parse_prices_csv(
        "value_exc_vat,value_inc_vat,valid_from,valid_to\n"
        "14.29,15.0,2024-01-15T00:30:00Z,2024-01-15T01:00:00Z\n20,21.0,2024-01-15T00:00:00Z,2024-01-15T00:30:00Z\n"
    )
    assert api.tolist() == pytest.approx([0.21, 0.15])
    with pytest.raises(InputError) as err:
        parse_prices_csv("slot_start_utc,value_inc_vat_p\n2024-01-15T00:00:00Z,1500\n")
    assert "not plausible" in str(err.value) and err.value.line == 2


def test_rates_json_from_the_api() -> None:
    doc = {
        "count": 2,
        "next": None,
        "results": [
            {"value_inc_vat": 15.246, "valid_from": "2024-05-14T21:30:00Z", "valid_to": "2024-05-14T22:00:00Z"},
            {"value_inc_vat": 20.0, "valid_from": "2024-05-14T21:00:00Z", "valid_to": "2024-05-14T21:30:00Z"},
        ],
    }
    assert parse_rates_json(doc).tolist() == pytest.approx([0.2, 0.15246])
    with pytest.raises(InputError, match="'results' list"):
        parse_rates_json({"detail": "Not found."})


def test_pv_csv_and_its_errors() -> None:
    from tools.backtest.inputs import parse_pv_csv

    s = parse_pv_csv("start,pv_kwh\n2024-06-01T11:00:00Z,1.2\n2024-06-01T11:30:00Z,1.4\n")
    assert s.tolist() == [1.2, 1.4]
    with pytest.raises(InputError) as err:
        parse_pv_csv("start,pv_kwh\n2024-06-01T11:00:00Z,1200\n")
    assert "not plausible" in str(err.value) and err.value.line == 2
    with pytest.raises(InputError, match="unknown column layout"):
        parse_pv_csv("when,watts\n2024-06-01T11:00:00Z,1200\n")
