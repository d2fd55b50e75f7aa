"""The service runner every ``services/<name>/__main__.py`` uses: settings, logging, clock, bus, signals, tasks.

A service's ``__main__`` reads like its wiring diagram::

    def wire(ctx: ServiceContext[PricingSettings]) -> None:
        service = PricingService(ctx)
        ctx.bus.command(ctx.topics.pricing_refresh, service.on_refresh)
        ctx.every(3600, service.refresh, name="refresh")

    if __name__ == "__main__":
        raise SystemExit(run_service("pricing", PricingSettings, wire))
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

import structlog

from shared.bus import Bus
from shared.clock import Clock, RealClock, SimClock, WallClockSteps, shared_sim_origin, wait_until
from shared.logging import configure_logging
from shared.settings import ServiceSettings, load_settings, log_seed_notes
from shared.slots import next_slot_boundary
from shared.topics import Topics

S = TypeVar("S", bound=ServiceSettings)


def make_clock(settings: ServiceSettings) -> Clock:
    if settings.clock == "sim":
        start = settings.sim_start or RealClock().now()
        origin = settings.sim_origin
        if origin is None and settings.sim_origin_file is not None:
            origin = shared_sim_origin(settings.sim_origin_file)
        return SimClock(start, settings.sim_speed, origin)
    return RealClock()


@dataclass
class ServiceContext(Generic[S]):
    name: str
    settings: S
    clock: Clock
    bus: Bus
    log: structlog.stdlib.BoundLogger
    stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    # ``every`` tasks by name: (interval, function), so a test can drive a service's schedule on its own clock.
    periodic: dict[str, tuple[float | Callable[[], float], Callable[[], Any]]] = field(default_factory=dict)
    _stop_hooks: list[Callable[[], None]] = field(default_factory=list)

    @property
    def topics(self) -> Topics:
        return self.bus.topics

    def now(self) -> datetime:
        return self.clock.now()

    def data_path(self, filename: str) -> Path:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return self.settings.data_dir / filename

    def on_stop(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` at shutdown while the bus is still connected (e.g. restore the battery's baseline)."""
        self._stop_hooks.append(hook)

    def every(
        self, seconds: float | Callable[[], float], fn: Callable[[], Any], name: str, run_now: bool = True
    ) -> None:
        """Call ``fn`` every ``seconds`` of clock time (a callable interval may change, e.g. to back off).

        Scheduled on absolute instants of the clock, so a clock that jumps (tests, simulation) wakes it on time; a
        wall clock stepped back further than the wait had left runs it at once (``wait_until``), and so does a
        step while ``fn`` ran."""
        self.periodic[name] = (seconds, fn)

        def loop() -> None:
            if not run_now and self._wait(seconds):
                return
            while not self.stop.is_set():
                self._call(fn, name)
                if self._wait(seconds):
                    return

        self._spawn(loop, name)

    def at_slot_boundaries(self, fn: Callable[[], Any], name: str, run_now: bool = True) -> None:
        """Call ``fn`` at each half-hour boundary of the injected clock (and once at start).

        A clock set exactly onto a boundary fires it; a clock that jumps over several boundaries fires once; a wall
        clock stepped back past the boundary's slot fires it at once, then the new time's boundaries."""

        def loop() -> None:
            if run_now:
                self._call(fn, name)
            while not self.stop.is_set():
                now = self.clock.now()
                if wait_until(self.clock, next_slot_boundary(now), self.stop, since=now):
                    return
                self._call(fn, name)

        self._spawn(loop, name)

    def _wait(self, seconds: float | Callable[[], float]) -> bool:
        interval = seconds() if callable(seconds) else seconds
        now = self.clock.now()
        return wait_until(self.clock, now + timedelta(seconds=max(0.0, interval)), self.stop, since=now)

    def _call(self, fn: Callable[[], Any], name: str) -> None:
        while True:
            steps = WallClockSteps(self.clock)
            try:
                fn()
            except Exception:
                self.log.exception("task failed; will run again", task=name)
            step = steps.check()
            if not step or self.stop.is_set():
                return
            # It read a time that is no longer current (and its next instant is reckoned from the new one): again.
            self.log.warning(
                "wall clock stepped during a task; running it again", task=name, step_s=step.total_seconds()
            )

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"task-{name}", daemon=True)
        self._threads.append(thread)

    def start_tasks(self) -> None:
        for thread in self._threads:
            thread.start()

    def shutdown(self) -> None:
        """Stop the tasks first (so none is half-way through a store or a command), then run the stop hooks
        while the bus is still connected, then say offline and disconnect."""
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        for hook in self._stop_hooks:
            try:
                hook()
            except Exception:
                self.log.exception("stop hook failed")
        self.bus.stop()


def storage_problem(data_dir: Path) -> str:
    """What is wrong with the data directory in words, when it can be told (SQLite only says "unable to open")."""
    try:
        stat = os.statvfs(data_dir)
    except OSError:
        return ""
    if stat.f_flag & os.ST_RDONLY:
        return "the data directory is on a read-only file system"
    if stat.f_bavail == 0:
        return "the data directory's file system is full"
    if data_dir.is_dir() and not os.access(data_dir, os.W_OK):
        return "the data directory is not writable"
    return ""


def run_service(
    name: str,
    settings_cls: type[S],
    wire: Callable[[ServiceContext[S]], None],
    settings: S | None = None,
) -> int:
    """Load settings, wire the service, run until SIGTERM/SIGINT, then shut down cleanly. Returns the exit code."""
    settings = settings or load_settings(settings_cls, name)
    log = configure_logging(name, settings.log_level, settings.log_format)
    log_seed_notes(log, settings)
    ctx = ServiceContext(name=name, settings=settings, clock=make_clock(settings), bus=Bus(settings, name), log=log)

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal received; stopping", signal=signal.Signals(signum).name)
        ctx.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        wire(ctx)
    except (OSError, sqlite3.Error) as exc:
        # Typically the data directory: missing, read-only, a file, or a full disk. One clear line, exit 2.
        why = storage_problem(settings.data_dir)
        log.error("cannot start: storage unusable", data_dir=str(settings.data_dir), error=str(exc), problem=why)
        print(
            f"batsched-{name}: cannot start: {why + ': ' if why else ''}{type(exc).__name__}: {exc} "
            f"(data directory: {settings.data_dir})",
            file=sys.stderr,
        )
        return 2
    ctx.bus.start()
    ctx.start_tasks()
    log.info("service started", prefix=settings.mqtt_prefix, clock=settings.clock)
    while not ctx.stop.wait(1.0):
        pass
    ctx.shutdown()
    log.info("service stopped")
    return 0
