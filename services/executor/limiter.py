"""A sliding-window request limiter: NetZero allows 5 requests a minute per account, we use at most 4 so the user's
own app keeps one. One limiter per process (``process_limiter``), whatever calls it.

The window is a duration, so it is kept on the clock's monotonic time: a wall clock stepped back hours would
otherwise keep every request "in the last minute" for those hours (no NetZero read or write meanwhile), and one
stepped forward would forget requests the server still counts."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime

from shared.clock import Clock

WINDOW_S = 60.0
# A 429's reset time further ahead than this is a clock disagreement with the server (or a step of ours), not
# a rate limit: wait no longer than this before trying again.
MAX_BLOCK_S = 600.0


class RateLimiter:
    def __init__(self, clock: Clock, per_minute: int = 4) -> None:
        self.clock = clock
        self.per_minute = per_minute
        self._sent: deque[float] = deque()  # monotonic seconds of each request
        self._blocked_until: float | None = None  # monotonic
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        while self._sent and now - self._sent[0] >= WINDOW_S:
            self._sent.popleft()

    def available(self) -> int:
        """Requests that may be made right now."""
        with self._lock:
            now = self.clock.monotonic()
            if self._blocked_until is not None and now < self._blocked_until:
                return 0
            self._prune(now)
            return max(0, self.per_minute - len(self._sent))

    def try_acquire(self, spare: int = 0) -> bool:
        """Take one request if the window allows (``spare`` extra allowed, for the leaving restore only)."""
        with self._lock:
            now = self.clock.monotonic()
            if self._blocked_until is not None and now < self._blocked_until and not spare:
                return False
            self._prune(now)
            if len(self._sent) >= self.per_minute + spare:
                return False
            self._sent.append(now)
            return True

    def next_free_in(self, n: int = 1) -> float:
        """Seconds (clock time) until ``n`` requests may be made (``n`` ≤ ``per_minute``)."""
        with self._lock:
            now = self.clock.monotonic()
            self._prune(now)
            waits = [0.0]
            if self._blocked_until is not None and now < self._blocked_until:
                waits.append(self._blocked_until - now)
            over = len(self._sent) + min(n, self.per_minute) - self.per_minute  # requests that must leave first
            if over > 0:
                waits.append(self._sent[over - 1] + WINDOW_S - now)
            return max(waits)

    def blocked_by_server(self) -> bool:
        """A 429's wait is running."""
        with self._lock:
            return self._blocked_until is not None and self.clock.monotonic() < self._blocked_until

    def acquire(self, timeout_s: float, stop: threading.Event | None = None, spare: int = 0) -> bool:
        """Wait (on the clock) up to ``timeout_s`` for a request; then, with ``spare``, allow one over the limit."""
        stop = stop or threading.Event()
        deadline = self.clock.monotonic() + timeout_s
        while True:
            if self.try_acquire():
                return True
            left = deadline - self.clock.monotonic()
            if left <= 0 or stop.is_set():
                return self.try_acquire(spare=spare) if spare else False
            self.clock.wait(min(left, max(0.5, self.next_free_in())), stop)

    def block_until(self, until: datetime) -> None:
        """The server said 429: send nothing before ``until`` (its wall time; at most ``MAX_BLOCK_S`` from now)."""
        seconds = min(max(0.0, (until - self.clock.now()).total_seconds()), MAX_BLOCK_S)
        with self._lock:
            blocked = self.clock.monotonic() + seconds
            if self._blocked_until is None or blocked > self._blocked_until:
                self._blocked_until = blocked


_process_limiters: dict[int, RateLimiter] = {}
_plock = threading.Lock()


def process_limiter(clock: Clock, per_minute: int = 4) -> RateLimiter:
    """The one limiter of this process (created on first use)."""
    with _plock:
        if 0 not in _process_limiters:
            _process_limiters[0] = RateLimiter(clock, per_minute)
        return _process_limiters[0]
