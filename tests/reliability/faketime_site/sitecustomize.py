"""Imported at start-up (as ``sitecustomize``) only by the processes the clock-step test runs under libfaketime.

libfaketime 0.9.10 (Debian 12's) with ``FAKETIME_DONT_FAKE_MONOTONIC=1`` rewrites the deadline of
``clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`` as if it were a faked time and hands the kernel a negative one,
and Python 3.11's ``time.sleep`` is exactly that call: every ``time.sleep`` fails with EINVAL (libfaketime issue
426, fixed after 0.9.10). Event, Condition, Lock and select timeouts are unaffected, so ``time.sleep`` (used by
paho's reconnect wait and urllib3's retry back-off here) sleeps on an Event instead: the same monotonic wait.
"""

from __future__ import annotations

import threading
import time


def _sleep(seconds: float) -> None:
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    threading.Event().wait(seconds)


time.sleep = _sleep
