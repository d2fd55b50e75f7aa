"""Storage faults on the simulated system, for real (slow; ``make soak``): a data directory on a small tmpfs that
fills up (ENOSPC) while the service runs, and a read-only data directory (EROFS) at start-up. Each: what the
battery does (the NetZero simulator's configuration), what the bus says, what the log and the store hold, and
that it recovers without a restart once there is space again. Skipped, with the reason, where mount is not
permitted (non-root)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.executor.journal import DB_NAME
from tests.reliability import docs
from tests.reliability.mounts import Mounts, fill_up
from tests.reliability.system import SimWorld, failure_lines, module_runnable
from tests.reliability.world import STORES, System
from tests.support.probe import Probe

pytestmark = pytest.mark.slow

APPLIED = "batsched/executor/applied"
HEARTBEAT = "batsched/executor/heartbeat"
RATES = "batsched/pricing/import/rates"
ALERT = "batsched/pricing/alert"


@pytest.fixture
def mounts() -> Iterator[Mounts]:
    made = Mounts()
    yield made
    made.unmount_all()


def log_lines(text: str, level: str | None = None) -> list[dict]:
    """The JSON log lines of a service's output (optionally of one level)."""
    lines = []
    for raw in text.splitlines():
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        if isinstance(doc, dict) and (level is None or doc.get("level") == level):
            lines.append(doc)
    return lines


def price_at(series: dict, start: str) -> float | None:
    return {r["start"]: r["value_inc_vat"] for r in series["rates"]}.get(start)


def forced(config: dict) -> bool:
    return bool(config.get("grid_charging")) or config.get("operational_mode") == "backup"


def unwritable(d: dict) -> bool:
    return "journal unwritable" in (d.get("error") or "")


