"""The actuator alone (issue 16): a fake NetZero client, a real journal in a temporary SQLite file, no broker.

What a user relies on: a charge or hold is journalled with its lease before the command goes out; a write that
fails or does not show in the read-back is sent again only after a back-off that doubles; a lease is renewed while
the decision wants it and cleared once the baseline is back; a journal that refuses writes lets no forcing command
out, while the restore (the safe direction) still goes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.executor.actuation import Actuator, JournalUnwritable
from services.executor.config import ExecutorSettings
from services.executor.decide import Decision
from services.executor.executor import rule_config
from services.executor.journal import DB_NAME, Journal
from services.executor.netzero import ServerError, SiteStatus
from services.executor.observation import Observer
from services.executor.records import Records
from services.executor.translate import desired_config
from shared.clock import FixedClock
from shared.logging import get_logger
from shared.models import Action, ExecutorMode, GridStatus, PowerwallConfig
from tests.executor.support import utc
from tests.support.memory_bus import MemoryBus

T0 = utc(2026, 1, 10, 2, 0)
BASELINE = PowerwallConfig(
    operational_mode="self_consumption", backup_reserve_pct=20, grid_charging=False, energy_exports="battery_ok"
)
CHARGE = desired_config(Action.CHARGE, BASELINE)


@dataclass
class FakeNetZero:
    """Applies what is posted (or answers with a scripted failure or a config that ignores it), and notes what
    the journal held at the moment each write went out."""

    clock: FixedClock
    journal: Journal
    config: PowerwallConfig = BASELINE
    fail: list[Exception] = field(default_factory=list)
    ignore_writes: bool = False
    posts: list[dict[str, Any]] = field(default_factory=list)
    clock_skew = None

    def read(self) -> SiteStatus:
        return SiteStatus(self.config, 50.0, GridStatus.ON_GRID, False, 0.0, 0.0, 0.0, 0.0, 13.5, self.clock.now())

    def get(self) -> SiteStatus:
        return self.read()

    def post(self, change: PowerwallConfig, spare: bool = False) -> SiteStatus:
        self.posts.append(
            {
                "change": change,
                "spare": spare,
                "commands": self.journal.commands(),
                "forced": self.journal.forced(),
            }
        )
        if self.fail:
            raise self.fail.pop(0)
        if not self.ignore_writes:
            self.config = self.config.model_copy(update=change.model_dump(exclude_none=True))
        return self.read()


class World:
    def __init__(self, tmp: Path) -> None:
        self.clock = FixedClock(T0)
        self.settings = ExecutorSettings(data_dir=tmp, netzero_api_key="t", netzero_site_id="s", retry_backoff_s=60)
        self.journal = Journal(tmp / DB_NAME)
        self.client = FakeNetZero(self.clock, self.journal)
        log = get_logger("actuation-test")
        self.records = Records(self.journal, log)
        self.observer = Observer(
            self.settings,
            rule_config(self.settings),
            self.clock,
            MemoryBus(),
            self.client,
            log,  # type: ignore[arg-type]
        )
        self.act = Actuator(self.settings, self.clock, self.records, self.client, self.observer, log)  # type: ignore[arg-type]

    def read(self) -> None:
        """A poll, as the loop does it: read, then settle (the first one reconciles)."""
        assert self.observer.poll(self.clock.now(), reuse=False, forced=self.act.forced is not None)
        self.act.settle(self.clock.now())
        if not self.act.reconciled:
            self.act.reconcile(self.clock.now())

    def decide(self, action: Action, change: PowerwallConfig | None, lease_min: int = 30, **kw: Any) -> Decision:
        desired = desired_config(action, BASELINE)
        forcing = action in (Action.CHARGE, Action.HOLD)
        lease = self.clock.now() + timedelta(minutes=lease_min) if forcing else None
        return Decision(
            action, action, kw.pop("source", "plan"), desired=desired, change=change, lease_until=lease, **kw
        )

    def apply(self, d: Decision) -> Any:
        return self.act.act(self.clock.now(), d, True, ExecutorMode.AUTO, False)

    def refuse_writes(self) -> None:
        """The journal's file turns read-only under it (SQLite refuses every write from now on)."""
        self.journal._db.execute("PRAGMA query_only = 1")


@pytest.fixture
def world(tmp_path: Path) -> World:
    w = World(tmp_path)
    w.read()
    yield w
    w.journal.close()


def test_the_first_read_becomes_the_baseline_and_nothing_is_sent(world: World) -> None:
    assert world.act.baseline == BASELINE and world.act.forced is None
    assert world.journal.baseline() == BASELINE and world.client.posts == []


