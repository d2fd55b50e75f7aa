"""A test-side MQTT client that records every message and waits on them with timeouts (no sleeping for luck)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


@dataclass(frozen=True)
class Seen:
    topic: str
    payload: bytes
    retain: bool
    at: float

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.payload)


class Probe:
    # Everything any probe in this process sent: the tests' messages, not the services'.
    published: ClassVar[set[tuple[str, bytes]]] = set()

    def __init__(
        self,
        port: int,
        subscribe: str = "#",
        username: str | None = None,
        password: str | None = None,
        protocol: int = mqtt.MQTTv5,
    ) -> None:
        self.port = port
        self.messages: list[Seen] = []
        self._cond = threading.Condition()
        self._connected = threading.Event()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}", protocol=protocol
        )
        self._client.suppress_exceptions = True
        if username:
            self._client.username_pw_set(username, password)
        self._subscribe = subscribe
        self.connect_rc: Any = None
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(0.2, 1)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        self.connect_rc = rc
        if rc == 0:
            if self._subscribe:
                client.subscribe(self._subscribe, qos=1)
            self._connected.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(Seen(msg.topic, bytes(msg.payload), bool(msg.retain), time.monotonic()))
            self._cond.notify_all()

    def start(self, timeout: float = 10.0) -> Probe:
        self._client.connect_async("127.0.0.1", self.port, keepalive=10)
        self._client.loop_start()
        if not self._connected.wait(timeout):
            raise TimeoutError(f"probe could not connect to port {self.port} (rc={self.connect_rc})")
        # Make sure the subscription is active before the test publishes anything.
        self.publish(f"probe/{uuid.uuid4().hex}", "sync", wait=True)
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: Any, retain: bool = False, qos: int = 1, wait: bool = True) -> None:
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload)
        body = payload.encode() if isinstance(payload, str) else bytes(payload or b"")
        Probe.published.add((topic, body))
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if wait:
            info.wait_for_publish(5)

    def wait_for(
        self,
        topic: str,
        predicate: Callable[[Seen], bool] | None = None,
        timeout: float = 10.0,
        after: float | None = None,
    ) -> Seen:
        """The first message on ``topic`` (a filter) matching ``predicate``, received after ``after``
        (a ``time.monotonic()`` mark, default: any time). Raises ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for m in self.messages:
                    if (
                        (after is None or m.at >= after)
                        and mqtt.topic_matches_sub(topic, m.topic)
                        and (predicate is None or predicate(m))
                    ):
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [m.topic for m in self.messages if mqtt.topic_matches_sub(topic, m.topic)]
                    raise TimeoutError(f"no matching message on {topic} in {timeout}s (seen on it: {len(seen)})")
                self._cond.wait(left)

    def wait_json(
        self,
        topic: str,
        predicate: Callable[[Any], bool] | None = None,
        timeout: float = 10.0,
        after: float | None = None,
    ) -> Any:
        def ok(m: Seen) -> bool:
            if not m.payload:
                return False
            try:
                doc = m.json()
            except ValueError:
                return False
            return predicate is None or bool(predicate(doc))

        return self.wait_for(topic, ok, timeout, after).json()

    def on(self, topic: str) -> list[Seen]:
        with self._cond:
            return [m for m in self.messages if mqtt.topic_matches_sub(topic, m.topic)]

    def latest(self, topic: str) -> Seen | None:
        found = self.on(topic)
        return found[-1] if found else None

    @staticmethod
    def mark() -> float:
        return time.monotonic()
