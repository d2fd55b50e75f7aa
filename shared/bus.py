"""The MQTT bus client every service uses, on paho-mqtt 2.x (``CallbackAPIVersion.VERSION2``).

paho's network thread only enqueues into a bounded inbox; one worker thread decodes, validates and dispatches
(``BusCore``), so a slow or failing handler never stalls keepalives and never kills the network loop. A message
that finds the inbox full (``mqtt_inbox_max``) is dropped and counted; the counters go out on
``<service>/health``.

- last will ``<prefix>/<service>/status = offline`` (retained); ``online`` published on every connect;
- subscriptions restored on every connect (also after a broker restart that lost the session);
- reconnect with backoff (``connect_async`` + ``loop_start``, so a broker that is not up yet is not fatal);
- authentication refused (reason 134/135) ends the process with status 2: retrying cannot fix a password;
- clean shutdown publishes ``offline`` itself (the will is only sent on unclean disconnects) and disconnects.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import ssl
import threading
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from shared.bus_core import BusCore, CommandError, Incoming, Route, Unsubscribe
from shared.settings import ServiceSettings
from shared.topics import Topics

__all__ = ["AUTH_FAILURES", "Bus", "CommandError", "Incoming", "Route", "Unsubscribe"]

AUTH_FAILURES = {134, 135}  # bad user name or password, not authorised
_CONNECTED: Any = object()  # inbox marker: a connect happened (hooks run on the worker thread)
_IDLE: Any = object()


class Bus(BusCore):
    """One service's connection to the broker."""

    def __init__(
        self,
        settings: ServiceSettings,
        service: str,
        topics: Topics | None = None,
        client_id: str | None = None,
        on_auth_failure: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(settings, service, topics)
        self._inbox: queue.Queue[mqtt.MQTTMessage | None] = queue.Queue()
        self._connected = threading.Event()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self._on_auth_failure = on_auth_failure or self._exit_on_auth_failure
        self.v5 = settings.mqtt_protocol == "5"
        # Unique per process: two instances of one service must not take each other's session over.
        self.client_id = (
            client_id or f"batsched-{service}-{socket.gethostname()[:16]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        )
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if self.v5 else mqtt.MQTTv311,
        )
        client.suppress_exceptions = True  # an exception in a callback must never end the network thread
        client.enable_logger(logging.getLogger("paho"))
        if s.mqtt_username:
            password = s.mqtt_password.get_secret_value() if s.mqtt_password else None
            client.username_pw_set(s.mqtt_username, password)
        if s.mqtt_tls:
            client.tls_set(ca_certs=str(s.mqtt_ca_file) if s.mqtt_ca_file else None, cert_reqs=ssl.CERT_REQUIRED)
        client.will_set(self.status_topic, "offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    # ------------------------------------------------------------------ transport

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _send(
        self, topic: str, body: bytes, is_json: bool, retain: bool, qos: int, expiry_s: int | None
    ) -> mqtt.MQTTMessageInfo:
        props = None
        if self.v5 and (is_json or expiry_s):
            props = Properties(PacketTypes.PUBLISH)
            if is_json:
                props.ContentType = "application/json"
            if expiry_s:
                props.MessageExpiryInterval = int(expiry_s)
        return self._client.publish(topic, body, qos=qos, retain=retain, properties=props)

    def _transport_subscribe(self, topic: str, qos: int) -> None:
        self._client.subscribe(topic, qos=qos)

    def _transport_unsubscribe(self, topic: str) -> None:
        self._client.unsubscribe(topic)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        s = self.settings
        self._worker = threading.Thread(target=self._work, name=f"bus-worker-{self.service}", daemon=True)
        self._worker.start()
        self._client.connect_async(s.mqtt_host, s.mqtt_port, keepalive=s.mqtt_keepalive_s)
        self._client.loop_start()
        self.log.info("bus starting", host=s.mqtt_host, port=s.mqtt_port, client_id=self.client_id)

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def stop(self, timeout: float = 3.0) -> None:
        """Publish ``offline`` ourselves (no will on a clean disconnect), then disconnect."""
        self._stopping.set()
        try:
            if self._connected.is_set():
                info = self.publish(self.status_topic, "offline", retain=True)
                info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            pass
        self._client.disconnect()
        self._client.loop_stop()
        self._inbox.put(None)
        if self._worker and self._worker is not threading.current_thread():
            self._worker.join(timeout)
        self.log.info("bus stopped")

    # ------------------------------------------------------------------ paho callbacks (network thread)

    def _on_connect(self, client: mqtt.Client, _u: Any, _flags: Any, reason_code: Any, _props: Any) -> None:
        try:
            code = int(getattr(reason_code, "value", reason_code))
            if code != 0:
                self.log.error("broker refused connection", reason=str(reason_code), code=code)
                if code in AUTH_FAILURES:
                    self._on_auth_failure()
                return
            for topic, qos in self.filters():
                client.subscribe(topic, qos=qos)
            client.publish(self.status_topic, "online", qos=1, retain=True)
            self._connected.set()
            self.log.info("bus connected", connects=self._connects + 1)
            self._inbox.put(_CONNECTED)
        except Exception:
            self.log.exception("on_connect failed")

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _flags: Any, reason_code: Any, _props: Any) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            self.log.warning("bus disconnected; reconnecting", reason=str(reason_code))

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        # Nothing else on the network thread. Only this thread adds messages, so the size check is exact enough.
        if self._inbox.qsize() >= self.inbox_max:
            self.overflowed()
            return
        self._inbox.put(message)

    def _exit_on_auth_failure(self) -> None:
        self.log.error("MQTT authentication failed: check the user name and password; not retrying")
        os._exit(2)

    # ------------------------------------------------------------------ worker thread

    def _work(self) -> None:
        while True:
            try:
                item = self._inbox.get(timeout=self.health_every_s)
            except queue.Empty:  # quiet: only the health check below
                item = _IDLE
            if item is None:
                return
            if item is _CONNECTED:
                self._after_connect()
            elif isinstance(item, mqtt.MQTTMessage):
                self.dispatch(item.topic, bytes(item.payload or b""), bool(item.retain))
            self.publish_health()