def test_a_charge_is_journalled_with_its_lease_before_it_is_sent(world: World) -> None:
    d = world.decide(Action.CHARGE, CHARGE)
    applied = world.apply(d)
    at_send = world.client.posts[0]
    assert [(c["kind"], c["status"]) for c in at_send["commands"]] == [("decision", "pending")]
    assert at_send["forced"] is not None and at_send["forced"].lease_until == d.lease_until
    assert applied.outcome == "applied" and applied.sent == CHARGE
    assert [c["status"] for c in world.journal.commands()] == ["ok"]
    assert world.journal.forced().config == CHARGE and world.act.forced.lease_until == d.lease_until
    assert [x.outcome for x in world.journal.decisions()] == ["applied"]


def test_a_failed_write_is_retried_only_after_a_back_off_that_doubles(world: World) -> None:
    world.client.fail = [ServerError("HTTP 502"), ServerError("HTTP 502")]
    first = world.apply(world.decide(Action.CHARGE, CHARGE))
    assert first.outcome == "failed" and "502" in (first.error or "")
    assert world.act.retry_change == CHARGE
    assert world.act.retry_not_before(world.clock.now()) == world.clock.now() + timedelta(seconds=60)
    assert world.journal.commands()[0]["status"] == "failed"
    world.clock.advance(60)
    world.read()  # a charge goes only on a fresh read
    world.apply(world.decide(Action.CHARGE, CHARGE))
    assert world.act.retry_not_before(world.clock.now()) == world.clock.now() + timedelta(seconds=120)
    world.clock.advance(120)
    world.read()
    third = world.apply(world.decide(Action.CHARGE, CHARGE))
    assert third.outcome == "applied" and world.act.retry_change is None
    assert [c["status"] for c in world.journal.commands()] == ["failed", "failed", "ok"]


def test_a_write_not_in_the_read_back_is_watched_and_confirmed_by_a_later_read(world: World) -> None:
    world.client.ignore_writes = True
    applied = world.apply(world.decide(Action.CHARGE, CHARGE))
    assert applied.outcome == "mismatch" and world.act.retry_change == CHARGE
    assert world.act.forced is not None  # it may still land: kept as ours
    world.client.config = world.client.config.model_copy(update=CHARGE.model_dump(exclude_none=True))  # it lands
    world.clock.advance(30)
    world.read()
    assert world.act.retry_change is None and world.act.forced is not None


def test_the_lease_is_renewed_while_wanted_and_cleared_when_the_baseline_is_back(world: World) -> None:
    world.apply(world.decide(Action.CHARGE, CHARGE))
    since = world.act.forced.since
    world.clock.advance(600)
    world.read()
    renew = world.decide(Action.CHARGE, None)  # already charging: nothing to send, the lease goes on
    assert world.apply(renew).outcome == "unchanged" and len(world.client.posts) == 1
    assert world.journal.forced().lease_until == renew.lease_until and world.act.forced.since == since
    back = world.decide(Action.SELF_USE, desired_config(Action.SELF_USE, BASELINE), source="leaving")
    restored = world.apply(back)
    assert restored.outcome == "applied" and world.client.posts[-1]["spare"] is True
    assert world.act.forced is None and world.journal.forced() is None
    assert world.journal.commands()[-1]["kind"] == "restore"


def test_a_journal_that_refuses_writes_lets_no_charge_out(world: World) -> None:
    world.refuse_writes()
    with pytest.raises(JournalUnwritable):
        world.apply(world.decide(Action.CHARGE, CHARGE))
    assert world.client.posts == [] and world.act.forced is None
    assert world.records.error is not None


def test_a_journal_that_refuses_writes_still_lets_the_baseline_go_back(world: World) -> None:
    world.apply(world.decide(Action.CHARGE, CHARGE))
    world.refuse_writes()
    back = world.decide(Action.SELF_USE, desired_config(Action.SELF_USE, BASELINE), source="leaving")
    restored = world.apply(back)
    assert world.client.config == BASELINE and restored.outcome == "applied"
    assert "journal unwritable" in (restored.error or "")  # the decision on the bus says its row is missing
    assert world.journal.forced() is not None  # still "forced" on disk: a restart only restores once more


def test_a_charge_is_not_sent_on_a_read_older_than_the_fresh_read_limit(world: World) -> None:
    world.clock.advance(6)  # past the 5 s limit since the last read
    applied = world.apply(world.decide(Action.CHARGE, CHARGE))
    assert applied.outcome == "deferred" and world.client.posts == []
    assert world.journal.commands()[0]["status"] == "failed" and "not sent" in world.journal.commands()[0]["error"]
