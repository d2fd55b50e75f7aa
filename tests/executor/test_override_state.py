"""The override in force, on ``executor/override`` (retained): what the dashboard and Home Assistant show. The
executor's handlers on the in-memory bus (commands, answers and retained values as on a broker), its decisions
on a fixed clock against the NetZero simulator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from services.executor.__main__ import subscribe
from services.executor.config import ExecutorSettings
from services.executor.executor import Executor
from services.executor.journal import DB_NAME, Journal
from services.executor.limiter import RateLimiter
from services.executor.netzero import NetZeroClient
from shared.clock import FixedClock
from shared.logging import get_logger
from shared.models import Action, CommandResult, OverrideCommand, OverrideState
from shared.topics import EXECUTOR_OVERRIDE, result_topic
from sim.netzero import NetZeroSim
from tests.executor.support import SITE, TOKEN, SimServer, utc
from tests.support.memory_bus import MemoryBus

T0 = utc(2024, 1, 15, 1, 0)  # 01:00 in London (winter: UTC)


class World:
    def __init__(self, tmp: Path) -> None:
        self.clock = FixedClock(T0)
        self.sim = SimServer(NetZeroSim(self.clock, TOKEN, SITE, apply_delay_s=0))
        self.settings = ExecutorSettings(
            data_dir=tmp / "data",
            netzero_base_url=self.sim.base_url,
            netzero_api_key=TOKEN,
            netzero_site_id=SITE,
            timezone="Europe/London",
        )
        self.limiter = RateLimiter(self.clock, 4)
        self.start(MemoryBus(self.settings, "executor"))

    def start(self, bus: MemoryBus) -> None:
        """The executor's process starting: a new executor on the journal, wired and connected as ``wire`` does."""
        self.bus = bus
        self.journal = Journal(self.settings.data_dir / DB_NAME)
        client = NetZeroClient(self.sim.base_url, TOKEN, SITE, self.clock, self.limiter)
        self.executor = Executor(self.settings, self.clock, bus, self.journal, client, get_logger("test"))
        subscribe(self.executor, bus)
        bus.start()

    def restart(self) -> None:
        """The process stops and starts again; the broker keeps what was retained."""
        self.bus.stop()
        self.journal.close()
        fresh = MemoryBus(self.settings, "executor")
        fresh.retained = dict(self.bus.retained)
        self.start(fresh)

    def override(self, action: Action | None, until_h: float | None = None, target: float | None = None) -> dict:
        until = T0 + timedelta(hours=until_h) if until_h is not None else None
        cmd = OverrideCommand(action=action, until=until, target_soc_pct=target, request_id=f"ov-{action}")
        self.bus.fire(EXECUTOR_OVERRIDE, cmd)
        answer = self.bus.last(result_topic(self.bus.topics.executor_override))
        assert answer is not None
        result = CommandResult.model_validate_json(answer.payload)
        assert result.status == "ok" and result.request_id == cmd.request_id, result
        return result.data

    def in_force(self) -> OverrideState:
        """What a client connecting now reads (the retained value)."""
        return OverrideState.model_validate_json(self.bus.retained[self.bus.topics.executor_override_state])

    def close(self) -> None:
        self.bus.stop()
        self.journal.close()
        self.sim.stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def test_an_accepted_override_is_in_force_and_a_cancelled_one_is_not(world: World) -> None:
    assert world.in_force().action is None  # a fresh start: none, said at once
    world.override(Action.CHARGE, until_h=4.5, target=90)
    state = world.in_force()
    assert (state.action, state.until, state.target_soc_pct) == (Action.CHARGE, T0 + timedelta(hours=4.5), 90)
    assert state.request_id == "ov-charge" and state.summary == "Charge until 05:30 (to 90 %)"

    world.override(None)
    state = world.in_force()
    assert (state.action, state.until, state.target_soc_pct, state.summary) == (None, None, None, "None in force")
    assert world.executor.controls.override is None


def test_a_refused_override_changes_nothing_in_force(world: World) -> None:
    world.override(Action.HOLD, until_h=2)
    world.bus.fire(EXECUTOR_OVERRIDE, OverrideCommand(action=Action.CHARGE, until=T0 + timedelta(hours=30)))
    refused = world.bus.last(result_topic(world.bus.topics.executor_override))
    assert refused is not None and "at most 24 hours" in refused.text
    assert world.in_force().action == Action.HOLD


def test_an_override_that_ends_is_none_from_its_end(world: World) -> None:
    world.override(Action.SELF_USE, until_h=1)
    assert world.in_force().summary == "Self-use until 02:00"
    # Nothing is forced by a self-use override, yet the loop wakes at its end to say it is over.
    assert world.executor._next_edge(world.clock.now()) == T0 + timedelta(hours=1)
    world.clock.advance(timedelta(minutes=59))
    world.executor.tick()
    assert world.in_force().action == Action.SELF_USE
    world.clock.advance(timedelta(minutes=1))
    world.executor.tick()
    assert world.in_force().action is None and world.in_force().generated_at == T0 + timedelta(hours=1)


def test_an_override_is_not_in_force_after_a_restart(world: World) -> None:
    """An override lives in memory only: the retained value must not outlive it, or every client would show an
    override the executor no longer applies."""
    world.override(Action.CHARGE, until_h=20, target=80)
    assert world.in_force().summary == "Charge until 21:00 (to 80 %)"
    world.restart()
    assert world.executor.controls.override is None
    assert world.in_force().action is None and world.in_force().summary == "None in force"


def test_an_override_ending_on_another_day_names_the_day(world: World) -> None:
    world.override(Action.HOLD, until_h=23.5)  # from Mon 01:00 to Tue 00:30
    assert world.in_force().summary == "Hold until Tue 00:30"