@pytest.mark.timeout(300)
@pytest.mark.skipif(not module_runnable("services.executor"), reason="executor has not landed")
def test_executor_on_a_full_disk_forces_nothing_it_cannot_journal_and_recovers(
    mounts: Mounts, spawn, probe: Probe, tmp_path: Path
) -> None:
    """The journal (WAL, ``synchronous=FULL``) is written before any NetZero command, so a full disk means the
    executor cannot record a lease for a forced state. What a user should get, and what this test holds it to:

    - the executor stays up and online, heartbeats go on, one clear error line in the log (not a traceback);
    - no charge or hold is started: a forcing command it could not journal is never sent;
    - a charge already running when the disk fills is handed back at the next decision (the baseline restore is
      the one command sent without its row: the safe direction; the journal still saying "forced" can only cause
      a second restore, never a charge);
    - every decision on ``executor/applied`` says "journal unwritable" while it lasts;
    - once space is freed the next decision works again, without a restart, and what the user asked for (here
      the manual ``force_charge`` mode) is carried out then, journalled first as always.
    """
    data = mounts.tmpfs(tmp_path / "executor-data", "8m")
    # A decision every 20 s leaves one request a minute for writes beside the reads (4/min); a clock three times
    # real time makes that a decision every ~7 s.
    system = System(spawn, probe, world=SimWorld(speed=3.0))
    system.world.start_sims(spawn, ("netzero",))
    system.netzero("/_control", {"apply_delay_s": 0})
    env = {
        **system.world.env,
        "BATSCHED_DATA_DIR": str(data),
        "BATSCHED_DECISION_INTERVAL_S": "20",
        "BATSCHED_RETRY_BACKOFF_S": "10",
        "BATSCHED_RETRY_BACKOFF_MAX_S": "20",
    }
    executor = spawn("services.executor", env=env, name="executor")
    probe.wait_for("batsched/executor/status", lambda m: m.text == "online", timeout=30)
    probe.wait_json(HEARTBEAT, timeout=30)
    probe.wait_json(APPLIED, lambda d: d["outcome"] == "unchanged" and not unwritable(d), timeout=30)  # baseline kept
    baseline = system.netzero()["config"]
    assert not forced(baseline)
    now = system.world.now()
    # A known, cheap price: without one the price rule (rightly) blocks any charge.
    probe.publish("batsched/pricing/import/current", json.dumps(docs.current_rate(now, 0.05)), retain=True)
    probe.publish("batsched/pricing/import/rates", json.dumps(docs.rate_series(now)), retain=True)
    figures: dict[str, object] = {}

    # 1. Disk full while idle, then the user asks for a charge: refused, nothing sent.
    filler = fill_up(data)
    writes = system.netzero()["writes"]
    mark = probe.mark()
    probe.publish("batsched/executor/mode/set", "force_charge")
    refused = probe.wait_json(APPLIED, lambda d: d["requested_action"] == "charge" and unwritable(d), 30, mark)
    assert refused["action"] is None and refused["outcome"] == "stood_aside", refused
    assert "database or disk is full" in refused["error"]
    probe.wait_json(APPLIED, unwritable, timeout=30, after=probe.mark())  # and the next decision on a full disk
    state = system.netzero()
    assert state["writes"] == writes and state["config"] == baseline, "a command went out that was not journalled"
    assert probe.latest("batsched/executor/status").text == "online"
    [error] = log_lines(executor.log(), "error")
    figures["error line"] = error
    assert "journal unwritable" in error["event"] and "database or disk is full" in error["error"]

    # 2. Space freed: the charge asked for is carried out at the next decision, journalled first.
    filler.unlink()
    freed, mark = time.monotonic(), probe.mark()
    charging = probe.wait_json(APPLIED, lambda d: d["action"] == "charge" and d["outcome"] == "applied", 60, mark)
    figures["s to charge after freeing"] = round(time.monotonic() - freed, 1)
    assert not unwritable(charging)
    assert forced(system.netzero()["config"])

    # 3. Disk full while charging: the lease cannot be renewed, so the charge is handed back at once.
    filler = fill_up(data)
    full, mark = time.monotonic(), probe.mark()
    restored = probe.wait_json(
        APPLIED, lambda d: d["action"] == "self_use" and d["outcome"] == "applied" and unwritable(d), 30, mark
    )
    figures["s to hand back after filling"] = round(time.monotonic() - full, 1)
    assert restored["requested_action"] == "charge"
    assert system.netzero()["config"] == baseline, "left forced on a full disk"
    hb = probe.wait_json(HEARTBEAT, timeout=30, after=probe.mark())
    assert hb["forced"] is False
    later = probe.wait_json(APPLIED, unwritable, timeout=30, after=probe.mark())  # still full: nothing forced again
    assert later["outcome"] != "applied" and system.netzero()["config"] == baseline

    # 4. Freed again: charging resumes (the manual mode still asks for it), then mode off restores the baseline.
    filler.unlink()
    freed, mark = time.monotonic(), probe.mark()
    probe.wait_json(APPLIED, lambda d: d["action"] == "charge" and d["outcome"] == "applied", 60, mark)
    figures["s to charge after freeing again"] = round(time.monotonic() - freed, 1)
    mark = probe.mark()
    probe.publish("batsched/executor/mode/set", "off")
    probe.wait_json(APPLIED, lambda d: d["mode"] == "off" and d["outcome"] == "applied", 60, mark)
    state = system.netzero()
    assert state["config"] == baseline
    # 4 a minute, plus the one request kept spare for handing back control (the API allows 5).
    assert state["max_per_minute"] <= 5 and state["rate_limited"] == 0, state
    assert executor.alive(), executor.log()[-2000:]
    assert not failure_lines(executor.log()), failure_lines(executor.log())[:3]
    assert len(log_lines(executor.log(), "error")) == 2  # one per time the disk filled
    assert executor.terminate() == 0

    # The journal: intact, and every forcing command the Powerwall received has its row (written before it).
    db = sqlite3.connect(f"{(data / DB_NAME).as_uri()}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = [json.loads(r[0]) for r in db.execute("SELECT sent FROM commands WHERE kind = 'decision'")]
    finally:
        db.close()
    sent = [r["body"] for r in system.netzero("/_log")["requests"] if r["write"]]
    forcing_sent = [b for b in sent if b.get("grid_charging") or b.get("operational_mode") == "backup"]
    assert len(forcing_sent) == 2 and len([r for r in rows if r.get("grid_charging")]) == 2, (sent, rows)
    figures["NetZero writes"] = len(sent)
    figures["max requests/min"] = state["max_per_minute"]
    print("\nexecutor on a full disk:", json.dumps(figures))


@pytest.mark.timeout(300)
@pytest.mark.skipif(not module_runnable("services.pricing"), reason="pricing has not landed")
def test_pricing_on_a_full_disk_keeps_the_last_good_prices_and_recovers(
    mounts: Mounts, spawn, probe: Probe, tmp_path: Path
) -> None:
    """The price store cannot take a fetch: the prices already published stay (a fresh subscriber gets them), the
    alert says ``store_failing`` with the reason, one error line per failed attempt, no traceback and no restart;
    the failure back-off retries, so freeing the disk is all it takes. A clock ten times real time makes the
    back-off (60 s) a few real seconds; the hourly refresh is set to a minute so the failure comes on schedule."""
    data = mounts.tmpfs(tmp_path / "pricing-data", "4m")
    system = System(spawn, probe, world=SimWorld(speed=10.0))
    system.world.start_sims(spawn, ("octopus",))
    env = {**system.world.env, "BATSCHED_DATA_DIR": str(data), "BATSCHED_REFRESH_INTERVAL_S": "60"}
    pricing = spawn("services.pricing", env=env, name="pricing")
    good = probe.wait_json(RATES, timeout=60)
    probe.wait_json(ALERT, lambda d: d["code"] == "ok", timeout=30)
    slot = good["rates"][10]["start"]
    old = price_at(good, slot)
    assert old != 0.42
    figures: dict[str, object] = {}

    filler = fill_up(data)
    system.sim_control("octopus", {"overrides": {slot: 42.0}})  # a new price that the full disk cannot take
    full, mark = time.monotonic(), probe.mark()
    alert = probe.wait_json(ALERT, lambda d: d["code"] == "store_failing", timeout=60, after=mark)
    figures["s to store_failing alert"] = round(time.monotonic() - full, 1)
    figures["alert"] = alert["message"]
    assert "pricing.db" in alert["message"] and "database or disk is full" in alert["message"]
    probe.publish("batsched/pricing/cmd/refresh", json.dumps(docs.command("disk-full")))
    result = probe.wait_json(
        "batsched/pricing/cmd/refresh/result", lambda d: d.get("request_id") == "disk-full", timeout=60, after=mark
    )
    assert result["status"] == "error" and "disk is full" in result["error"]
    published = [m.json() for m in probe.on(RATES) if m.at >= mark and m.payload]
    assert all(price_at(d, slot) == old for d in published), "a price was published that is not stored"
    fresh = Probe(probe.port, subscribe=RATES).start()
    try:
        retained = fresh.wait_json(RATES, timeout=10)
        assert price_at(retained, slot) == old and len(retained["rates"]) == len(good["rates"])
    finally:
        fresh.stop()
    errors = log_lines(pricing.log(), "error")
    figures["error lines while full"] = len(errors)
    figures["error line"] = errors[0]
    assert errors and all(e["event"] == "cannot save prices; keeping the last good prices" for e in errors)
    assert pricing.alive() and not failure_lines(pricing.log())

    filler.unlink()
    freed = time.monotonic()
    new = probe.wait_json(RATES, lambda d: price_at(d, slot) == 0.42, 60, mark)
    figures["s to new prices after freeing"] = round(time.monotonic() - freed, 1)
    assert price_at(new, slot) == 0.42
    probe.wait_json(ALERT, lambda d: d["code"] == "ok", timeout=30, after=mark)
    assert pricing.alive() and not failure_lines(pricing.log())
    print("\npricing on a full disk:", json.dumps(figures))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("module", [m for m in STORES if module_runnable(m)])
def test_read_only_data_dir_at_start_gives_a_clear_error_and_forces_nothing(
    module: str, mounts: Mounts, spawn, probe: Probe, tmp_path: Path
) -> None:
    """The data directory is read-only (a volume mounted ``:ro`` by mistake), with the store of an earlier run in
    it. The service cannot keep its records, so it must not run half-blind: it exits with status 2 and one line
    naming the data directory (no traceback), and the battery is left as it was."""
    name = STORES[module]
    data = tmp_path / f"{name}-data"
    system = System(spawn, probe)
    system.world.start_sims(spawn, ("netzero", "octopus", "openmeteo"))
    env = {**system.world.env, "BATSCHED_DATA_DIR": str(data)}
    first = spawn(module, env=env, name=f"{name}-first")
    probe.wait_for(f"batsched/{name}/status", lambda m: m.text == "online", timeout=60)
    assert first.terminate() == 0
    assert any(data.glob("*.db")), f"{module} left no store in {data}"
    before = system.netzero()["config"]

    mounts.read_only(data)
    svc = spawn(module, env=env, name=name)
    assert svc.proc is not None
    code = svc.proc.wait(60)
    log = svc.log()
    assert code == 2, f"{module} exited {code}:\n{log[-2000:]}"
    assert "cannot start" in log and str(data) in log, f"no clear line naming the data directory:\n{log[-1500:]}"
    assert "Traceback" not in log, f"a traceback instead of a clear error:\n{log[-2500:]}"
    assert system.netzero()["config"] == before, "the battery configuration changed"
    print(f"\n{name} on a read-only data dir:", [line for line in log.splitlines() if "cannot start" in line][-1])


@pytest.mark.timeout(180)
@pytest.mark.skipif(not module_runnable("services.executor"), reason="executor has not landed")
@pytest.mark.parametrize("wal", ["left-by-the-crash", "checkpointed"])
def test_executor_killed_mid_charge_then_restarted_read_only_leaves_nothing_forced(
    wal: str, mounts: Mounts, spawn, probe: Probe, tmp_path: Path
) -> None:
    """The worst case for a read-only data directory: the executor was charging, died without its SIGTERM restore
    (SIGKILL, power cut), and comes back with its data directory read-only. Nothing may be left forced:

    - ``left-by-the-crash``: the journal's ``-wal``/``-shm`` files are still there, so SQLite opens it read-only;
      the executor runs with a journal it cannot write: it hands the charge back at its first decision, stays
      online, forces nothing again, and every decision says "journal unwritable";
    - ``checkpointed`` (another process, e.g. the watchdog, closed the journal last, folding the WAL in): it cannot
      be opened at all; the executor reads it read-only, restores the baseline, then exits 2 with the clear line.
    """
    data = tmp_path / "executor-data"
    system = System(spawn, probe, world=SimWorld(speed=3.0))
    system.world.start_sims(spawn, ("netzero",))
    system.netzero("/_control", {"apply_delay_s": 0})
    env = {**system.world.env, "BATSCHED_DATA_DIR": str(data), "BATSCHED_DECISION_INTERVAL_S": "20"}
    executor = spawn("services.executor", env=env, name="executor")
    probe.wait_json(APPLIED, lambda d: d["outcome"] == "unchanged", timeout=30)
    baseline = system.netzero()["config"]
    now = system.world.now()
    probe.publish("batsched/pricing/import/current", json.dumps(docs.current_rate(now, 0.05)), retain=True)
    probe.publish("batsched/pricing/import/rates", json.dumps(docs.rate_series(now)), retain=True)
    mark = probe.mark()
    probe.publish("batsched/executor/mode/set", "force_charge")
    probe.wait_json(APPLIED, lambda d: d["action"] == "charge" and d["outcome"] == "applied", 60, mark)
    executor.kill()
    assert forced(system.netzero()["config"])
    if wal == "checkpointed":
        db = sqlite3.connect(data / DB_NAME)
        db.execute("SELECT count(*) FROM commands").fetchone()
        db.close()  # the last connection to close folds the WAL in and removes it
        assert not (data / f"{DB_NAME}-wal").exists()
    else:
        assert (data / f"{DB_NAME}-wal").exists()

    mounts.read_only(data)
    mark = probe.mark()
    again = spawn("services.executor", env=env, name="executor-read-only")
    assert again.proc is not None
    if wal == "checkpointed":
        code = again.proc.wait(60)
        log = again.log()
        assert code == 2, f"exited {code}:\n{log[-2000:]}"
        assert "cannot start: the data directory is on a read-only file system" in log, log[-2500:]
        assert "baseline restored before exiting" in log and "Traceback" not in log, log[-2500:]
    else:
        back = probe.wait_json(APPLIED, lambda d: d["action"] == "self_use" and d["outcome"] == "applied", 60, mark)
        assert unwritable(back) and "readonly database" in back["error"], back
        later = probe.wait_json(APPLIED, unwritable, timeout=30, after=probe.mark())
        assert later["outcome"] != "applied"
        assert probe.latest("batsched/executor/status").text == "online"
        assert again.alive() and not failure_lines(again.log())
    assert system.netzero()["config"] == baseline, "left forced after a restart on a read-only data directory"
