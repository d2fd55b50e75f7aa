"""The original app's variables: each one honoured in its own unit or named at start with what replaces it;
``BATSCHED_…`` wins a conflict (logged); ``batsched config`` shows every value and its source, never a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import time as clock_time
from pathlib import Path

import pytest

from services.accounting.config import AccountingSettings
from services.dashboard.config import DashboardSettings, kept_session_secret
from services.executor.config import ExecutorSettings, WatchdogSettings
from services.executor.executor import rule_config
from services.forecast.config import ForecastSettings
from services.planner.config import PlannerServiceSettings
from services.planner.home import initial_settings
from services.pricing.config import PricingSettings
from shared.models import PlannerSettings
from shared.peak import PeakWindow
from shared.seed_settings import BY_NAME, SEED_VARIABLES
from shared.settings import build_settings
from tests.seed.fixtures import SEED_ENV, write_seed_env
from tools.config_report import collect, read_env_file

ROOT = Path(__file__).resolve().parents[2]

# Every variable the original app reads (config/config.py, src/Keep_Alive.py, src/location.py,
# src/Octopus_saving_sessions.py, main.py, run.py), and the PV constants of its config.py.
SEED_READS = {
    "LOG_LEVEL", "NETZERO_API_KEY", "NETZERO_SITE_ID", "BATTERY_RESERVE_START", "BATTERY_RESERVE_END",
    "SOC_SKIP_THRESHOLD", "SCHEDULE_LOOKAHEAD_HOURS", "SCHEDULE_INTERVAL_MINUTES", "SCHEDULE_POLL_INTERVAL",
    "FUTURE_SCHEDULE_SLEEP", "GRACE_RETRY_INTERVAL", "MAX_AGILE_PRICE_PPK", "KEEP_ALIVE_API_KEY", "GOOGLE_CLIENT_ID",
    "GOOGLE_CLIENT_SECRET", "FLASK_SECRET_KEY", "EXECUTOR_RUNNING_STATUS_INTERVAL", "MAX_STUCK_SOC_CYCLES",
    "PEAK_START_HOUR", "PEAK_END_HOUR", "SUNSET_HOUR", "SOLAR_POWER_SKIP_W", "OPENWEATHER_API_KEY",
    "WEATHER_CACHE_FILE", "WEATHER_CACHE_EXPIRY_HOURS", "MIN_SOLAR_EXPECTED_TODAY", "WEATHER_CACHE_TTL", "CLOUD_MAX",
    "TARGET_SOC", "MIN_SOC", "BATTERY_KWH", "CHARGE_RATE_KW", "OCTOPUS_API_KEY", "OCTOPUS_PRODUCT_CODE",
    "AGILE_CACHE_FILE", "CHEAP_RATE_THRESHOLD", "MAX_RETRIES", "RETRY_INTERVAL_SEC", "EXECUTOR_IDLE_SLEEP_SEC",
    "DECISION_LOGGING", "PURGE_DAYS", "RECOMMENDED_SLOTS", "SLOT_HOURS", "CUST_POSTCODE", "KEEP_ALIVE_PORT",
    "AUTHORIZED_EMAILS", "FLASK_ENV", "PORT", "OCTOPUS_ACCOUNT_NUMBER", "LATITUDE", "LONGITUDE", "TIMEZONE",
    "PV_TILT_ANGLE", "PV_AZIMUTH_ANGLE", "PV_SOTC_WATTAGE", "PV_NOMINAL_WATTAGE", "PV_NOMINAL_IRRADIANCE",
    "PV_NUM_PANELS", "PV_DERATING_FACTOR",
}  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**read_env_file(write_seed_env(tmp_path / ".env")), "BATSCHED_SECRETS_DIR": str(tmp_path / "none")}


def test_every_seed_variable_has_a_fate() -> None:
    assert set(BY_NAME) == SEED_READS
    for v in SEED_VARIABLES:
        assert v.honoured or (v.replaced_by and v.owner), v.name


def test_the_seed_env_file_is_read_in_its_own_units(env: dict[str, str]) -> None:
    ex = build_settings(ExecutorSettings, environ=env, service="executor")
    assert ex.max_charge_price_gbp == pytest.approx(0.22)  # 22 pence, not batsched's 20p
    assert (ex.peak_start_local, ex.peak_end_local) == ("17:00", "20:00")
    assert ex.max_target_soc_pct == 95 and ex.baseline_reserve_pct == 25
    assert ex.netzero_api_key is not None and ex.netzero_api_key.get_secret_value() == SEED_ENV["NETZERO_API_KEY"]
    assert ex.netzero_site_id == SEED_ENV["NETZERO_SITE_ID"] and ex.log_level == "info"
    wd = build_settings(WatchdogSettings, environ=env, service="watchdog")
    assert wd.baseline_reserve_pct == 25
    pl = build_settings(PlannerServiceSettings, environ=env, service="planner")
    assert pl.bus_setting_values() == {
        "min_soc_pct": 15.0,
        "max_charge_price_gbp": pytest.approx(0.22),
        "target_soc_cap_pct": 90.0,
        "peak_start_local": "17:00",
        "peak_end_local": "20:00",
    }
    assert (pl.battery_capacity_kwh, pl.battery_grid_charge_kw) == (27.0, 2.5)
    ac = build_settings(AccountingSettings, environ=env, service="accounting")
    assert (ac.battery_capacity_kwh, ac.battery_reserve_pct) == (27.0, 25.0)
    pr = build_settings(PricingSettings, environ=env, service="pricing")
    assert (pr.octopus_account, pr.octopus_product) == ("A-5EED1234", "AGILE-24-10-01")
    fc = build_settings(ForecastSettings, environ=env, service="forecast")
    assert (fc.postcode, fc.openmeteo_cache_s) == ("OX1 2JD", 1800.0)
    db = build_settings(DashboardSettings, environ=env, service="dashboard")
    assert db.dashboard_port == 8181 and db.oidc_redirect_path == "/callback"
    assert (
        db.dashboard_api_key is not None and db.dashboard_api_key.get_secret_value() == SEED_ENV["KEEP_ALIVE_API_KEY"]
    )
    assert db.oidc_client_id == SEED_ENV["GOOGLE_CLIENT_ID"]
    assert db.allowed_emails() == {"owner@example.org", "partner@example.org"}
    assert db.dashboard_session_secret is None  # 16 bytes: not used to sign; the dashboard keeps a random one
    assert "short_session_secret" in db.seed_resolution.flags


def test_replaced_variables_are_reported_once_by_the_service_that_would_use_them(env: dict[str, str]) -> None:
    notes = {
        svc: [n for n in build_settings(cls, environ=env, service=svc).seed_resolution.notes if n.level == "warning"]
        for svc, cls in (("planner", PlannerServiceSettings), ("executor", ExecutorSettings),
                         ("dashboard", DashboardSettings), ("pricing", PricingSettings))
    }  # fmt: skip
    planner = [n.variable for n in notes["planner"]]
    assert sorted(planner) == ["SOC_SKIP_THRESHOLD", "SOLAR_POWER_SKIP_W"]
    assert "BATSCHED_TARGET_SOC_CAP_PCT" in next(n.text for n in notes["planner"] if n.variable == "SOC_SKIP_THRESHOLD")
    assert [n.variable for n in notes["executor"]] == ["PURGE_DAYS"]
    assert sorted(n.variable for n in notes["dashboard"]) == ["FLASK_ENV", "FLASK_SECRET_KEY"]
    assert notes["pricing"] == []


def test_batsched_name_wins_a_conflict_and_it_is_logged(env: dict[str, str]) -> None:
    s = build_settings(ExecutorSettings, environ={**env, "BATSCHED_MAX_CHARGE_PRICE_GBP": "0.18"}, service="executor")
    assert s.max_charge_price_gbp == pytest.approx(0.18)
    assert str(s.seed_resolution.sources["max_charge_price_gbp"]) == "BATSCHED_MAX_CHARGE_PRICE_GBP"
    [note] = [n for n in s.seed_resolution.notes if n.variable == "MAX_AGILE_PRICE_PPK"]
    assert note.level == "warning" and "0.18" in note.text and "22" in note.text and "conflict" in note.text
    same = build_settings(ExecutorSettings, environ={**env, "BATSCHED_MAX_CHARGE_PRICE_GBP": "0.22"})
    assert not [n for n in same.seed_resolution.notes if n.variable == "MAX_AGILE_PRICE_PPK"]  # equal: no conflict


def test_a_secret_file_wins_over_the_seed_variable(env: dict[str, str], tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "netzero_api_key").write_text("from-the-file\n")
    s = build_settings(ExecutorSettings, environ={**env, "BATSCHED_SECRETS_DIR": str(secrets)}, service="executor")
    assert s.netzero_api_key is not None and s.netzero_api_key.get_secret_value() == "from-the-file"
    assert str(s.seed_resolution.sources["netzero_api_key"]) == "secret file netzero_api_key"
    [note] = [n for n in s.seed_resolution.notes if n.variable == "NETZERO_API_KEY"]
    assert "from-the-file" not in note.text and SEED_ENV["NETZERO_API_KEY"] not in note.text  # secrets never shown


@pytest.mark.parametrize("level", ["INFO", "Warning", "debug", "WARN", "ERROR"])
def test_log_level_in_any_case(level: str) -> None:
    s = build_settings(ExecutorSettings, environ={"LOG_LEVEL": level})
    assert s.log_level == {"WARN": "warning"}.get(level, level.lower())
    assert build_settings(ExecutorSettings, environ={"BATSCHED_LOG_LEVEL": level}).log_level == s.log_level


def test_seed_pv_constants_make_one_array() -> None:
    s = build_settings(ForecastSettings, environ={"PV_NUM_PANELS": "10", "PV_NOMINAL_WATTAGE": "400"})
    [a] = s.pv_arrays
    assert (a.kwp, a.inverter_kw, a.tilt, a.azimuth, a.efficiency) == (4.0, 5.0, 30.0, 25.0, 0.95)
    assert not s.pv_arrays_given  # the seed's constants say nothing of where: the postcode or LATITUDE does
    assert not build_settings(ForecastSettings, environ={}).pv_arrays_given
    assert build_settings(ForecastSettings, environ={"BATSCHED_PV_ARRAYS": '[{"kwp": 2}]'}).pv_arrays_given


def test_the_safety_values_have_one_source_for_the_planner_the_executor_and_its_windows() -> None:
    """The seed's names and the BATSCHED_ ones land in one place (SafetySettings): the planner starts from the same
    peak window and price cap the executor enforces and its manual windows are checked against."""
    env = {"PEAK_START_HOUR": "17", "PEAK_END_HOUR": "20", "MAX_AGILE_PRICE_PPK": "16", "MIN_SOC": "15"}
    pl = build_settings(PlannerServiceSettings, environ=env, service="planner")
    ex = build_settings(ExecutorSettings, environ=env, service="executor")
    start = initial_settings(pl)
    assert (start.peak_start_local, start.peak_end_local, start.max_charge_price_gbp) == ("17:00", "20:00", 0.16)
    assert start.min_soc_pct == 15.0 and start.target_soc_cap_pct == PlannerSettings().target_soc_cap_pct
    cfg = rule_config(ex)
    assert (
        ex.peak
        == pl.peak
        == PeakWindow(cfg.peak_start, cfg.peak_end, cfg.tz)
        == PeakWindow(clock_time(17), clock_time(20))
    )
    assert cfg.max_price_gbp == pytest.approx(0.16)
    # Unset, every one is the planner's default, and the environment gives the planner nothing to apply at start.
    default = build_settings(PlannerServiceSettings, environ={})
    assert initial_settings(default) == PlannerSettings() and default.bus_setting_values() == {}
    assert build_settings(ExecutorSettings, environ={}).peak == PeakWindow.parse(
        PlannerSettings().peak_start_local, PlannerSettings().peak_end_local
    )


def _load(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    code = "from services.executor.config import ExecutorSettings\nfrom shared.settings import load_settings\n"
    code += "load_settings(ExecutorSettings, 'executor')\n"
    full = {"PATH": os.environ.get("PATH", ""), "BATSCHED_SECRETS_DIR": str(tmp_path / "none"), **env}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=full, capture_output=True, text=True, timeout=60)


def test_a_bad_seed_value_stops_with_one_line_naming_it(tmp_path: Path) -> None:
    out = _load({"MAX_AGILE_PRICE_PPK": "cheap"}, tmp_path)
    assert out.returncode == 2
    [line] = out.stderr.strip().splitlines()
    assert "MAX_AGILE_PRICE_PPK" in line and "BATSCHED_MAX_CHARGE_PRICE_GBP" in line and "not a number" in line
    out = _load({"MAX_AGILE_PRICE_PPK": "500"}, tmp_path)  # 5 GBP/kWh: outside the limit's range
    assert out.returncode == 2 and "MAX_AGILE_PRICE_PPK" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = _load({"PEAK_START_HOUR": "25"}, tmp_path)
    assert out.returncode == 2 and "PEAK_START_HOUR" in out.stderr


def _started(proc) -> list[dict]:
    deadline = time.monotonic() + 60
    while "service started" not in proc.log() and proc.alive() and time.monotonic() < deadline:
        time.sleep(0.1)  # a log line, not a bus message: polled with a deadline
    return [json.loads(x) for x in proc.log().splitlines() if x.startswith("{")]


def test_planner_logs_seed_variables_and_takes_its_limits_from_them(spawn, probe) -> None:
    """One warning line per replaced variable; the seed's price cap is the planner's start value; a change on the
    bus survives a restart with the same environment; a changed environment applies again."""
    keep = ("SOC_SKIP_THRESHOLD", "SOLAR_POWER_SKIP_W", "MAX_AGILE_PRICE_PPK", "PEAK_START_HOUR")
    env = {k: v for k, v in SEED_ENV.items() if k in keep}
    topic = "batsched/planner/max_charge_price_gbp"
    proc = spawn("services.planner", env, name="planner-1")
    lines = _started(proc)
    warned = [x for x in lines if x.get("seed_variable") and x["level"] == "warning"]
    assert sorted(x["seed_variable"] for x in warned) == ["SOC_SKIP_THRESHOLD", "SOLAR_POWER_SKIP_W"]
    used = [x for x in lines if x.get("seed_variable") == "MAX_AGILE_PRICE_PPK"]
    assert len(used) == 1 and "0.22" in used[0]["event"]
    probe.wait_for(topic, lambda m: m.text == "0.22", timeout=30)
    probe.wait_for("batsched/planner/peak_start_local", lambda m: m.text == "17:00", timeout=10)
    mark = probe.mark()
    probe.publish(f"{topic}/set", "0.19")
    probe.wait_for(topic, lambda m: m.text == "0.19", timeout=10, after=mark)
    proc.terminate()
    mark = probe.mark()
    proc = spawn("services.planner", env, name="planner-2")
    probe.wait_for(topic, lambda m: m.text == "0.19", timeout=30, after=mark)  # the bus change stays
    proc.terminate()
    mark = probe.mark()
    spawn("services.planner", {**env, "MAX_AGILE_PRICE_PPK": "20"}, name="planner-3")
    probe.wait_for(topic, lambda m: m.text == "0.2", timeout=30, after=mark)  # a changed environment applies


def test_batsched_config_table_json_and_env_file(tmp_path: Path) -> None:
    path = write_seed_env(tmp_path / ".env")
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "mqtt_password").write_text("mqtt-pass-from-file")
    with path.open("a") as f:
        f.write(f"BATSCHED_SECRETS_DIR={secrets}\nBATSCHED_PEAK_END_LOCAL=19:30\n")
    env = {"PATH": os.environ.get("PATH", ""), "MAX_AGILE_PRICE_PPK": "99"}  # the process env must not count
    run = [sys.executable, "-m", "tools.cli", "config", "--env", str(path)]
    table = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    doc = json.loads(subprocess.run([*run, "--json"], cwd=ROOT, env=env, capture_output=True, text=True).stdout)
    secret_names = ("NETZERO_API_KEY", "KEEP_ALIVE_API_KEY", "GOOGLE_CLIENT_SECRET", "OCTOPUS_API_KEY")
    secret_names += ("FLASK_SECRET_KEY",)
    for secret in (*(SEED_ENV[k] for k in secret_names), "mqtt-pass-from-file"):
        assert secret not in table.stdout and secret not in json.dumps(doc)
    rows = {(r["service"], r["setting"]): r for r in doc["settings"]}
    price = rows[("executor", "BATSCHED_MAX_CHARGE_PRICE_GBP")]
    assert price["value"] == pytest.approx(0.22) and price["source"] == "seed MAX_AGILE_PRICE_PPK"
    assert rows[("executor", "BATSCHED_PEAK_END_LOCAL")]["source"] == "BATSCHED_PEAK_END_LOCAL"
    assert rows[("executor", "BATSCHED_PEAK_END_LOCAL")]["value"] == "19:30"
    assert rows[("all", "BATSCHED_MQTT_PASSWORD")]["source"] == "secret file mqtt_password"
    assert rows[("all", "BATSCHED_MQTT_PASSWORD")]["value"] == "******"
    assert rows[("executor", "BATSCHED_NETZERO_API_KEY")]["source"] == "seed NETZERO_API_KEY"
    assert rows[("executor", "BATSCHED_DECISION_INTERVAL_S")]["source"] == "default"
    assert any("PEAK_END_HOUR" in n["text"] and "conflict" in n["text"] for n in doc["seed"])
    assert any(n["variable"] == "SOC_SKIP_THRESHOLD" and n["level"] == "warning" for n in doc["seed"])
    assert table.returncode == 0 and doc["errors"] == []
    line = next(x for x in table.stdout.splitlines() if "BATSCHED_MAX_CHARGE_PRICE_GBP" in x)
    assert "0.22" in line and "seed MAX_AGILE_PRICE_PPK" in line


def test_batsched_config_reports_a_service_that_would_not_start(tmp_path: Path) -> None:
    rows, _notes, errors = collect({"MAX_AGILE_PRICE_PPK": "lots"})
    assert rows and any("MAX_AGILE_PRICE_PPK" in e for e in errors)


def test_kept_session_secret_is_private_and_stable(tmp_path: Path) -> None:
    first = kept_session_secret(tmp_path)
    assert len(first.encode()) >= 32 and kept_session_secret(tmp_path) == first
    assert (tmp_path / "dashboard_session_secret").stat().st_mode & 0o077 == 0
