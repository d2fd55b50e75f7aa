"""An in-memory bus with the real bus's interface, for fast tests of handlers (no broker, no threads).

``MemoryBus`` is a ``BusCore``, so subscriptions, validation, commands, setters and their answers run the same code
as on MQTT; only the transport differs. It behaves like one client on a broker: published messages are
delivered to its own matching subscriptions in order (a handler's publish is delivered after the current
message, as the real worker thread would), retained values are kept and handed to a later subscription, and an
empty retained payload clears them. ``fire`` injects a message as another client would (like Home Assistant's
``async_fire_mqtt_message``). End-to-end tests stay on Mosquitto; this is for handler logic.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from paho.mqtt.client import topic_matches_sub
from pydantic import BaseModel

from shared.bus_core import BusCore, encode
from shared.settings import ServiceSettings
from shared.topics import Channel, Topics


@dataclass(frozen=True)
class Sent:
    topic: str
    payload: bytes
    retain: bool
    qos: int

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace")


class _Done:
    """What ``publish`` returns (the real one returns paho's message info)."""

    rc = 0

    def wait_for_publish(self, timeout: float | None = None) -> None:
        return None

    def is_published(self) -> bool:
        return True


class MemoryBus(BusCore):
    def __init__(self, settings: ServiceSettings | None = None, service: str = "test", topics: Topics | None = None):
        super().__init__(settings or ServiceSettings(_secrets_dir=None), service, topics)
        self.sent: list[Sent] = []
        self.retained: dict[str, bytes] = {}
        self._queue: deque[tuple[str, bytes, bool]] = deque()
        self._draining = False
        self._connected = False

    # ------------------------------------------------------------------ transport

    @property
    def connected(self) -> bool:
        return self._connected

    def _send(self, topic: str, body: bytes, is_json: bool, retain: bool, qos: int, expiry_s: int | None) -> _Done:
        self.sent.append(Sent(topic, body, retain, qos))
        self._keep(topic, body, retain)
        self._deliver(topic, body, False)
        return _Done()

    def _keep(self, topic: str, body: bytes, retain: bool) -> None:
        """As a broker does: a retained message replaces the topic's value, an empty one clears it."""
        if retain and body:
            self.retained[topic] = body
        elif retain:
            self.retained.pop(topic, None)

    def _transport_subscribe(self, topic: str, qos: int) -> None:
        for t, body in list(self.retained.items()):
            if topic_matches_sub(topic, t):
                self._deliver(t, body, True)

    def _transport_unsubscribe(self, topic: str) -> None:
        return None

    def _deliver(self, topic: str, payload: bytes, retain: bool) -> None:
        self._queue.append((topic, payload, retain))
        if self._draining:
            return  # delivered after the message being handled, in order
        self._draining = True
        try:
            while self._queue:
                self.dispatch(*self._queue.popleft())
        finally:
            self._draining = False

    # ------------------------------------------------------------------ lifecycle (as Bus)

    def start(self) -> None:
        """Connect: subscriptions made so far receive the retained values, then the on-connect hooks run."""
        self._connected = True
        self.publish(self.status_topic, "online", retain=True)
        for topic, qos in self.filters():
            self._transport_subscribe(topic, qos)
        self._after_connect()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected

    def stop(self, timeout: float = 3.0) -> None:
        if self._connected:
            self.publish(self.status_topic, "offline", retain=True)
        self._connected = False

    # ------------------------------------------------------------------ for tests

    def fire(
        self, target: Channel | str, payload: BaseModel | str | bytes | dict[str, Any] | None, retain: bool = False
    ) -> None:
        """A message from another client (not recorded in ``sent``)."""
        topic = self.topics.of(target) if isinstance(target, Channel) else target
        body, _ = encode(payload)
        self._keep(topic, body, retain)
        self._deliver(topic, body, retain)

    def on(self, target: Channel | str) -> list[Sent]:
        """What this bus published on a topic, oldest first."""
        topic = self.topics.of(target) if isinstance(target, Channel) else target
        return [m for m in self.sent if m.topic == topic]

    def last(self, target: Channel | str) -> Sent | None:
        found = self.on(target)
        return found[-1] if found else None
