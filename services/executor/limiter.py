"""A sliding-window request limiter on the injected clock: NetZero allows 5 requests a minute per account, we use
at most 4 so the user's own app keeps one. One limiter per process (``process_limiter``), whatever calls it."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

from shared.clock import Clock

WINDOW = timedelta(seconds=60)


class RateLimiter:
    def __init__(self, clock: Clock, per_minute: int = 4) -> None:
        self.clock = clock
        self.per_minute = per_minute
        self._sent: deque[datetime] = deque()
        self._blocked_until: datetime | None = None
        self._lock = threading.Lock()

    def _prune(self, now: datetime) -> None:
        while self._sent and now - self._sent[0] >= WINDOW:
            self._sent.popleft()

    def available(self) -> int:
        """Requests that may be made right now."""
        with self._lock:
            now = self.clock.now()
            if self._blocked_until and now < self._blocked_until:
                return 0
            self._prune(now)
            return max(0, self.per_minute - len(self._sent))

    def try_acquire(self, spare: int = 0) -> bool:
        """Take one request if the window allows (``spare`` extra allowed, for the leaving restore only)."""
        with self._lock:
            now = self.clock.now()
            if self._blocked_until and now < self._blocked_until and not spare:
                return False
            self._prune(now)
            if len(self._sent) >= self.per_minute + spare:
                return False
            self._sent.append(now)
            return True

    def next_free_in(self) -> float:
        """Seconds (clock time) until a request may be made."""
        with self._lock:
            now = self.clock.now()
            self._prune(now)
            waits = [0.0]
            if self._blocked_until and now < self._blocked_until:
                waits.append((self._blocked_until - now).total_seconds())
            if len(self._sent) >= self.per_minute:
                waits.append((self._sent[0] + WINDOW - now).total_seconds())
            return max(waits)

    def acquire(self, timeout_s: float, stop: threading.Event | None = None, spare: int = 0) -> bool:
        """Wait (on the clock) up to ``timeout_s`` for a request; then, with ``spare``, allow one over the limit."""
        stop = stop or threading.Event()
        deadline = self.clock.now() + timedelta(seconds=timeout_s)
        while True:
            if self.try_acquire():
                return True
            left = (deadline - self.clock.now()).total_seconds()
            if left <= 0 or stop.is_set():
                return self.try_acquire(spare=spare) if spare else False
            self.clock.wait(min(left, max(0.5, self.next_free_in())), stop)

    def block_until(self, until: datetime) -> None:
        """The server said 429: send nothing before ``until``."""
        with self._lock:
            if self._blocked_until is None or until > self._blocked_until:
                self._blocked_until = until


_process_limiters: dict[int, RateLimiter] = {}
_plock = threading.Lock()


def process_limiter(clock: Clock, per_minute: int = 4) -> RateLimiter:
    """The one limiter of this process (created on first use)."""
    with _plock:
        if 0 not in _process_limiters:
            _process_limiters[0] = RateLimiter(clock, per_minute)
        return _process_limiters[0]
