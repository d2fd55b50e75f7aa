"""Acceptance (issue 17): a user of the original app moves over as they are.

Every service runs with the environment of the seed's ``.env sample`` shape (its keys plus the config variables
a user sets, every value changed from the seed's defaults; no ``BATSCHED_`` name but where the test points at
its fakes and picks free ports), on a simulated clock, with the seed's ``data/Force_Charging.db`` (pending
schedules and a month of decisions) at the executor's journal path. Checked: the effective settings (the seed's
units, its safety values), the imported history (journal, bus, dashboard History page and CSV), the pending
schedules as manual windows (the peak one refused), the plan around them and around a Saving Session, and the
seed's endpoints, driven from a real Chromium the way its page's JavaScript called them and with its key.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import sync_playwright

from sim.netzero import NetZeroSim, Profiles
from sim.octopus import FakeOctopus
from sim.octopus_graphql import MPAN
from sim.openmeteo import OpenMeteoSim
from sim.postcodes import FakePostcodes
from tests.dashboard.fake_oidc import FakeOIDC
from tests.executor.support import SimServer, sim_clock_env, wait_until
from tests.seed.fixtures import SEED_ENV, make_seed_db, write_seed_env
from tests.support.broker import free_port
from tests.support.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.support.prereqs import OPTIONAL
from tools.config_report import read_env_file

ROOT = Path(__file__).resolve().parents[2]
LONDON = ZoneInfo("Europe/London")
SERVICES = {
    "pricing": "services.pricing",
    "forecast": "services.forecast",
    "planner": "services.planner",
    "executor": "services.executor",
    "watchdog": "services.executor.watchdog",
    "accounting": "services.accounting",
    "dashboard": "services.dashboard",
}
SEED_PAGE_JS = """async () => {
  // The calls the original dashboard's page made: the same methods, bodies and headers (and no CSRF token).
  const out = {};
  out.before = await (await fetch("/getPendingSchedules")).json();
  const add = await fetch("/putSchedule", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({start_time: "%(start)s", end_time: "%(end)s", target_soc: "85"})});
  out.add = {status: add.status, body: await add.json()};
  const peak = await fetch("/putSchedule", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({start_time: "%(peak_start)s", end_time: "%(peak_end)s", target_soc: "100"})});
  out.peak = {status: peak.status, body: await peak.json()};
  out.after = await (await fetch("/getPendingSchedules")).json();
  out.status = await (await fetch("/status")).json();
  const del = await fetch(`/delSchedule/${out.add.body.id}`, {method: "DELETE"});
  out.del = await del.json();
  out.last = await (await fetch("/getPendingSchedules")).json();
  return out;
}"""


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def events(start: datetime) -> dict[str, object]:
    """Tomorrow 14:00-15:00 UTC, joined, 2,000 OctoPoints/kWh (£2.50)."""
    s = (start + timedelta(days=1)).replace(hour=14, minute=0)
    z = "%Y-%m-%dT%H:%M:%SZ"
    return {
        "saving_events": [{"id": 7, "code": "SEED_SESSION", "startAt": s.strftime(z),
                           "endAt": (s + timedelta(hours=1)).strftime(z), "rewardPerKwhInOctoPoints": 2000}],
        "joined": [7],
    }  # fmt: skip


def test_a_seed_user_moves_over(tmp_path: Path, broker, probe, spawn, artifacts: Path) -> None:
    start = datetime(2024, 1, 22, 17, 0, tzinfo=UTC)  # Monday, after 16:00: tomorrow's prices are out
    clock, clock_env = sim_clock_env(start, 30.0)
    (tmp_path / "seed-app").mkdir()
    seed_env = read_env_file(write_seed_env(tmp_path / "seed-app" / ".env"))
    data = tmp_path / "data"  # the executor's data directory (the ``spawn`` fixture's)
    seed = make_seed_db(data / "Force_Charging.db", start)
    original = sha(seed.path)

    octopus = FakeOctopus(clock).start()
    octopus.graphql.update({"api_key": SEED_ENV["OCTOPUS_API_KEY"], "account": SEED_ENV["OCTOPUS_ACCOUNT_NUMBER"],
                            **events(start)})  # fmt: skip
    meteo = OpenMeteoSim(clock=clock).start()
    postcodes = FakePostcodes().start()
    netzero = SimServer(NetZeroSim(clock, SEED_ENV["NETZERO_API_KEY"], SEED_ENV["NETZERO_SITE_ID"], apply_delay_s=0,
                                   profiles=Profiles(4.0)))  # fmt: skip
    provider = FakeOIDC(SEED_ENV["GOOGLE_CLIENT_ID"], SEED_ENV["GOOGLE_CLIENT_SECRET"]).start()
    provider.user = {"sub": "owner", "email": "owner@example.org", "email_verified": True}
    port = free_port()
    env = {
        **seed_env,
        **clock_env,
        "BATSCHED_OCTOPUS_BASE_URL": octopus.url,
        "BATSCHED_OCTOPUS_MPAN": MPAN,
        "BATSCHED_OPENMETEO_URL": meteo.url,
        "BATSCHED_OPENMETEO_CACHE": "off",
        "BATSCHED_POSTCODE_URL": postcodes.url,
        "BATSCHED_NETZERO_BASE_URL": netzero.base_url,
        "BATSCHED_OIDC_METADATA_URL": provider.metadata_url,
        "BATSCHED_DASHBOARD_PORT": str(port),  # KEEP_ALIVE_PORT's 8181 may be taken here: the conflict is logged
    }
    try:
        procs = {name: spawn(module, env=env, name=name) for name, module in SERVICES.items()}
        for name in SERVICES:
            probe.wait_for(f"batsched/{name}/status", lambda m: m.text == "online", timeout=60)

        # ---------------------------------------------------------------- effective settings
        planner_values = {n: probe.wait_for(f"batsched/planner/{n}", timeout=30).text for n in
                          ("max_charge_price_gbp", "peak_start_local", "peak_end_local", "min_soc_pct",
                           "target_soc_cap_pct")}  # fmt: skip
        assert planner_values == {
            "max_charge_price_gbp": "0.22", "peak_start_local": "17:00", "peak_end_local": "20:00",
            "min_soc_pct": "15.0", "target_soc_cap_pct": "90.0",
        }  # fmt: skip
        logs = {name: [json.loads(x) for x in p.log().splitlines() if x.startswith("{")] for name, p in procs.items()}
        used = {x["seed_variable"] for x in logs["executor"] if x.get("seed_variable") and x["level"] == "info"}
        assert {"MAX_AGILE_PRICE_PPK", "PEAK_START_HOUR", "PEAK_END_HOUR", "BATTERY_RESERVE_END",
                "BATTERY_RESERVE_START", "NETZERO_API_KEY", "NETZERO_SITE_ID", "LOG_LEVEL"} <= used  # fmt: skip
        warned = {x["seed_variable"] for x in logs["dashboard"] if x.get("seed_variable") and x["level"] == "warning"}
        assert warned == {"FLASK_ENV", "FLASK_SECRET_KEY", "KEEP_ALIVE_PORT"}  # replaced, too short, overruled
        assert {x["seed_variable"] for x in logs["planner"] if x["level"] == "warning" and x.get("seed_variable")} == {
            "SOC_SKIP_THRESHOLD", "SOLAR_POWER_SKIP_W"}  # fmt: skip
        config = subprocess.run([sys.executable, "-m", "tools.cli", "config", "--env", str(tmp_path / "seed-app" /
                                 ".env"), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
        rows = {(r["service"], r["setting"]): r for r in json.loads(config.stdout)["settings"]}
        assert rows[("executor", "BATSCHED_MAX_CHARGE_PRICE_GBP")]["value"] == 0.22
        assert rows[("executor", "BATSCHED_BASELINE_RESERVE_PCT")]["value"] == 25
        assert rows[("dashboard", "BATSCHED_DASHBOARD_PORT")]["value"] == 8181
        assert all(SEED_ENV[k] not in config.stdout for k in ("NETZERO_API_KEY", "GOOGLE_CLIENT_SECRET"))

        # ---------------------------------------------------------------- history and windows imported
        moved = [p for p in data.iterdir() if p.name.startswith("Force_Charging.seed-") and p.suffix == ".db"]
        assert len(moved) == 1 and sha(moved[0]) == original  # moved aside, unchanged
        history = probe.wait_json("batsched/executor/history/imported", timeout=30)
        assert history["total"] == seed.decisions == len(history["decisions"]) == 90
        windows = probe.wait_json("batsched/executor/windows", lambda d: len(d["windows"]) == 4, timeout=30)
        assert [w["origin"] for w in windows["windows"]] == [f"seed schedule {p['id']}" for p in seed.pending]
        refused = [x for x in logs["executor"] if "NOT imported" in x.get("event", "")]
        assert len(refused) == 1 and "overlaps the peak 17:00–20:00" in refused[0]["event"]

        # ---------------------------------------------------------------- the plan around windows and the session
        def planned(d: dict) -> bool:
            reasons = {s["reason"] for s in d["slots"]}
            return d["status"] == "ok" and {"manual_window", "saving_session"} <= reasons

        plan = probe.wait_json("batsched/planner/plan", planned, timeout=90)
        first = windows["windows"][0]
        [slot] = [s for s in plan["slots"] if s["start"] == first["start"]]
        assert slot["action"] == "charge" and slot["reason"] == "manual_window"
        session = [s for s in plan["slots"] if s["reason"] == "saving_session"]
        assert len(session) == 2 and all(s["action"] == "self_use" for s in session)
        assert sum(s["grid_import_kwh"] for s in session) < 1e-6

        # ---------------------------------------------------------------- the seed's endpoints
        base = f"http://127.0.0.1:{port}"
        key = {"x-api-key": SEED_ENV["KEEP_ALIVE_API_KEY"]}
        assert httpx.get(f"{base}/health").json()["status"] == "ok"
        assert httpx.get(f"{base}/status").status_code == 401
        assert httpx.get(f"{base}/status", params={"api_key": SEED_ENV["KEEP_ALIVE_API_KEY"]}).status_code == 401
        status = httpx.get(f"{base}/status", headers=key).json()
        assert status["soc"] is not None and status["next_schedule_time"] is not None
        posted = httpx.post(f"{base}/update_status", headers=key, json={"message": "seed executor retired"})
        assert posted.json() == {"status": "ok"}

        day = seed.last_decision.astimezone(LONDON).date().isoformat()
        tomorrow = (start.astimezone(LONDON) + timedelta(days=2)).date().isoformat()
        if OPTIONAL["chromium"].missing():  # everything above has passed; only the browser's part is left out
            pytest.skip(OPTIONAL["chromium"].line)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page()
            page.goto(base + "/")  # → /login → the provider → the seed's /callback → /
            page.wait_for_url(base + "/")
            assert provider.redirects[-1] == f"{base}/callback"
            calls = page.evaluate(SEED_PAGE_JS % {
                "start": f"{tomorrow}T04:00", "end": f"{tomorrow}T05:00",
                "peak_start": f"{tomorrow}T18:00", "peak_end": f"{tomorrow}T18:30",
            })  # fmt: skip
            assert len(calls["before"]) == 4 and {r["source"] for r in calls["before"]} == {"scheduler", "manual"}
            assert (
                calls["add"]["status"] == 200
                and calls["add"]["body"]["message"] == "Manual schedule added successfully!"
            )
            assert calls["peak"]["status"] == 409 and "peak" in calls["peak"]["body"]["message"]
            assert len(calls["after"]) == 5 and any(r["target_soc"] == 85 for r in calls["after"])
            assert calls["status"]["last_scheduler_run"] != "Not yet run"
            assert calls["del"]["status"] == "ok" and len(calls["last"]) == 4
            page.goto(f"{base}/history")
            doc = page.evaluate(f"async () => (await fetch('/api/history?day={day}')).json()")
            assert len(doc["rows"]) == 3 and all(r["decision_id"].startswith("seed-") for r in doc["rows"])
            csv = page.evaluate(f"async () => (await fetch('/api/history.csv?day={day}')).text()")
            assert csv.count("seed-") == 3 and "original app, schedule" in csv
            page.goto(f"{base}/control")
            wait_until(lambda: page.locator("#windows tbody tr[data-id]").count() == 4, 20, "four windows listed")
            now_doc = page.evaluate("async () => (await fetch('/api/now')).json()")
            assert [s["kind"] for s in now_doc["sessions"]["sessions"]] == ["saving"]
            assert any(e["source"] == "seed-executor" for e in now_doc["external"])
            page.screenshot(path=str(artifacts / "seed-control.png"), full_page=True)
            browser.close()
        assert not [p for p in procs.values() if not p.alive()]
    finally:
        for server in (octopus, meteo, postcodes, provider, netzero):
            server.stop()
