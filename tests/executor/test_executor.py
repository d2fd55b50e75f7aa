"""The executor in-process on a fixed clock, against the simulator over HTTP and a real broker: each decision is
driven by hand (``tick``) so every step can be checked: writes, read-backs, leases, retries, restores."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from services.executor.config import ExecutorSettings, WatchdogSettings
from services.executor.executor import Executor, hand_back_before_exit
from services.executor.journal import DB_NAME, Journal
from services.executor.limiter import RateLimiter
from services.executor.netzero import NetZeroClient
from services.executor.watchdog import Watchdog
from shared.bus import Bus, Incoming
from shared.clock import FixedClock
from shared.logging import get_logger
from shared.models import Action, ExecutorMode, Heartbeat, OverrideCommand, PowerwallConfig
from shared.slots import slot_start
from sim.netzero import NetZeroSim, Profiles
from tests.executor.support import BASELINE, SITE, TOKEN, SimServer, current_rate, make_plan, make_rates, utc
from tests.support.fulldisk import fill

T0 = utc(2024, 1, 15, 1, 0)  # winter night: peak is 16:00–19:00 UTC
PROFILES = Profiles(4.0)  # shared: the real data is parsed once
CHARGING = {"operational_mode": "backup", "grid_charging": True}
BASELINE_CFG = {
    "operational_mode": "self_consumption",
    "backup_reserve_pct": 20,
    "grid_charging": False,
    "energy_exports": "pv_only",
}
CHARGING_CFG = {"operational_mode": "backup", "grid_charging": True}


class Rig:
    def __init__(self, tmp: Path, broker_port: int, sim_kwargs: dict | None = None, **settings) -> None:
        self.clock = FixedClock(T0)
        kwargs = {"apply_delay_s": 0, "profiles": PROFILES, **(sim_kwargs or {})}
        self.sim = SimServer(NetZeroSim(self.clock, TOKEN, SITE, **kwargs))
        self.settings = ExecutorSettings(
            mqtt_port=broker_port,
            data_dir=tmp / "data",
            netzero_base_url=self.sim.base_url,
            netzero_api_key=TOKEN,
            netzero_site_id=SITE,
            **settings,
        )
        self.bus = Bus(self.settings, "executor")
        self.bus.start()
        assert self.bus.wait_connected(10)
        self.limiter = RateLimiter(self.clock, 4)
        self.executor = self.new_executor()

    def new_executor(self) -> Executor:
        journal = Journal(self.settings.data_dir / DB_NAME)
        client = NetZeroClient(self.sim.base_url, TOKEN, SITE, self.clock, self.limiter)
        return Executor(self.settings, self.clock, self.bus, journal, client, get_logger("test"))

    def plan(self, charge: list[datetime], hours: float = 4, **kw) -> None:
        plan = make_plan(self.clock.now(), T0, hours, charge=charge, **kw)
        self.executor.on_plan(plan)
        rates = make_rates(self.clock.now(), T0, hours, lambda s: 0.05)
        self.executor.on_rates(rates)

    def tick(self, minutes: float = 1.0):
        self.clock.advance(timedelta(minutes=minutes))
        return self.executor.tick()

    def writes(self) -> list[dict]:
        return [r for r in self.sim.log()["requests"] if r["write"]]

    def close(self) -> None:
        self.bus.stop()
        self.sim.stop()


@pytest.fixture
def rig(tmp_path: Path, broker) -> Iterator[Rig]:
    r = Rig(tmp_path, broker.port)
    yield r
    r.close()


def test_first_decision_captures_the_baseline_and_publishes_state(rig: Rig, probe) -> None:
    applied = rig.executor.tick()
    assert rig.executor.journal.baseline() == PowerwallConfig(
        **{
            "operational_mode": "self_consumption",
            "backup_reserve_pct": 20,
            "grid_charging": False,
            "energy_exports": "pv_only",
        }
    )
    assert applied.outcome == "unchanged" and applied.action == Action.SELF_USE
    state = probe.wait_json("batsched/battery/state")
    assert state["soc_pct"] == pytest.approx(50) and state["config"]["operational_mode"] == "self_consumption"
    hb = Heartbeat.model_validate(probe.wait_json("batsched/executor/heartbeat"))
    assert hb.forced is False
    assert rig.writes() == []


def test_charges_in_a_planned_slot_then_restores_with_a_lease(rig: Rig, probe) -> None:
    rig.plan(charge=[utc(2024, 1, 15, 1, 30)])
    assert rig.executor.tick().outcome == "unchanged"  # 01:00 self_use: nothing to do
    applied = rig.tick(31)  # 01:31, in the charge slot
    assert applied.action == Action.CHARGE and applied.outcome == "applied"
    assert applied.sent == PowerwallConfig(operational_mode="backup", grid_charging=True)
    forced = rig.executor.journal.forced()
    assert forced is not None and forced.lease_until == utc(2024, 1, 15, 2, 2)  # slot end + 2 min margin
    assert [c["status"] for c in rig.executor.journal.commands()] == ["ok"]
    hb = probe.wait_json("batsched/executor/heartbeat", lambda d: d["forced"])
    assert hb["lease_until"].startswith("2024-01-15T02:02")
    assert rig.tick(10).outcome == "unchanged"  # still charging: no write, lease renewed
    applied = rig.tick(20)  # 02:01 self_use
    assert applied.outcome == "applied" and applied.sent.grid_charging is False
    assert rig.executor.journal.forced() is None
    assert [w["body"] for w in rig.writes()] == [
        CHARGING,
        {"operational_mode": "self_consumption", "grid_charging": False},
    ]
    soc = [s["soc_pct"] for s in rig.sim.log()["samples"]]
    assert max(soc) > 55  # it really charged (3.3 kW for 30 min ≈ +12 %)


def test_price_above_the_limit_or_unknown_blocks_the_charge(rig: Rig) -> None:
    rig.plan(charge=[utc(2024, 1, 15, 1, 0)])
    rig.executor.on_rates(None)  # no series: only the current rate counts
    rig.executor.on_current_rate(current_rate(T0, T0, 0.35))
    applied = rig.executor.tick()
    assert applied.action == Action.SELF_USE and any(
        r.rule == "price_limit" and r.verdict == "blocked" for r in applied.rules
    )
    rig.executor.on_current_rate(current_rate(T0, T0, None))
    assert rig.tick(1).action == Action.SELF_USE
    rig.executor.on_planner_max_price("0.04")
    rig.executor.on_current_rate(current_rate(T0, T0, 0.05))
    assert rig.tick(1).action == Action.SELF_USE  # the planner's lower limit holds too
    assert rig.writes() == []


def test_a_write_that_does_not_apply_is_retried_with_backoff(tmp_path: Path, broker) -> None:
    rig = Rig(tmp_path, broker.port, sim_kwargs={"drop_rate": 1.0})
    try:
        rig.plan(charge=[utc(2024, 1, 15, h, m) for h in (1, 2, 3) for m in (0, 30)])
        outcomes = [rig.executor.tick().outcome] + [rig.tick(1).outcome for _ in range(10)]
        assert outcomes[0] == "mismatch"
        assert outcomes[1] == "deferred"  # not hammered: waits 2 min, then 4, …
        assert outcomes.count("mismatch") == 3  # t=0, t=2, t=6 min
        assert len(rig.writes()) == 3
        assert rig.executor.journal.forced() is not None  # it may still land: the watchdog knows
    finally:
        rig.close()


def test_a_delayed_change_is_confirmed_later_without_a_second_write(tmp_path: Path, broker) -> None:
    rig = Rig(tmp_path, broker.port, sim_kwargs={"apply_delay_s": 30})
    try:
        rig.plan(charge=[T0])
        assert rig.executor.tick().outcome == "mismatch"
        assert rig.tick(1).outcome == "unchanged"  # the next read shows it applied
        assert len(rig.writes()) == 1
    finally:
        rig.close()


def test_dry_run_writes_nothing_and_records_what_it_would_do(tmp_path: Path, broker) -> None:
    rig = Rig(tmp_path, broker.port, dry_run=True)
    try:
        rig.plan(charge=[T0])
        applied = rig.executor.tick()
        assert applied.outcome == "dry_run" and applied.action == Action.CHARGE and applied.dry_run
        assert applied.sent is None
        assert rig.writes() == []
        assert [d.outcome for d in rig.executor.journal.decisions()] == ["dry_run"]
    finally:
        rig.close()


def test_restart_mid_charge_continues_the_plan_and_a_state_without_lease_is_the_users(rig: Rig) -> None:
    """Issue 20 changed the second half: a forced-looking configuration with no lease in the journal used to be
    restored ("forced state found with no lease"); the journal does not record it as ours, so it is the user's
    own (a charge someone else started, grid charging set in the Tesla app), becomes the baseline and is left."""
    rig.plan(charge=[T0])
    assert rig.executor.tick().outcome == "applied"
    rig.executor = rig.new_executor()  # a crash: the new process only has the journal and the Powerwall
    rig.plan(charge=[T0])
    assert rig.executor.forced is not None
    assert rig.tick(1).outcome == "unchanged"  # the plan still wants it: continue, no write
    rig.executor.journal.clear_forced()  # a journal without the lease: not ours
    rig.executor = rig.new_executor()
    rig.plan(charge=[])
    applied = rig.tick(1)
    assert applied.outcome == "unchanged" and applied.action == Action.SELF_USE
    assert rig.sim.state()["config"]["grid_charging"] is True and len(rig.writes()) == 1
    assert rig.executor.journal.baseline() == PowerwallConfig(**{**BASELINE_CFG, **CHARGING_CFG})


def test_mode_off_restores_then_hands_off(rig: Rig, probe) -> None:
    rig.plan(charge=[])  # self_use all along, cheap prices: force_charge is allowed
    rig.executor.on_mode_set("force_charge")
    assert rig.executor.tick().action == Action.CHARGE
    rig.executor.on_mode_set("off")
    assert probe.wait_for("batsched/executor/mode", lambda m: m.text == "off")
    assert rig.tick(1).outcome == "applied"
    rig.sim.control(config={"backup_reserve_percent": 50})  # the user's own change
    assert rig.tick(1).outcome == "stood_aside"
    assert rig.executor.journal.get("mode") == "off"


def test_manual_mode_reverts_to_auto_after_its_lease(rig: Rig) -> None:
    rig.executor.on_mode_set("hold")
    assert rig.executor.tick().action == Action.HOLD
    applied = rig.tick(121)
    assert rig.executor.mode == ExecutorMode.AUTO and applied.action == Action.SELF_USE
    assert applied.outcome == "applied"


def test_override_in_the_peak_is_blocked(rig: Rig) -> None:
    rig.clock.set(utc(2024, 1, 15, 16, 10))
    until = utc(2024, 1, 15, 17)
    result = rig.executor.on_override(OverrideCommand(action=Action.CHARGE, until=until))
    assert result["action"] == "charge"
    applied = rig.executor.tick()
    assert applied.requested_action == Action.CHARGE and applied.action == Action.SELF_USE
    assert rig.writes() == []


def test_off_grid_stands_aside(rig: Rig) -> None:
    rig.plan(charge=[T0])
    rig.sim.control(grid_outage=True)
    assert rig.executor.tick().outcome == "stood_aside"
    rig.sim.control(grid_outage=False, storm=True)
    assert rig.tick(1).outcome == "stood_aside"
    assert rig.writes() == []


def test_restore_on_stop_puts_the_baseline_back(rig: Rig) -> None:
    rig.plan(charge=[T0])
    rig.executor.tick()
    assert rig.sim.state()["config"]["operational_mode"] == "backup"
    rig.executor.restore_on_stop()
    cfg = rig.sim.state()["config"]
    assert {k: cfg[k] for k in BASELINE} == BASELINE
    assert rig.executor.journal.forced() is None
    assert [c["kind"] for c in rig.executor.journal.commands()] == ["decision", "restore"]


def test_watchdog_restores_after_silence_and_reports(rig: Rig, probe) -> None:
    rig.plan(charge=[T0])
    rig.executor.tick()
    settings = WatchdogSettings(
        mqtt_port=rig.settings.mqtt_port, data_dir=rig.settings.data_dir, watchdog_timeout_s=180
    )
    client = NetZeroClient(rig.sim.base_url, TOKEN, SITE, rig.clock, RateLimiter(rig.clock, 4))
    dog = Watchdog(settings, rig.clock, rig.bus, Journal(rig.settings.data_dir / DB_NAME), client, get_logger("wd"))
    dog.on_heartbeat(Incoming("hb", b"", False, Heartbeat(generated_at=rig.clock.now(), seq=1, forced=True)))
    assert dog.check() == "watching"
    rig.clock.advance(179)
    assert dog.check() == "watching"
    rig.clock.advance(2)
    assert dog.check() == "restored"
    cfg = rig.sim.state()["config"]
    assert {k: cfg[k] for k in BASELINE} == BASELINE
    report = probe.wait_json("batsched/executor/watchdog", lambda d: d["state"] == "restored")
    assert "heartbeat" in report["detail"]
    assert dog.check() == "idle"


def test_export_writes_the_decision_history_as_csv(rig: Rig, tmp_path: Path) -> None:
    from services.executor.export import main as export_main

    rig.plan(charge=[T0])
    rig.executor.tick()
    rig.tick(1)
    out = tmp_path / "history.csv"
    assert (
        export_main(["--data-dir", str(rig.settings.data_dir), "--out", str(out), "--since", "2024-01-15T00:00Z"]) == 0
    )
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["outcome"] for r in rows] == ["applied", "unchanged"]
    assert rows[0]["action"] == "charge" and "grid_charging" in rows[0]["sent"]


def test_export_command_line(rig: Rig, tmp_path: Path) -> None:
    import subprocess
    import sys

    rig.executor.tick()
    out = tmp_path / "h.csv"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.executor",
            "export",
            "--data-dir",
            str(rig.settings.data_dir),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "1 decisions written" in done.stderr and out.read_text().count("\n") == 2
    bad = subprocess.run(
        [sys.executable, "-m", "services.executor", "export", "--since", "yesterday"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "--since" in bad.stderr


def test_rate_limited_by_the_api_waits_and_recovers(rig: Rig) -> None:
    rig.plan(charge=[T0])
    other_app = NetZeroClient(rig.sim.base_url, TOKEN, SITE, rig.clock, RateLimiter(rig.clock, 5))
    for _ in range(4):  # the user's own app uses four of the account's five requests this minute
        other_app.get()
    first = rig.executor.tick()  # our GET is the fifth, our POST gets 429
    assert first.outcome == "failed" and "429" in first.error
    assert rig.executor.client.limiter.available() == 0  # blocked until the server's reset time
    assert rig.tick(0.5).outcome == "deferred"  # no request at all until then
    assert rig.tick(1).outcome == "deferred"  # the retry backoff (2 min) is not cut short
    assert rig.tick(1).outcome == "applied"
    assert rig.sim.state()["config"]["grid_charging"] is True
    log = rig.sim.log()
    assert log["rate_limited"] == 1 and log["max_per_minute"] <= 6


def test_netzero_down_while_charging_then_back_restores_per_plan(rig: Rig) -> None:
    rig.plan(charge=[T0])
    assert rig.executor.tick().outcome == "applied"
    rig.sim.control(api_error={"status": 503, "html": True})
    failed = [rig.tick(1) for _ in range(4)]
    assert failed[-1].action == Action.SELF_USE  # the battery state is stale: back to the baseline …
    assert any(r.rule == "stale_inputs" and r.verdict == "changed" for r in failed[-1].rules)
    assert failed[-1].outcome == "failed" and "503" in failed[-1].error  # … which cannot be sent yet
    rig.sim.control(api_error=None)
    rig.clock.set(utc(2024, 1, 15, 1, 40))
    rig.plan(charge=[])  # meanwhile the plan no longer wants the charge
    outcomes = [rig.tick(1).outcome for _ in range(5)]
    assert "applied" in outcomes
    assert rig.sim.state()["config"]["grid_charging"] is False and rig.executor.journal.forced() is None


def test_switching_dry_run_on_while_charging_hands_back_control_once(rig: Rig) -> None:
    rig.plan(charge=[T0, utc(2024, 1, 15, 1, 30)])
    assert rig.executor.tick().outcome == "applied"
    rig.executor.on_dry_run_set("true")
    applied = rig.tick(1)
    assert applied.outcome == "applied" and applied.action == Action.SELF_USE
    assert any(r.rule == "leaving" and "dry-run" in r.detail for r in applied.rules)
    later = [rig.tick(1) for _ in range(3)]
    assert {a.outcome for a in later} == {"dry_run"} and all(a.action == Action.CHARGE for a in later)
    assert len(rig.writes()) == 2 and rig.executor.journal.forced() is None


def test_watchdog_restore_wins_over_a_forcing_command_still_on_its_way(tmp_path: Path, broker) -> None:
    """Regression (found by the 50-kill test): the executor sent a hold, the gateway had not applied it yet, the
    watchdog read the baseline, and used to clear the journal without sending anything; the hold then landed."""
    rig = Rig(tmp_path, broker.port, sim_kwargs={"apply_delay_s": 30})
    try:
        rig.plan(charge=[], hold=[T0])
        assert rig.executor.tick().outcome == "mismatch"  # the hold is on its way
        settings = WatchdogSettings(mqtt_port=rig.settings.mqtt_port, data_dir=rig.settings.data_dir)
        client = NetZeroClient(rig.sim.base_url, TOKEN, SITE, rig.clock, RateLimiter(rig.clock, 4))
        journal = Journal(rig.settings.data_dir / DB_NAME)
        dog = Watchdog(settings, rig.clock, rig.bus, journal, client, get_logger("wd"))
        rig.clock.advance(10)
        assert dog.restore("test") == "restored"  # the executor "died" right after sending
        rig.clock.advance(60)
        cfg = rig.sim.state()["config"]
        assert {k: cfg[k] for k in BASELINE} == BASELINE
        assert journal.forced() is None
    finally:
        rig.close()


def test_watchdog_keeps_a_forced_state_the_executor_wrote_meanwhile(rig: Rig) -> None:
    journal = rig.executor.journal
    journal.set_forced(PowerwallConfig(operational_mode="backup"), T0, T0 + timedelta(minutes=30))
    seen = journal.forced_raw()
    journal.set_forced(PowerwallConfig(operational_mode="backup"), T0, T0 + timedelta(minutes=31))  # renewed
    assert journal.clear_forced_if(seen) is False and journal.forced() is not None
    assert journal.clear_forced_if(journal.forced_raw()) is True and journal.forced() is None


def test_a_journal_that_cannot_be_written_sends_no_charge_and_recovers_by_itself(rig: Rig, probe) -> None:
    assert rig.executor.tick().outcome == "unchanged"  # baseline captured
    disk = fill(rig.executor.journal)
    disk.full = True
    rig.plan(charge=[T0, utc(2024, 1, 15, 1, 30)])
    rig.executor.on_mode_set("force_charge")  # accepted in memory; saved once the journal can write
    refused = rig.tick(1)
    assert refused.requested_action == Action.CHARGE and refused.action is None
    assert refused.outcome == "stood_aside" and "database or disk is full" in refused.error
    assert any(r.rule == "leaving" and "journal unwritable" in r.detail for r in refused.rules)
    assert rig.writes() == [] and rig.executor.forced is None
    assert rig.tick(1).outcome == "stood_aside" and rig.writes() == []
    assert rig.executor.journal.get("mode") in (None, "auto")
    disk.full = False
    applied = rig.tick(1)
    assert applied.action == Action.CHARGE and applied.outcome == "applied" and applied.error is None
    assert [c["status"] for c in rig.executor.journal.commands()] == ["ok"]  # journalled before it was sent
    assert rig.executor.journal.get("mode") == "force_charge"


def test_a_journal_that_fills_while_charging_hands_back_control_then_charges_again(rig: Rig) -> None:
    rig.plan(charge=[T0, utc(2024, 1, 15, 1, 30)])
    assert rig.executor.tick().outcome == "applied"
    disk = fill(rig.executor.journal)
    disk.full = True
    restored = rig.tick(1)  # the lease cannot be renewed: no forced state without it
    assert restored.action == Action.SELF_USE and restored.outcome == "applied"
    assert restored.requested_action == Action.CHARGE and "journal unwritable" in restored.error
    assert rig.sim.state()["config"]["grid_charging"] is False and rig.executor.forced is None
    assert rig.executor.journal.forced() is not None  # stale on disk: errs towards a second restore, never a charge
    assert rig.tick(1).outcome == "stood_aside" and len(rig.writes()) == 2
    disk.full = False
    again = rig.tick(1)
    assert again.action == Action.CHARGE and again.outcome == "applied"
    assert [c["kind"] for c in rig.executor.journal.commands()] == ["decision", "decision"]  # the restore has no row
    assert len(rig.writes()) == 3


def test_watchdog_restores_even_when_the_journal_cannot_be_written_and_only_once(rig: Rig) -> None:
    rig.plan(charge=[T0])
    assert rig.executor.tick().outcome == "applied"
    settings = WatchdogSettings(mqtt_port=rig.settings.mqtt_port, data_dir=rig.settings.data_dir)
    client = NetZeroClient(rig.sim.base_url, TOKEN, SITE, rig.clock, RateLimiter(rig.clock, 4))
    journal = Journal(rig.settings.data_dir / DB_NAME)
    disk = fill(journal)
    disk.full = True
    dog = Watchdog(settings, rig.clock, rig.bus, journal, client, get_logger("wd"))
    rig.clock.advance(200)  # no heartbeat since the watchdog started
    assert dog.check() == "restored"
    cfg = rig.sim.state()["config"]
    assert {k: cfg[k] for k in BASELINE} == BASELINE
    assert journal.forced() is not None  # the journal could not be cleared …
    rig.clock.advance(60)
    assert dog.check() == "restored" and len(rig.writes()) == 2  # … and the baseline is not sent again
    disk.full = False
    rig.clock.advance(60)
    assert dog.check() == "restored" and journal.forced() is None  # cleared once the journal can write
    assert dog.check() == "idle"


def test_a_journal_that_cannot_be_opened_at_start_hands_back_a_forced_state_before_exiting(
    rig: Rig, tmp_path: Path
) -> None:
    """Start-up on a read-only data directory after a crash mid-charge: the executor cannot run, but it reads the
    journal read-only and restores the baseline before it exits (the real read-only mount is in
    ``tests/reliability/test_storage_faults.py``)."""
    rig.plan(charge=[T0])
    assert rig.executor.tick().outcome == "applied"
    client = NetZeroClient(rig.sim.base_url, TOKEN, SITE, rig.clock, RateLimiter(rig.clock, 4))
    path = rig.settings.data_dir / DB_NAME
    assert hand_back_before_exit(client, path, get_logger("t")) == "baseline restored"
    cfg = rig.sim.state()["config"]
    assert {k: cfg[k] for k in BASELINE} == BASELINE
    assert hand_back_before_exit(client, path, get_logger("t")) == "nothing of ours on the Powerwall"
    assert hand_back_before_exit(client, tmp_path / "none" / DB_NAME, get_logger("t")).startswith("no journal")
    assert len(rig.writes()) == 2


@pytest.mark.parametrize(
    "off",
    [timedelta(minutes=5), -timedelta(days=14), -timedelta(hours=1)],
    ids=["5-min-fast", "2-weeks-slow", "1-h-back"],
)
def test_a_host_clock_off_netzeros_forces_nothing_until_it_is_right(
    tmp_path: Path, broker, probe, off: timedelta
) -> None:
    """A Pi without a real-time clock, a wrong zone, an NTP step. The simulator keeps the true
    time (its HTTP Date); this executor's clock is off by ``off`` and its plan says charge now. Nothing is sent and
    every decision on the bus says why; once the clock is right, the next decision charges."""
    rig = Rig(tmp_path, broker.port)
    try:
        host = FixedClock(T0 + off)
        settings = rig.settings.model_copy(update={"data_dir": tmp_path / "host"})
        client = NetZeroClient(rig.sim.base_url, TOKEN, SITE, host, RateLimiter(host, 4))
        ex = Executor(settings, host, rig.bus, Journal(settings.data_dir / DB_NAME), client, get_logger("test"))

        def plan_charging_now() -> None:
            slot = slot_start(host.now())
            ex.on_plan(make_plan(host.now(), slot, 4, charge=[slot]))
            ex.on_rates(make_rates(host.now(), slot, 4, lambda s: 0.05))

        plan_charging_now()
        mark = probe.mark()
        for _ in range(3):
            applied = ex.tick()
            assert applied.requested_action == Action.CHARGE and applied.action == Action.SELF_USE
            host.advance(timedelta(minutes=1))
        said = probe.wait_json(
            "batsched/executor/applied",
            lambda d: any(r["rule"] == "clock_skew" and r["verdict"] == "blocked" for r in d["rules"]),
            after=mark,
        )
        assert ("ahead of" if off > timedelta(0) else "behind") in str(said["rules"])
        assert rig.writes() == []

        host.set(rig.clock.now())  # NTP syncs; the planner replans in the true time
        plan_charging_now()
        applied = ex.tick()
        assert applied.action == Action.CHARGE and applied.outcome == "applied"
        assert [w["body"] for w in rig.writes()] == [CHARGING]
    finally:
        rig.close()
