"""What every bus has, whatever carries the messages: typed subscriptions, commands, setters, publishing by channel.

Longer than 400 lines: subscriptions, validation, commands, setters, publishing and the counters are one
object's contract, shared by the MQTT bus and the in-memory double.

``shared.bus.Bus`` carries it over MQTT (paho); ``tests/support/memory_bus.MemoryBus`` in memory, for fast tests of
handlers. Both feed ``BusCore.dispatch`` from one thread at a time, so handlers never run concurrently.

- ``subscribe(channel, handler)`` calls ``handler(value)`` with the validated model (a plain-text channel: the
  stripped text), or ``None`` when the retained value was cleared (an empty payload). Any number of handlers may
  share a topic; each call returns its own ``unsubscribe``.
- ``listen(channel, handler)`` is the same with the whole ``Incoming`` (topic, retain flag, payload) for handlers
  that need them (a fleet reads the home from the topic; the watchdog ages a retained heartbeat).
- An invalid payload is logged with its topic and dropped before any handler sees it; a handler that raises is
  logged and the others still run. Both are counted and published on ``<service>/health``.
- ``command`` serves a command topic and ``setting`` a ``…/set`` topic; both answer on the topic + ``/result``
  (``status`` ok or error, with the reason), and both clear and ignore a retained command (it was left by someone
  else and must not re-apply on restart).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from paho.mqtt.client import topic_matches_sub
from pydantic import BaseModel, ValidationError

from shared.clock import RealClock
from shared.logging import get_logger
from shared.models import BusHealth, Command, CommandResult
from shared.settings import ServiceSettings
from shared.topics import ANSWERS, Channel, Route, Topics, result_topic

MAX_PAYLOAD_BYTES = 1_000_000  # anything larger is hostile or a bug; drop before parsing
HEALTH_EVERY_S = 30.0  # ``<service>/health`` at most this often while its counters change (and on every connect)

M = TypeVar("M")
Unsubscribe = Callable[[], None]


class CommandError(Exception):
    """Raised by a command handler to answer ``status: error`` with this message."""


@dataclass(frozen=True)
class Incoming(Generic[M]):
    """A received message, after decoding: ``model`` is the validated model (the stripped text on a plain-text or
    untyped route), or None when the payload is empty (a cleared retained value)."""

    topic: str
    payload: bytes
    retain: bool
    model: M | None = None

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace")


@dataclass(eq=False)  # compared by identity: each subscription unsubscribes itself only
class _Sub:
    route: Route
    handler: Callable[[Incoming[Any]], None]
    qos: int


class BusCore:
    """Subscriptions, dispatch, commands and publishing; a subclass supplies the transport (``_send`` etc.)."""

    def __init__(self, settings: ServiceSettings, service: str, topics: Topics | None = None) -> None:
        self.settings = settings
        self.service = service
        self.topics = topics or Topics(settings.mqtt_prefix, settings.ha_discovery_prefix)
        self.log = get_logger(f"batsched.{service}.bus")
        self.inbox_max = settings.mqtt_inbox_max
        self.health_every_s = HEALTH_EVERY_S
        self.status_topic = self.topics.status(service)
        self.health_topic = self.topics.health(service)
        self._counts = {"received": 0, "dropped_overflow": 0, "dropped_invalid": 0, "handler_errors": 0}
        self._connects = 0
        self._health_sent: tuple[int, ...] | None = None
        self._health_at = 0.0
        self._subs: dict[str, list[_Sub]] = {}
        self._subs_lock = threading.RLock()
        self._connect_hooks: list[Callable[[], None]] = []
        self._pending: dict[str, dict[str, Any]] = {}
        self._pending_lock = threading.Lock()

    # ------------------------------------------------------------------ transport (subclasses)

    @property
    def connected(self) -> bool:
        raise NotImplementedError

    def _send(self, topic: str, body: bytes, is_json: bool, retain: bool, qos: int, expiry_s: int | None) -> Any:
        raise NotImplementedError

    def _transport_subscribe(self, topic: str, qos: int) -> None:
        raise NotImplementedError

    def _transport_unsubscribe(self, topic: str) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ subscribing

    def route(self, target: Channel | Route | str) -> Route:
        if isinstance(target, Route):
            return target
        if isinstance(target, Channel):
            return Route(self.topics.of(target), target)
        return Route(target)

    def subscribe(self, target: Channel | Route | str, handler: Callable[[Any], None]) -> Unsubscribe:
        """Call ``handler(value)`` for each message: the validated model, the text of a plain-text channel, or None
        when the retained value was cleared. Returns the call that removes this handler (and only this one)."""

        def deliver(msg: Incoming[Any]) -> None:
            handler(msg.model)

        return self._add(self.route(target), deliver)

    def listen(self, target: Channel | Route | str, handler: Callable[[Incoming[Any]], None]) -> Unsubscribe:
        """Like ``subscribe``, with the whole ``Incoming`` (topic, retain flag, payload and the validated model)."""
        return self._add(self.route(target), handler)

    def _add(self, route: Route, handler: Callable[[Incoming[Any]], None]) -> Unsubscribe:
        qos = route.channel.qos if route.channel is not None else 1
        sub = _Sub(route, handler, qos)
        with self._subs_lock:
            first = route.filter not in self._subs
            self._subs.setdefault(route.filter, []).append(sub)
        if first and self.connected:
            self._transport_subscribe(route.filter, qos)

        def unsubscribe() -> None:
            with self._subs_lock:
                subs = self._subs.get(route.filter, [])
                if sub not in subs:
                    return
                subs.remove(sub)
                last = not subs
                if last:
                    del self._subs[route.filter]
            if last and self.connected:
                self._transport_unsubscribe(route.filter)

        return unsubscribe

    def filters(self) -> list[tuple[str, int]]:
        """Every subscribed filter and its QoS (to restore them after a reconnect)."""
        with self._subs_lock:
            return [(f, max(s.qos for s in subs)) for f, subs in self._subs.items()]

    def command(
        self,
        target: Channel | Route | str,
        handler: Callable[[Any], dict[str, Any] | None],
        model: type[Command] | None = None,
    ) -> Unsubscribe:
        """Serve a command topic: validate into the channel's model, call ``handler(cmd)``, answer on ``…/result``.

        The handler returns result data, or raises ``CommandError`` for an error answer."""
        route = self.route(target)
        cmd_model: type[Command] = model or _command_model(route.channel)
        topic = route.filter

        def serve(msg: Incoming[Any]) -> None:
            if self._clear_if_retained(msg) or not msg.payload:
                return  # zero bytes: a cleared topic (e.g. the echo of our own clearing), never a command
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
                cmd = cmd_model.model_validate(raw)
            except ValidationError as exc:
                self._answer(topic, request_id, error=f"invalid command: {short_error(exc)}")
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

        return self._add(Route(topic), serve)

    def setting(self, target: Channel | Route | str, handler: Callable[[str], Any]) -> Unsubscribe:
        """Serve a ``…/set`` topic with a plain-text payload. ``handler`` raises ``ValueError`` to refuse it.

        Every value is answered on ``…/set/result``: ``ok``, or ``error`` with the reason (the owner's state topic
        also keeps its old value). A retained ``/set`` is cleared and ignored."""
        topic = self.route(target).filter

        def serve(msg: Incoming[Any]) -> None:
            if self._clear_if_retained(msg) or not msg.payload:  # zero bytes: a cleared topic
                return
            value = msg.text.strip()
            try:
                handler(value)
            except (ValueError, ValidationError) as exc:
                reason = short_error(exc)
                self.log.warning("setting refused", topic=topic, payload=msg.text[:100], reason=reason)
                self._answer(topic, "set", data={"value": value[:100]}, error=f"refused: {reason}")
                return
            self._answer(topic, "set", data={"value": value[:100]})

        return self._add(Route(topic), serve)

    def on_connect(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` (on the dispatching thread) after every successful connect, e.g. to send HA discovery."""
        self._connect_hooks.append(hook)

    # ------------------------------------------------------------------ publishing

    def publish(
        self,
        target: Channel | str,
        payload: BaseModel | str | bytes | dict[str, Any] | None,
        retain: bool | None = None,
        qos: int | None = None,
        expiry_s: int | None = None,
    ) -> Any:
        """Publish a model (as JSON), text, bytes, a dict (as JSON) or ``None`` (empty: clears a retained topic).

        On a channel, its retained flag and QoS apply unless given, and a model must be the channel's."""
        if isinstance(target, Channel):
            model = target.model
            if isinstance(payload, BaseModel) and model is not None and not isinstance(payload, model):
                raise TypeError(f"{target.name} carries {model.__name__}, not {type(payload).__name__}")
            topic = self.topics.of(target)
            retain = target.retained if retain is None else retain
            qos = target.qos if qos is None else qos
        else:
            topic = target
        body, is_json = encode(payload)
        return self._send(topic, body, is_json, bool(retain), 1 if qos is None else qos, expiry_s)

    def publish_state(
        self, target: Channel | str, payload: BaseModel | str | dict[str, Any] | None, qos: int = 1
    ) -> Any:
        """Retained state (the last known good value)."""
        return self.publish(target, payload, retain=True, qos=qos)

    def clear(self, target: Channel | str) -> None:
        self.publish(target, None, retain=True)

    def _answer(
        self, topic: str, request_id: str, data: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        result = CommandResult(
            generated_at=RealClock().now(),  # informational only
            request_id=request_id,
            status="error" if error else "ok",
            data=data or {},
            error=error,
        )
        if error:
            self.log.warning("command refused", topic=topic, request_id=request_id, error=error)
        self.publish(result_topic(topic), result, retain=False)

    def _clear_if_retained(self, msg: Incoming[Any]) -> bool:
        if msg.retain:
            if msg.payload:
                self.log.warning("retained command cleared and ignored", topic=msg.topic, payload=msg.text[:100])
                self.clear(msg.topic)
            return True
        return False

    def request(
        self, target: Channel | str, command: Command | dict[str, Any], timeout: float = 10.0
    ) -> CommandResult | None:
        """Send a command and wait for its result (for the dashboard, tools and tests). None on timeout.

        Must not be called from a handler (the dispatching thread delivers the result)."""
        topic = self.topics.of(target) if isinstance(target, Channel) else target
        cmd = command if isinstance(command, Command) else Command.model_validate(command)
        body = command if isinstance(command, dict) else cmd.model_dump(mode="json")
        body = {**body, "request_id": cmd.request_id}
        waiter: dict[str, Any] = {"event": threading.Event(), "result": None}
        rtopic = result_topic(topic)
        with self._pending_lock:
            self._pending[cmd.request_id] = waiter
            with self._subs_lock:
                listening = rtopic in self._subs
            if not listening:
                self.listen(Route(rtopic, ANSWERS), self._on_result)
        self.publish(topic, body, retain=False)
        try:
            waiter["event"].wait(timeout)
            return waiter["result"]
        finally:
            with self._pending_lock:
                self._pending.pop(cmd.request_id, None)

    def _on_result(self, msg: Incoming[CommandResult]) -> None:
        if msg.model is None:
            return
        with self._pending_lock:
            waiter = self._pending.get(msg.model.request_id)
        if waiter:
            waiter["result"] = msg.model
            waiter["event"].set()

    # ------------------------------------------------------------------ dispatch (one thread at a time)

    def _after_connect(self) -> None:
        self._connects += 1
        for hook in list(self._connect_hooks):
            try:
                hook()
            except Exception:
                self.log.exception("on-connect hook failed")
        self.publish_health(force=True)

    def dispatch(self, topic: str, payload: bytes, retain: bool) -> None:
        """Hand one message to every matching handler; an invalid payload is dropped before any handler sees it."""
        self._counts["received"] += 1
        with self._subs_lock:
            matching = [s for f, subs in self._subs.items() if topic_matches_sub(_match_filter(f), topic) for s in subs]
        if not matching:
            return
        if len(payload) > MAX_PAYLOAD_BYTES:
            self._drop(topic, f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
            return
        parsed: dict[int, Incoming[Any] | None] = {}  # by channel identity: each payload is validated once
        for sub in matching:
            key = id(sub.route.channel)
            if key not in parsed:
                parsed[key] = self._parse(sub.route.channel, topic, payload, retain)
            incoming = parsed[key]
            if incoming is None:
                continue
            try:
                sub.handler(incoming)
            except Exception:
                self._counts["handler_errors"] += 1
                self.log.exception("handler failed; message dropped", topic=topic)

    def _parse(self, channel: Channel | None, topic: str, payload: bytes, retain: bool) -> Incoming[Any] | None:
        if not payload:
            return Incoming(topic, payload, retain)
        if channel is None or channel.model is None:
            return Incoming(topic, payload, retain, payload.decode("utf-8", errors="replace").strip())
        try:
            return Incoming(topic, payload, retain, channel.model.model_validate_json(payload))
        except ValidationError as exc:
            self._drop(topic, short_error(exc))
            return None

    def _drop(self, topic: str, reason: str) -> None:
        self._counts["dropped_invalid"] += 1
        self.log.warning("invalid payload dropped", topic=topic, reason=reason)

    def overflowed(self) -> None:
        """A message was dropped before dispatch because the inbox was full (called by the transport)."""
        self._counts["dropped_overflow"] += 1

    # ------------------------------------------------------------------ health

    def counters(self) -> BusHealth:
        return BusHealth(
            generated_at=RealClock().now(), inbox_max=self.inbox_max, connects=self._connects, **self._counts
        )

    def publish_health(self, force: bool = False, now_s: float | None = None) -> None:
        """``<service>/health`` (retained) when the counters changed and ``health_every_s`` has passed, or now."""
        key = (*self._counts.values(), self._connects)
        now_s = RealClock().monotonic() if now_s is None else now_s
        if not force and (key == self._health_sent or now_s - self._health_at < self.health_every_s):
            return
        if self.connected:
            if self._counts["dropped_overflow"] and key != self._health_sent:
                self.log.warning("inbox full: messages dropped", dropped=self._counts["dropped_overflow"])
            self.publish(self.health_topic, self.counters(), retain=True)
            self._health_sent, self._health_at = key, now_s


def _command_model(channel: Channel | None) -> type[Command]:
    if channel is not None and isinstance(channel.model, type) and issubclass(channel.model, Command):
        return channel.model
    return Command


def _match_filter(subscription: str) -> str:
    """The filter a subscription matches topics with: ``$share/<group>/<filter>`` (a shared subscription, one
    member of the group gets each message) matches like ``<filter>``."""
    if subscription.startswith("$share/"):
        parts = subscription.split("/", 2)
        return parts[2] if len(parts) == 3 else subscription
    return subscription


def encode(payload: BaseModel | str | bytes | dict[str, Any] | None) -> tuple[bytes, bool]:
    if payload is None:
        return b"", False
    if isinstance(payload, BaseModel):
        return payload.model_dump_json().encode(), True
    if isinstance(payload, dict):
        return json.dumps(payload, separators=(",", ":"), default=str).encode(), True
    if isinstance(payload, str):
        return payload.encode(), False
    return payload, False


def short_error(exc: Exception, limit: int = 300) -> str:
    if isinstance(exc, ValidationError):
        errs = exc.errors()
        first = errs[0] if errs else {}
        loc = ".".join(str(x) for x in first.get("loc", ()))
        text = f"{exc.error_count()} error(s); first: {loc or '<root>'}: {first.get('msg', '')}"
    else:
        text = str(exc)
    return text[:limit]
