"""The latest value of every topic under the prefix, and the fan-out of changes to open pages.

The bus worker thread calls ``LiveState.on_message``; web threads read snapshots. Open pages (Server-Sent
Event streams, on the asyncio loop) register a listener that is called with the changed topic's short name;
the listener hands it to its loop with ``call_soon_threadsafe``. The Control page waits here for a setting's
new retained value to be echoed back by its owner.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.bus import Incoming
from shared.clock import Clock
from shared.logging import get_logger
from shared.models import AppliedDecision, BatteryState, ImportedHistory, RateSeries
from shared.topics import BATTERY_STATE, EXECUTOR_APPLIED, EXECUTOR_HISTORY_IMPORTED, IMPORT_RATES, Topics, is_state

from .store import Store

log = get_logger("batsched.dashboard.live")

Listener = Callable[[str], None]


@dataclass(frozen=True)
class Entry:
    """One topic's latest message. ``doc`` is the parsed JSON, or the text for plain payloads."""

    payload: bytes
    received_at: datetime
    retained: bool
    seq: int = 0  # order of arrival in this process (0 = restored from disk)

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace").strip()

    @property
    def doc(self) -> Any:
        try:
            return json.loads(self.payload)
        except ValueError:
            return self.text


class LiveState:
    def __init__(self, topics: Topics, clock: Clock, store: Store | None = None) -> None:
        self.topics = topics
        self.clock = clock
        self.store = store
        self._entries: dict[str, Entry] = {}
        self._cond = threading.Condition()
        self._listeners: list[Listener] = []
        self._seq = 0

    def short(self, topic: str) -> str:
        return self.topics.relative(topic)

    # ------------------------------------------------------------------ input

    def restore(self) -> None:
        """Load the last values saved before a restart (retained messages will refresh them)."""
        if not self.store:
            return
        for topic, payload, received_at in self.store.latest():
            try:
                at = datetime.fromisoformat(received_at)
            except ValueError:
                continue
            self._entries[topic] = Entry(bytes(payload), at, True)

    def on_message(self, msg: Incoming) -> None:
        name = self.short(msg.topic)
        if not is_state(name):
            return  # commands, setters and their answers are not state
        now = self.clock.now()
        with self._cond:
            self._seq += 1
            if msg.payload:
                self._entries[name] = Entry(msg.payload, now, msg.retain, self._seq)
            else:
                self._entries.pop(name, None)  # a cleared retained topic: forget it
            self._cond.notify_all()
        self._record(name, msg, now)
        for listener in list(self._listeners):
            try:
                listener(name)
            except Exception:
                log.exception("listener failed", topic=name)

    def _record(self, name: str, msg: Incoming, now: datetime) -> None:
        """History worth keeping. A payload that does not validate is logged and not stored."""
        if not self.store:
            return
        try:
            if name == EXECUTOR_HISTORY_IMPORTED.path:  # the original app's decisions: the history, not "latest"
                if msg.payload:
                    for d in ImportedHistory.model_validate_json(msg.payload).decisions:
                        self.store.record_decision(d)
                return
            if name != EXECUTOR_APPLIED.path:
                self.store.save_latest(name, msg.payload, now)
            if not msg.payload:
                return
            if name == BATTERY_STATE.path:
                self.store.record_battery(BatteryState.model_validate_json(msg.payload))
            elif name == IMPORT_RATES.path:
                self.store.record_rates(RateSeries.model_validate_json(msg.payload))
            elif name == EXECUTOR_APPLIED.path:
                self.store.record_decision(AppliedDecision.model_validate_json(msg.payload))
                self.store.save_latest(name, msg.payload, now)
        except ValueError as exc:
            log.warning("invalid payload not stored", topic=msg.topic, reason=str(exc)[:200])

    # ------------------------------------------------------------------ reading

    def snapshot(self) -> dict[str, Entry]:
        with self._cond:
            return dict(self._entries)

    def get(self, name: str) -> Entry | None:
        with self._cond:
            return self._entries.get(name)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    @property
    def seq(self) -> int:
        with self._cond:
            return self._seq

    def wait_for(
        self,
        name: str,
        accept: Callable[[Entry], bool],
        timeout: float,
        after_seq: int,
        give_up: Callable[[], bool] = lambda: False,
    ) -> Entry | None:
        """Wait until topic ``name`` holds a message that arrived after mark ``after_seq`` and ``accept`` likes;
        None after ``timeout`` or as soon as ``give_up()`` is true (checked on every change and ``wake``)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                entry = self._entries.get(name)
                if entry is not None and entry.seq > after_seq and accept(entry):
                    return entry
                left = deadline - time.monotonic()
                if left <= 0 or give_up():
                    return None
                self._cond.wait(left)

    def wake(self) -> None:
        """Let waiters look at their ``give_up`` again."""
        with self._cond:
            self._cond.notify_all()
