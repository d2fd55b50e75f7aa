"""Intelligent Octopus Go's extra cheap slots: the smart-charge dispatches from the account's GraphQL API.

Octopus bills a half-hour that a smart-charge dispatch touches at the off-peak rate, for the whole house, also
outside the 23:30-05:30 window. The published import series shows that: each half-hour overlapping a planned or
completed dispatch gets the tariff's off-peak rate (the lowest rate of the series), so the planner can fill the
battery then and the executor's price rule sees the price that will be billed.

Query (the API's own shape; the Kraken token as for the sessions, ``sessions.GraphQLClient``):
``plannedDispatches(accountNumber) { start end delta meta { source location } }`` and the same for
``completedDispatches``. Times come as ``"2024-03-31 01:00:00+00:00"`` (older answers: ``startDt``/``endDt``).

A failed read keeps the dispatches last known and logs once: a dispatch only lowers a price, and losing one only
means the plan does not use it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.models import Rate
from shared.slots import SLOT, slot_start

from .sessions import GraphQLClient, SessionsError

DISPATCH_QUERY = """query dispatches($accountNumber: String!) {
  plannedDispatches(accountNumber: $accountNumber) { start end delta meta { source location } }
  completedDispatches(accountNumber: $accountNumber) { start end delta meta { source location } }
}"""
KEEP = timedelta(days=2)  # dispatches that ended longer ago than this no longer touch a published slot


@dataclass(frozen=True, order=True)
class Dispatch:
    start: datetime
    end: datetime
    source: str = "smart-charge"


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise SessionsError(f"dispatch time is not a string: {value!r}")
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        raise SessionsError(f"dispatch time is not an ISO time: {value!r}") from None
    if t.tzinfo is None:
        raise SessionsError(f"dispatch time without a zone: {value!r}")
    return t.astimezone(UTC)


def parse_dispatches(data: dict[str, Any]) -> list[Dispatch]:
    """Planned and completed dispatches of a GraphQL answer, sorted, without duplicates."""
    found: set[Dispatch] = set()
    for key in ("plannedDispatches", "completedDispatches"):
        for node in data.get(key) or []:
            if not isinstance(node, dict):
                continue
            start = _time(node.get("start") or node.get("startDt"))
            end = _time(node.get("end") or node.get("endDt"))
            if end <= start:
                continue
            source = str((node.get("meta") or {}).get("source") or "smart-charge")
            found.add(Dispatch(start, end, source))
    return sorted(found)


def dispatch_slots(dispatches: list[Dispatch]) -> set[datetime]:
    """UTC starts of the half-hours a dispatch touches (a partial half-hour counts whole, as Octopus bills it)."""
    out: set[datetime] = set()
    for d in dispatches:
        t = slot_start(d.start)
        while t < d.end:
            out.add(t)
            t += SLOT
    return out


def with_dispatches(rates: list[Rate], dispatches: list[Dispatch]) -> tuple[list[Rate], int]:
    """The rates with every dispatched half-hour at the off-peak rate (the series' lowest), and how many changed."""
    if not rates or not dispatches:
        return rates, 0
    off_peak = min(r.value_inc_vat for r in rates)
    slots = dispatch_slots(dispatches)
    out, changed = [], 0
    for r in rates:
        if r.start in slots and r.value_inc_vat > off_peak:
            out.append(r.model_copy(update={"value_inc_vat": off_peak}))
            changed += 1
        else:
            out.append(r)
    return out, changed


@dataclass
class DispatchWatcher:
    """Reads the dispatches on a timer; ``changed()`` is called when the set that touches prices changes."""

    graphql: GraphQLClient | None
    account: str | None
    now: Callable[[], datetime]
    changed: Callable[[], None]
    log: Any
    dispatches: list[Dispatch] = field(default_factory=list)
    error: str | None = None
    attempted: bool = False  # read at least once (the first read follows the first fetch of the prices)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def enabled(self) -> bool:
        return self.graphql is not None and bool(self.account)

    def current(self) -> list[Dispatch]:
        with self._lock:
            return list(self.dispatches)

    def refresh(self) -> None:
        if not self.enabled:
            return
        assert self.graphql is not None
        self.attempted = True
        try:
            found = parse_dispatches(self.graphql.query(DISPATCH_QUERY, {"accountNumber": self.account}))
        except (SessionsError, ValueError) as exc:
            if self.error is None:
                self.log.warning("Intelligent Octopus Go dispatches not read; keeping the last known", error=str(exc))
            self.error = str(exc)
            return
        if self.error is not None:
            self.log.info("Intelligent Octopus Go dispatches read again")
        self.error = None
        cutoff = self.now() - KEEP
        found = [d for d in found if d.end > cutoff]
        with self._lock:
            if found == self.dispatches:
                return
            self.dispatches = found
        self.log.info(
            "Intelligent Octopus Go dispatches changed",
            n=len(found),
            next=next((d.start.isoformat() for d in found if d.end > self.now()), None),
        )
        self.changed()
