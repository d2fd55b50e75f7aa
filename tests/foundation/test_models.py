"""Message models: aware UTC on the wire, validation of bad data, and the published JSON Schemas."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from shared.models import (
    BatteryState,
    CurrentRate,
    OverrideCommand,
    Rate,
    RateSeries,
)
from shared.topics import SCHEMA_MODELS, Topics
from tests.support.contract import SCHEMA_DIR, foreign_keywords, schema_for, validator, violations
from tools.gen_schemas import main as gen_schemas

T0 = datetime(2025, 1, 15, 16, tzinfo=UTC)


def rate(start: datetime, value: float) -> Rate:
    return Rate(start=start, end=start + timedelta(minutes=30), value_inc_vat=value)


def test_times_go_out_in_utc_with_z() -> None:
    bst = timezone(timedelta(hours=1))
    r = Rate(
        start=datetime(2025, 7, 1, 17, tzinfo=bst), end=datetime(2025, 7, 1, 17, 30, tzinfo=bst), value_inc_vat=0.25
    )
    doc = json.loads(r.model_dump_json())
    assert doc["start"] == "2025-07-01T16:00:00Z"


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        BatteryState(generated_at=datetime(2025, 1, 1), valid_until=T0, observed_at=T0, soc_pct=50)


def test_rate_series_refuses_duplicates_disorder_and_bad_slots() -> None:
    ok = RateSeries(
        generated_at=T0,
        valid_until=T0 + timedelta(hours=1),
        tariff_code="E-1R-AGILE-24-10-01-J",
        rates=[rate(T0, 0.1), rate(T0 + timedelta(minutes=30), 0.2)],
    )
    assert ok.price_at(T0 + timedelta(minutes=30)) == 0.2
    assert ok.price_at(T0 + timedelta(hours=1)) is None  # a gap is unknown, never 0
    for rates in ([rate(T0, 0.1), rate(T0, 0.2)], [rate(T0 + timedelta(minutes=30), 0.1), rate(T0, 0.2)]):
        with pytest.raises(ValidationError):
            RateSeries(generated_at=T0, valid_until=T0, tariff_code="x", rates=rates)
    with pytest.raises(ValidationError, match="30 minutes"):
        Rate(start=T0, end=T0 + timedelta(minutes=60), value_inc_vat=0.1)
    with pytest.raises(ValidationError):
        Rate(start=T0, end=T0 + timedelta(minutes=30), value_inc_vat=float("nan"))


def test_unknown_current_price_is_null_not_zero() -> None:
    c = CurrentRate(
        generated_at=T0,
        valid_until=T0 + timedelta(minutes=30),
        tariff_code="x",
        slot_start=T0,
        slot_end=T0 + timedelta(minutes=30),
        known=False,
    )
    assert json.loads(c.model_dump_json())["value_inc_vat"] is None
    with pytest.raises(ValidationError):
        CurrentRate(
            generated_at=T0, valid_until=T0, tariff_code="x", slot_start=T0, slot_end=T0, known=False, value_inc_vat=0.0
        )


def test_override_needs_an_end_time() -> None:
    with pytest.raises(ValidationError, match="until"):
        OverrideCommand(action="charge")
    assert OverrideCommand(action=None).action is None  # cancelling needs none


def test_expiry() -> None:
    s = BatteryState(generated_at=T0, valid_until=T0 + timedelta(minutes=5), observed_at=T0, soc_pct=50)
    assert s.is_valid(T0 + timedelta(minutes=4)) and not s.is_valid(T0 + timedelta(minutes=5))


def test_every_model_round_trips_through_json() -> None:
    for model in SCHEMA_MODELS.values():
        schema = model.model_json_schema()
        assert schema["type"] == "object"


def test_committed_json_schemas_are_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert gen_schemas(["--check"]) == 0, capsys.readouterr().out


def test_topic_tree_is_pinned() -> None:
    t = Topics()
    assert t.import_rates == "batsched/pricing/import/rates"
    assert t.import_current == "batsched/pricing/import/current"
    assert t.plan == "batsched/planner/plan"
    assert t.plan_current == "batsched/planner/plan/current"
    assert t.battery_state == "batsched/battery/state"
    assert t.executor_mode_set == "batsched/executor/mode/set"
    assert t.executor_override == "batsched/executor/cmd/override"
    assert t.planner_setting_set("min_soc_pct") == "batsched/planner/min_soc_pct/set"
    assert t.status("planner") == "batsched/planner/status"
    assert (
        t.ha_discovery("sensor", "pricing", "import_price")
        == "homeassistant/sensor/batsched_pricing/import_price/config"
    )
    fleet = Topics("batsched/site-0042")
    assert fleet.plan == "batsched/site-0042/planner/plan"
    assert fleet.ha_discovery("sensor", "pricing", "x") == "homeassistant/sensor/batsched_site-0042_pricing/x/config"
    assert all(not v.startswith("/") and "//" not in v for v in t.tree().values())
    with pytest.raises(ValueError):
        Topics("bad/+/prefix")


def test_schemas_bound_values_with_json_schema_keywords_that_validators_enforce() -> None:
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        assert foreign_keywords(schema) == [], path.name
    price = json.loads((SCHEMA_DIR / "rate_series.json").read_text())["$defs"]["Rate"]["properties"]["value_inc_vat"]
    assert (price["minimum"], price["maximum"]) == (-10, 10)
    rate = {"start": "2025-01-15T16:00:00Z", "end": "2025-01-15T16:30:00Z", "value_inc_vat": 12.5}  # pence, by mistake
    doc = {
        "generated_at": "2025-01-15T16:00:00Z",
        "valid_until": "2025-01-15T16:30:00Z",
        "tariff_code": "x",
        "rates": [rate],
    }
    errors = list(validator("rate_series").iter_errors(doc))
    assert [e.validator for e in errors] == ["maximum"]


def test_the_probe_check_flags_a_service_payload_that_breaks_its_schema_and_skips_the_tests_own() -> None:
    good = {"generated_at": "2025-01-15T16:07:00Z", "valid_until": "2025-01-15T16:12:00Z"}
    good |= {"observed_at": "2025-01-15T16:07:00Z", "soc_pct": 41.0}
    bad = json.dumps({**good, "soc_pct": 141.0}).encode()
    topic = Topics("batsched/site-0042").battery_state
    found = violations([(topic, json.dumps(good).encode()), (topic, bad)], set())
    assert len(found) == 1 and "battery_state.json" in found[0] and "soc_pct" in found[0]
    assert violations([(topic, bad)], {(topic, bad)}) == []  # a test published it on purpose
    assert schema_for("batsched/forecast/pv/today") == "pv_today"
    assert schema_for("batsched/planner/cmd/replan/result") == "command_result"
