"""What a fleet planner knows about every home: the latest validated inputs per site (pure, no I/O)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from services.planner.home import HomeInputs
from shared.models import PlannerSettings


@dataclass
class Home(HomeInputs):
    """One home's inputs (as the single-home planner keeps them) and its bus settings."""

    settings: PlannerSettings = field(default_factory=PlannerSettings)


def site_of(topic: str, root: str) -> str | None:
    """``batsched/site-0042/battery/state`` → ``site-0042`` (None for a topic outside ``root``)."""
    head = f"{root}/"
    if not topic.startswith(head):
        return None
    site = topic[len(head) :].split("/", 1)[0]
    return site or None


class FleetCache:
    """Inputs of every home. State topics are not shared, so each planner process holds all homes (small: a few
    kB per home); only the work trigger (the import prices) is shared between the processes."""

    def __init__(self, defaults: PlannerSettings | None = None) -> None:
        self._homes: dict[str, Home] = {}
        self._lock = threading.Lock()
        self.defaults = defaults or PlannerSettings()  # a home's settings until it publishes its own

    def home(self, site: str) -> Home:
        with self._lock:
            if site not in self._homes:
                self._homes[site] = Home(settings=self.defaults)
            return self._homes[site]

    def set(self, site: str, attr: str, value: object, now: datetime) -> None:
        self.home(site).set(attr, value, now)  # None (a cleared topic) forgets the input

    def set_setting(self, site: str, name: str, text: str) -> bool:
        home = self.home(site)
        try:
            home.settings = PlannerSettings.model_validate({**home.settings.model_dump(), name: text.strip()})
        except ValidationError:
            return False
        return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._homes)

    def known(self, attr: str) -> int:
        with self._lock:
            return sum(1 for h in self._homes.values() if getattr(h, attr) is not None)
