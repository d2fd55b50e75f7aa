"""The MQTT bus client every service uses, on paho-mqtt 2.x (``CallbackAPIVersion.VERSION2``).

Design (mqtt-conventions §5): paho's network thread only enqueues; one worker thread decodes, validates and
dispatches, so a slow or failing handler never stalls keepalives and never kills the network loop. Invalid
payloads and handler exceptions are logged with the topic and dropped.

- last will ``<prefix>/<service>/status = offline`` (retained); ``online`` published on every connect;
- subscriptions restored on every connect (also after a broker restart that lost the session);
- reconnect with backoff (``connect_async`` + ``loop_start``, so a broker that is not up yet is not fatal);
- authentication refused (reason 134/135) ends the process with status 2: retrying cannot fix a password;
- commands: a retained command found on a command topic is cleared and ignored (it was left by someone else
  and must not re-apply on restart); results go to ``<command topic>/result`` with the caller's ``request_id``;
- clean shutdown publishes ``offline`` itself (the will is only sent on unclean disconnects) and disconnects.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import socket
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import BaseModel, ValidationError

from shared.logging import get_logger
from shared.models import Command, CommandResult
from shared.settings import ServiceSettings
from shared.topics import Topics, result_topic

MAX_PAYLOAD_BYTES = 1_000_000  # anything larger is hostile or a bug; drop before parsing
AUTH_FAILURES = {134, 135}  # bad user name or password, not authorised

M = TypeVar("M", bound=BaseModel)
Handler = Callable[["Incoming"], None]


class CommandError(Exception):
    """Raised by a command handler to answer ``status: error`` with this message."""


@dataclass(frozen=True)
class Incoming:
    """A received message, after decoding."""

    topic: str
    payload: bytes
    retain: bool
    model: Any = None  # the validated model, when the subscription named one

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace")


@dataclass
class _Sub:
    topic: str
    handler: Handler
    model: type[BaseModel] | None
    qos: int
    raw_text: bool = False


@dataclass
class _Counters:
    received: int = 0
    dropped_invalid: int = 0
    handler_errors: int = 0
    connects: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class Bus:
    """One service's connection to the broker."""

    def __init__(
        self,
        settings: ServiceSettings,
        service: str,
        topics: Topics | None = None,
        client_id: str | None = None,
        on_auth_failure: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.service = service
        self.topics = topics or Topics(settings.mqtt_prefix, settings.ha_discovery_prefix)
        self.log = get_logger(f"batsched.{service}.bus")
        self.counters = _Counters()
        self._subs: dict[str, _Sub] = {}
        self._connect_hooks: list[Callable[[], None]] = []
        self._pending: dict[str, dict[str, Any]] = {}
        self._pending_lock = threading.Lock()
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
        self.status_topic = self.topics.status(service)
        self._client = self._make_client()

    # ------------------------------------------------------------------ set-up

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

    def subscribe(self, topic: str, handler: Handler, model: type[BaseModel] | None = None, qos: int = 1) -> None:
        """Call ``handler(Incoming)`` for each message on ``topic`` (a filter). With ``model``, the JSON payload
        is validated first and invalid ones are dropped with a log line. Empty payloads (cleared retained
        topics) are passed through with ``model=None`` so consumers can forget the state."""
        self._subs[topic] = _Sub(topic, handler, model, qos)
        if self._connected.is_set():
            self._client.subscribe(topic, qos=qos)

    def subscribe_text(self, topic: str, handler: Handler, qos: int = 1) -> None:
        """Like ``subscribe`` for plain-text payloads (settings, status, mode)."""
        self._subs[topic] = _Sub(topic, handler, None, qos, raw_text=True)
        if self._connected.is_set():
            self._client.subscribe(topic, qos=qos)

    def command(
        self,
        topic: str,
        handler: Callable[[Any], dict[str, Any] | None],
        model: type[Command] = Command,
    ) -> None:
        """Serve a command topic: validate into ``model``, call ``handler(cmd)``, answer on ``topic/result``.

        The handler returns result data, or raises ``CommandError`` for an error answer. A retained command is
        cleared and ignored."""

        def serve(msg: Incoming) -> None:
            if self._clear_if_retained(msg) or not msg.payload:
                # Zero bytes = a cleared topic (e.g. the echo of our own clearing), never a command.
                return
            try:
                raw = json.loads(msg.payload) if msg.payload.strip() else {}
            except (ValueError, RecursionError):  # RecursionError: hostile nesting (found by the fuzzer)
                raw = None
            if not isinstance(raw, dict):
                self._answer(topic, "unknown", error="invalid command: payload is not a JSON object")
                return
            request_id = raw.get("request_id")
            request_id = request_id if isinstance(request_id, str) and 0 < len(request_id) <= 100 else "unknown"
            try:
                cmd = model.model_validate(raw)
            except ValidationError as exc:
                self._answer(topic, request_id, error=f"invalid command: {_short(exc)}")
                return
            try:
                data = handler(cmd) or {}
            except CommandError as exc:
                self._answer(topic, cmd.request_id, error=str(exc))
                return
            except Exception as exc:  # a failing handler answers, logs, and the service goes on
                self.log.exception("command handler failed", topic=topic, request_id=cmd.request_id)
                self._answer(topic, cmd.request_id, error=f"internal error: {type(exc).__name__}")
                return
            self._answer(topic, cmd.request_id, data=data)

        self._subs[topic] = _Sub(topic, serve, None, 1)
        if self._connected.is_set():
            self._client.subscribe(topic, qos=1)

    def setting(self, topic: str, handler: Callable[[str], Any]) -> None:
        """Serve a ``…/set`` topic with a plain-text payload. ``handler`` raises ``ValueError`` to refuse it.

        A retained ``/set`` is cleared and ignored."""

        def serve(msg: Incoming) -> None:
            if self._clear_if_retained(msg) or not msg.payload:  # zero bytes: a cleared topic
                return
            try:
                handler(msg.text.strip())
            except (ValueError, ValidationError) as exc:
                self.log.warning("setting refused", topic=topic, payload=msg.text[:100], reason=_short(exc))

        self.subscribe_text(topic, serve)

    def on_connect(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` (on the worker thread) after every successful connect, e.g. to send HA discovery."""
        self._connect_hooks.append(hook)

    # ------------------------------------------------------------------ publishing

    def publish(
        self,
        topic: str,
        payload: BaseModel | str | bytes | dict[str, Any] | None,
        retain: bool = False,
        qos: int = 1,
        expiry_s: int | None = None,
    ) -> mqtt.MQTTMessageInfo:
        """Publish a model (as JSON), text, bytes, a dict (as JSON) or ``None`` (empty: clears a retained topic)."""
        body, is_json = _encode(payload)
        props = None
        if self.v5 and (is_json or expiry_s):
            props = Properties(PacketTypes.PUBLISH)
            if is_json:
                props.ContentType = "application/json"
            if expiry_s:
                props.MessageExpiryInterval = int(expiry_s)
        return self._client.publish(topic, body, qos=qos, retain=retain, properties=props)

    def publish_state(self, topic: str, payload: BaseModel | str | dict[str, Any] | None, qos: int = 1) -> None:
        """Retained state (the last known good value)."""
        self.publish(topic, payload, retain=True, qos=qos)

    def clear(self, topic: str) -> None:
        self.publish(topic, None, retain=True)

    def _answer(
        self, topic: str, request_id: str, data: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        from shared.clock import RealClock  # the result's time is informational only

        result = CommandResult(
            generated_at=RealClock().now(),
            request_id=request_id,
            status="error" if error else "ok",
            data=data or {},
            error=error,
        )
        if error:
            self.log.warning("command refused", topic=topic, request_id=request_id, error=error)
        self.publish(result_topic(topic), result, retain=False)

    def _clear_if_retained(self, msg: Incoming) -> bool:
        if msg.retain:
            if msg.payload:
                self.log.warning("retained command cleared and ignored", topic=msg.topic, payload=msg.text[:100])
                self.clear(msg.topic)
            return True
        return False

    def request(self, topic: str, command: Command | dict[str, Any], timeout: float = 10.0) -> CommandResult | None:
        """Send a command and wait for its result (for the dashboard, tools and tests). None on timeout.

        Must not be called from a handler (the worker thread delivers the result)."""
        cmd = command if isinstance(command, Command) else Command.model_validate(command)
        body = command if isinstance(command, dict) else cmd.model_dump(mode="json")
        body = {**body, "request_id": cmd.request_id}
        waiter: dict[str, Any] = {"event": threading.Event(), "result": None}
        with self._pending_lock:
            self._pending[cmd.request_id] = waiter
            rtopic = result_topic(topic)
            if rtopic not in self._subs:
                self.subscribe(rtopic, self._on_result, CommandResult)
        self.publish(topic, body, retain=False)
        try:
            waiter["event"].wait(timeout)
            return waiter["result"]
        finally:
            with self._pending_lock:
                self._pending.pop(cmd.request_id, None)

    def _on_result(self, msg: Incoming) -> None:
        if msg.model is None:
            return
        with self._pending_lock:
            waiter = self._pending.get(msg.model.request_id)
        if waiter:
            waiter["result"] = msg.model
            waiter["event"].set()

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

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

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
            self.counters.connects += 1
            for sub in list(self._subs.values()):
                client.subscribe(sub.topic, qos=sub.qos)
            client.publish(self.status_topic, "online", qos=1, retain=True)
            self._connected.set()
            self.log.info("bus connected", connects=self.counters.connects)
            self._inbox.put(_CONNECTED)
        except Exception:
            self.log.exception("on_connect failed")

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _flags: Any, reason_code: Any, _props: Any) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            self.log.warning("bus disconnected; reconnecting", reason=str(reason_code))

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._inbox.put(message)  # nothing else on the network thread

    def _exit_on_auth_failure(self) -> None:
        self.log.error("MQTT authentication failed: check the user name and password; not retrying")
        os._exit(2)

    # ------------------------------------------------------------------ worker thread

    def _work(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            if item is _CONNECTED:
                for hook in list(self._connect_hooks):
                    try:
                        hook()
                    except Exception:
                        self.log.exception("on-connect hook failed")
                continue
            self._dispatch(item)

    def _dispatch(self, message: mqtt.MQTTMessage) -> None:
        self.counters.received += 1
        topic = message.topic
        payload = bytes(message.payload or b"")
        for sub in list(self._subs.values()):
            if not mqtt.topic_matches_sub(_match_filter(sub.topic), topic):
                continue
            incoming = Incoming(topic, payload, bool(message.retain))
            if len(payload) > MAX_PAYLOAD_BYTES:
                self._drop(topic, f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
                continue
            if sub.model is not None and payload:
                try:
                    incoming = Incoming(topic, payload, incoming.retain, sub.model.model_validate_json(payload))
                except ValidationError as exc:
                    self._drop(topic, _short(exc))
                    continue
            try:
                sub.handler(incoming)
            except Exception:
                self.counters.handler_errors += 1
                self.log.exception("handler failed; message dropped", topic=topic)

    def _drop(self, topic: str, reason: str) -> None:
        self.counters.dropped_invalid += 1
        self.log.warning("invalid payload dropped", topic=topic, reason=reason)


_CONNECTED: Any = object()


def _match_filter(subscription: str) -> str:
    """The filter a subscription matches topics with: ``$share/<group>/<filter>`` (a shared subscription, one
    member of the group gets each message) matches like ``<filter>``."""
    if subscription.startswith("$share/"):
        parts = subscription.split("/", 2)
        return parts[2] if len(parts) == 3 else subscription
    return subscription


def _encode(payload: BaseModel | str | bytes | dict[str, Any] | None) -> tuple[bytes, bool]:
    if payload is None:
        return b"", False
    if isinstance(payload, BaseModel):
        return payload.model_dump_json().encode(), True
    if isinstance(payload, dict):
        return json.dumps(payload, separators=(",", ":"), default=str).encode(), True
    if isinstance(payload, str):
        return payload.encode(), False
    return payload, False


def _short(exc: Exception, limit: int = 300) -> str:
    if isinstance(exc, ValidationError):
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = ".".join(str(x) for x in first.get("loc", ()))
        text = f"{exc.error_count()} error(s); first: {loc or '<root>'}: {first.get('msg', '')}"
    else:
        text = str(exc)
    return text[:limit]
