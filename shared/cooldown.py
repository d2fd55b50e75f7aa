"""At most one go per period: for commands a person or an automation may send again and again (refresh now)."""

from __future__ import annotations

import math
from typing import Any

from shared.bus import CommandError
from shared.clock import Clock


class Cooldown:
    """``take()`` says how long to wait before the next go (0: go now, and the period starts again).

    Measured on the clock's monotonic time, so a wall-clock step neither blocks refreshes for hours nor lets a
    burst through. A period of 0 never waits."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self._last: float | None = None

    def take(self) -> float:
        now = self.clock.monotonic()
        if self._last is not None:
            wait = self._last + self.seconds - now
            if wait > 0:
                return wait
        self._last = now
        return 0.0

    def refuse_early(self, what: str, log: Any, request_id: str) -> None:
        """For a command handler: go on (the period starts again), or refuse with the wait (``CommandError``),
        so an automation in a loop or a button pressed again and again reaches the upstream API once a period."""
        wait = self.take()
        if wait:
            log.info("refresh refused: too soon", request_id=request_id, wait_s=round(wait))
            raise CommandError(f"{what} were refreshed moments ago: try again in {math.ceil(wait)} s")
