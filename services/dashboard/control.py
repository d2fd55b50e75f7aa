"""Control actions: each sends one MQTT command and reports what came back.

- ``…/cmd/<verb>`` topics use ``Bus.request``: the answer is the owner's ``CommandResult`` on ``…/result``.
- ``…/set`` topics (mode, dry-run, planner settings): the owner applies the value and republishes its retained
  state topic, so we wait for the next message there and compare it with what we asked for; a refusal also comes
  on ``…/set/result`` with the reason, which ends the wait at once.
Either way the page gets ``ok`` with the confirmed value, or an error saying what went wrong (refused, a
different value, or no answer within the timeout). Nothing is swallowed. Calls block: run them off the event
loop (FastAPI runs plain ``def`` endpoints in its thread pool).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from shared.bus import Bus, Incoming, Route
from shared.clock import Clock
from shared.models import (
    Command,
    CommandResult,
    ExecutorMode,
    OverrideCommand,
    PlannerSettings,
    WindowAddCommand,
    WindowDeleteCommand,
)
from shared.plain import bool_text, parse_bool
from shared.topics import ANSWERS, PLANNER_SETTINGS, result_topic

from .live import LiveState


@dataclass
class Outcome:
    ok: bool
    message: str
    status: int = 200  # HTTP status for the page: 200 ok, 422 bad input, 502 refused, 504 no answer
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        key = "message" if self.ok else "error"
        return {"ok": self.ok, key: self.message, "data": self.data}


def _same_number(a: str, b: str) -> bool:
    try:
        return abs(float(a) - float(b)) < 1e-9
    except ValueError:
        return a.strip() == b.strip()


def _same_bool(a: str, b: str) -> bool:
    try:
        return parse_bool(a) == parse_bool(b)
    except ValueError:
        return a.strip().lower() == b.strip().lower()


class Controller:
    def __init__(self, bus: Bus, live: LiveState, clock: Clock, timeout_s: float) -> None:
        self.bus = bus
        self.live = live
        self.clock = clock
        self.timeout_s = timeout_s
        self.topics = bus.topics

    # ------------------------------------------------------------------ /set topics

    def _set(
        self, label: str, set_topic: str, state_topic: str, value: str, same: Callable[[str, str], bool]
    ) -> Outcome:
        state_name = self.live.short(state_topic)
        refused: list[str] = []

        def on_answer(msg: Incoming[CommandResult]) -> None:
            answer = msg.model
            if answer is not None and answer.status == "error" and answer.data.get("value") == value:
                refused.append(answer.error or "refused")
                self.live.wake()

        stop_listening = self.bus.listen(Route(result_topic(set_topic), ANSWERS), on_answer)
        try:
            mark = self.live.seq
            self.bus.publish(set_topic, value)
            entry = self.live.wait_for(state_name, lambda _e: True, self.timeout_s, mark, give_up=lambda: bool(refused))
        finally:
            stop_listening()
        if refused:
            return Outcome(False, f"{label} = {value} {refused[0]}", 502)
        if entry is None:
            current = self.live.get(state_name)
            if current is not None and same(current.text, value):
                return Outcome(
                    True, f"{label} is {current.text} (unchanged; already set)", data={"value": current.text}
                )
            shown = current.text if current is not None else "unknown"
            return Outcome(
                False,
                f"no confirmation of {label} = {value} on {state_topic} within {self.timeout_s:g} s "
                f"(current value: {shown}); is the owning service running?",
                504,
            )
        if same(entry.text, value):
            return Outcome(True, f"{label} is now {entry.text}", data={"value": entry.text})
        return Outcome(False, f"{label} was not changed: asked for {value}, it is {entry.text}", 502)

    def set_mode(self, mode: str) -> Outcome:
        try:
            chosen = ExecutorMode(mode)
        except ValueError:
            return Outcome(
                False, f"unknown mode {mode!r}; choose one of {', '.join(m.value for m in ExecutorMode)}", 422
            )
        return self._set(
            "mode", self.topics.executor_mode_set, self.topics.executor_mode, chosen.value, lambda a, b: a == b
        )

    def set_dry_run(self, enabled: bool) -> Outcome:
        value = bool_text(enabled)
        return self._set("dry-run", self.topics.executor_dry_run_set, self.topics.executor_dry_run, value, _same_bool)

    def set_planner(self, name: str, value: str) -> Outcome:
        if name not in PLANNER_SETTINGS:
            return Outcome(False, f"unknown planner setting {name!r}", 422)
        value = str(value).strip()
        try:
            setattr(PlannerSettings(), name, value)  # validate_assignment checks range and format
        except ValidationError as exc:
            return Outcome(False, f"{name}: {exc.errors()[0]['msg']}", 422)
        same = _same_number if name.endswith(("_pct", "_gbp")) else (lambda a, b: a.strip() == b.strip())
        return self._set(name, self.topics.planner_setting_set(name), self.topics.planner_setting(name), value, same)

    # ------------------------------------------------------------------ cmd topics

    def _request(self, label: str, topic: str, cmd: Command) -> Outcome:
        result = self.bus.request(topic, cmd, timeout=self.timeout_s)
        if result is None:
            return Outcome(
                False,
                f"no answer to {label} on {topic}/result within {self.timeout_s:g} s; is the owning service running?",
                504,
                data={"request_id": cmd.request_id},
            )
        if result.status != "ok":
            return Outcome(False, f"{label} refused: {result.error}", 502, data={"request_id": cmd.request_id})
        return Outcome(True, f"{label} accepted", data={"request_id": cmd.request_id, **result.data})

    def override(self, action: str | None, until: datetime | None, target_soc_pct: float | None) -> Outcome:
        try:
            cmd = OverrideCommand(action=action or None, until=until, target_soc_pct=target_soc_pct, reason="dashboard")
        except ValidationError as exc:
            return Outcome(False, f"override: {exc.errors()[0]['msg']}", 422)
        if cmd.action is not None and cmd.until is not None and cmd.until <= self.clock.now():
            return Outcome(False, "override: the end time is in the past", 422)
        label = "cancel override" if cmd.action is None else f"override {cmd.action.value}"
        return self._request(label, self.topics.executor_override, cmd)

    def replan(self) -> Outcome:
        return self._request("replan", self.topics.planner_replan, Command(reason="dashboard"))

    # ------------------------------------------------------------------ manual windows

    def add_window(
        self, start: datetime | None, end: datetime | None, action: str, target_soc_pct: float | None, source: str
    ) -> Outcome:
        try:
            cmd = WindowAddCommand(
                start=start, end=end, action=action, target_soc_pct=target_soc_pct, source=source, reason=source
            )  # type: ignore[arg-type]
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(x) for x in err.get("loc", ()))
            return Outcome(False, f"window: {where + ': ' if where else ''}{err['msg']}", 422)
        return self._request(f"add {cmd.action} window", self.topics.executor_window_add, cmd)

    def delete_window(self, window_id: int, source: str) -> Outcome:
        try:
            cmd = WindowDeleteCommand(window_id=window_id, reason=source)
        except ValidationError as exc:
            return Outcome(False, f"window: {exc.errors()[0]['msg']}", 422)
        return self._request(f"delete window {window_id}", self.topics.executor_window_delete, cmd)
