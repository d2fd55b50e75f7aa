"""The bus's handler contract, on the in-memory double (the same ``BusCore`` code as on MQTT): typed values,
several handlers per topic, unsubscribing, bad input dropped and counted, setters and commands answered."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta

import pytest

from shared.bus import Bus, CommandError
from shared.models import BatteryState, BusHealth, Command, CommandResult
from shared.settings import ServiceSettings
from shared.topics import (
    BATTERY_STATE,
    EXECUTOR_MODE_SET,
    PLANNER_REPLAN,
    PLANNER_SETTING,
    Topics,
    result_topic,
)
from tests.support.memory_bus import MemoryBus

T0 = datetime(2025, 1, 15, 16, 7, tzinfo=UTC)
T = Topics()


def state(soc: float) -> BatteryState:
    return BatteryState(generated_at=T0, valid_until=T0 + timedelta(minutes=5), observed_at=T0, soc_pct=soc)


def test_a_handler_gets_the_model_and_none_when_the_retained_value_is_cleared() -> None:
    bus = MemoryBus()
    got: list[BatteryState | None] = []
    bus.subscribe(BATTERY_STATE, got.append)
    bus.start()
    bus.fire(BATTERY_STATE, state(41.0), retain=True)
    bus.fire(BATTERY_STATE, None, retain=True)
    assert [g.soc_pct if g else None for g in got] == [41.0, None]
    assert isinstance(got[0], BatteryState)


def test_several_handlers_share_a_topic_and_each_unsubscribes_alone() -> None:
    bus = MemoryBus()
    first: list[float] = []
    second: list[float] = []
    stop_first = bus.subscribe(BATTERY_STATE, lambda s: first.append(s.soc_pct))
    bus.subscribe(BATTERY_STATE, lambda s: second.append(s.soc_pct))
    bus.start()
    bus.fire(BATTERY_STATE, state(10))
    stop_first()
    stop_first()  # a second call is harmless
    bus.fire(BATTERY_STATE, state(20))
    assert first == [10] and second == [10, 20]


def test_a_late_subscription_gets_the_retained_value() -> None:
    bus = MemoryBus()
    bus.start()
    bus.fire(BATTERY_STATE, state(33), retain=True)
    got: list[float] = []
    bus.subscribe(BATTERY_STATE, lambda s: got.append(s.soc_pct))
    assert got == [33]


def test_invalid_payloads_are_dropped_before_any_handler_and_counted() -> None:
    bus = MemoryBus()
    got: list[object] = []
    bus.subscribe(BATTERY_STATE, got.append)
    bus.start()
    for bad in (b"not json", b'{"soc_pct": 250}', b"x" * 1_000_001):
        bus.fire(BATTERY_STATE, bad)
    assert got == []
    assert bus.counters().dropped_invalid == 3


def test_a_failing_handler_does_not_stop_the_others_and_is_counted() -> None:
    bus = MemoryBus()
    got: list[float] = []

    def broken(_s: object) -> None:
        raise RuntimeError("bug")

    bus.subscribe(BATTERY_STATE, broken)
    bus.subscribe(BATTERY_STATE, lambda s: got.append(s.soc_pct))
    bus.start()
    bus.fire(BATTERY_STATE, state(50))
    assert got == [50]
    assert bus.counters().handler_errors == 1


def test_a_plain_text_channel_delivers_the_stripped_text() -> None:
    bus = MemoryBus()
    got: list[str | None] = []
    bus.subscribe(PLANNER_SETTING.at(setting="max_charge_price_gbp"), got.append)
    bus.start()
    bus.fire(T.planner_setting("max_charge_price_gbp"), " 0.15\n", retain=True)
    bus.fire(T.planner_setting("max_charge_price_gbp"), None, retain=True)
    assert got == ["0.15", None]


def test_a_setter_answers_ok_or_the_refusal_on_its_result_topic() -> None:
    bus = MemoryBus()
    applied: list[str] = []

    def set_mode(text: str) -> None:
        if text not in ("auto", "off"):
            raise ValueError(f"unknown mode {text!r}")
        applied.append(text)

    bus.setting(EXECUTOR_MODE_SET, set_mode)
    bus.start()
    bus.fire(EXECUTOR_MODE_SET, "off")
    bus.fire(EXECUTOR_MODE_SET, "turbo")
    answers = [CommandResult.model_validate_json(m.payload) for m in bus.on(result_topic(T.executor_mode_set))]
    assert applied == ["off"]
    assert [(a.status, a.data["value"]) for a in answers] == [("ok", "off"), ("error", "turbo")]
    assert "unknown mode 'turbo'" in (answers[1].error or "")


def test_a_retained_setter_is_cleared_and_not_applied() -> None:
    bus = MemoryBus()
    applied: list[str] = []
    bus.setting(EXECUTOR_MODE_SET, applied.append)
    bus.fire(EXECUTOR_MODE_SET, "hold", retain=True)  # left on the broker by someone else
    bus.start()
    assert applied == []
    assert T.executor_mode_set not in bus.retained
    assert bus.on(result_topic(T.executor_mode_set)) == []


def test_commands_answer_with_the_request_id_and_refusals() -> None:
    bus = MemoryBus()

    def replan(cmd: Command) -> dict:
        if cmd.reason == "no":
            raise CommandError("refused on purpose")
        return {"plan_id": "p1"}

    bus.command(PLANNER_REPLAN, replan)
    bus.start()
    ok = bus.request(PLANNER_REPLAN, Command(request_id="r1"), timeout=0)
    refused = bus.request(PLANNER_REPLAN, Command(request_id="r2", reason="no"), timeout=0)
    assert ok is not None and ok.status == "ok" and ok.data == {"plan_id": "p1"}
    assert refused is not None and refused.status == "error" and refused.error == "refused on purpose"


def test_health_goes_out_on_connect_with_the_counters() -> None:
    bus = MemoryBus(service="planner")
    bus.subscribe(BATTERY_STATE, lambda _s: None)
    bus.start()
    bus.fire(BATTERY_STATE, b"garbage")
    bus.publish_health(force=True)
    health = BusHealth.model_validate_json(bus.retained[T.health("planner")])
    assert health.dropped_invalid == 1 and health.connects == 1 and health.inbox_max == 10_000


def test_publishing_on_a_channel_uses_its_retained_flag_and_refuses_another_model() -> None:
    bus = MemoryBus()
    bus.start()
    bus.publish(BATTERY_STATE, state(60))
    assert bus.last(BATTERY_STATE).retain is True
    with pytest.raises(TypeError, match="carries BatteryState"):
        bus.publish(BATTERY_STATE, Command())


def test_the_double_has_the_real_bus_interface() -> None:
    def public(cls: type) -> dict[str, inspect.Signature]:
        return {
            n: inspect.signature(f)
            for n, f in inspect.getmembers(cls, callable)
            if not n.startswith("_") and n not in ("fire", "on", "last")
        }

    real, double = public(Bus), public(MemoryBus)
    assert set(real) <= set(double), set(real) - set(double)
    for name in ("subscribe", "listen", "command", "setting", "publish", "request", "start", "stop"):
        assert list(real[name].parameters)[:3] == list(double[name].parameters)[:3], name
    assert isinstance(MemoryBus(ServiceSettings(_secrets_dir=None)).connected, bool)
