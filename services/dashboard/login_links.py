"""The local login link (``local`` and ``link`` modes) and the per-client brake on wrong tokens.

A link logs one browser in once: the token is spent on use, and is dead 10 minutes after it was printed
whether used or not. A new one is printed at every start and whenever someone asks for it on the login page
(the asker cannot see it: only whoever reads the dashboard's log can). Times are on a monotonic clock of real
seconds, never the service clock: under ``make run`` that clock is simulated and runs many times faster.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

LINK_TTL_S = 600.0  # a printed link is dead after 10 minutes
NEW_LINK_EVERY_S = 5.0  # a new link on request at most this often (each one is a log line)
MAX_BAD_TOKENS = 10  # wrong tokens per client per window before that client must wait
BAD_TOKEN_WINDOW_S = 60.0
MAX_CLIENTS = 1024  # clients remembered by the brake (the oldest is forgotten first): memory stays bounded


class LoginLinks:
    def __init__(
        self,
        announce: Callable[[str], None] | None = None,
        first_token: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        ttl_s: float = LINK_TTL_S,
    ) -> None:
        self._announce = announce or (lambda _token: None)
        self._monotonic = monotonic
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._token: str | None = None
        self._issued = 0.0
        self._last_request = -NEW_LINK_EVERY_S
        if first_token is not None:
            self._set(first_token)

    def _set(self, token: str) -> None:
        self._token = token
        self._issued = self._monotonic()

    def issue(self) -> str:
        """A new token (the previous one dies), announced (printed in the log)."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._set(token)
        self._announce(token)
        return token

    def request_new(self) -> bool:
        """Someone on the login page asked for a new link: issue one unless one was issued just now."""
        with self._lock:
            now = self._monotonic()
            if now - self._last_request < NEW_LINK_EVERY_S:
                return False
            self._last_request = now
        self.issue()
        return True

    def redeem(self, given: str | None) -> bool:
        """True once for the current, unexpired token; it is spent by this call."""
        if not given:
            return False
        with self._lock:
            token = self._token
            if token is None or self._monotonic() - self._issued > self._ttl_s:
                return False
            if not hmac.compare_digest(given.encode(), token.encode()):
                return False
            self._token = None
            return True


class BadTokenBrake:
    """Wrong tokens counted per client address: one guesser waits, everyone else can still log in."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._by_client: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, client: str) -> deque[float]:
        seen = self._by_client.setdefault(client, deque())
        self._by_client.move_to_end(client)
        cutoff = self._monotonic() - BAD_TOKEN_WINDOW_S
        while seen and seen[0] < cutoff:
            seen.popleft()
        while len(self._by_client) > MAX_CLIENTS:
            self._by_client.popitem(last=False)
        return seen

    def blocked(self, client: str) -> bool:
        with self._lock:
            return len(self._recent(client)) >= MAX_BAD_TOKENS

    def wrong(self, client: str) -> None:
        with self._lock:
            self._recent(client).append(self._monotonic())
