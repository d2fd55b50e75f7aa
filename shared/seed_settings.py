"""The original app's environment variables (the "seed"): every one it reads, and what batsched does with it.

Each ``SeedVariable`` is either **honoured** (its value sets one or more batsched settings, converted from the
seed's unit: pence become GBP, an hour becomes ``HH:00`` local) or **replaced** (batsched does that job another
way; the service that would have used it logs one warning line naming it and what replaces it). Nothing the
seed reads is ignored in silence.

Precedence, per batsched setting: its own ``BATSCHED_…`` variable or secret file wins; then the seed's name; then
the default. When a ``BATSCHED_…`` value and a seed value are both set and differ, the service logs that the
``BATSCHED_…`` one is used. ``resolve`` works on any mapping (the process environment, or an env file for
``batsched config --env``), reads secret files only to compare them, and never writes anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic_settings import BaseSettings

ENV_PREFIX = "BATSCHED_"
MIN_SESSION_SECRET_BYTES = 32

# The seed's own constants for its one PV array (config/config.py), used when only some PV_* names are set.
SEED_PV = {
    "PV_TILT_ANGLE": 30.0,
    "PV_AZIMUTH_ANGLE": 25.0,
    "PV_NUM_PANELS": 20.0,
    "PV_NOMINAL_WATTAGE": 376.0,
    "PV_SOTC_WATTAGE": 500.0,
    "PV_NOMINAL_IRRADIANCE": 1000.0,
    "PV_DERATING_FACTOR": 0.95,
}


class SeedSettingError(ValueError):
    """A seed variable whose value cannot be converted; ``str()`` names it."""


def _number(text: str) -> float:
    try:
        value = float(text.strip().strip('"').strip("'"))
    except ValueError:
        raise ValueError(f"not a number: {text.strip()[:30]!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    return value


def _pence_to_gbp(text: str) -> float:
    return round(_number(text) / 100.0, 6)


def _hour_to_hhmm(text: str) -> str:
    value = _number(text)
    if value != int(value) or not 0 <= value <= 23:
        raise ValueError(f"an hour 0-23 is expected, got {text.strip()[:10]!r}")
    return f"{int(value):02d}:00"


def _log_level(text: str) -> str:
    value = text.strip().lower()
    return {"warn": "warning", "critical": "error", "fatal": "error"}.get(value, value)


def _int_text(text: str) -> str:
    return str(int(_number(text)))


def _float_text(text: str) -> str:
    return repr(_number(text))


def _plain(text: str) -> str:
    return text.strip()


@dataclass(frozen=True)
class SeedVariable:
    """One environment variable the seed reads.

    ``fields``: the batsched settings it sets when honoured (empty = replaced). ``convert``: seed text → the text
    batsched parses (its unit). ``owner``: the service that reports a replaced variable. ``extra``: constants set
    on other settings when this one is honoured and they have no value of their own."""

    name: str
    fields: tuple[str, ...] = ()
    convert: Callable[[str], Any] = _plain
    replaced_by: str = ""
    owner: str = ""
    note: str = ""
    secret: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def honoured(self) -> bool:
        return bool(self.fields)


V = SeedVariable
SEED_VARIABLES: tuple[SeedVariable, ...] = (
    # ------------------------------------------------------------------ safety values (honoured, units converted)
    V("MAX_AGILE_PRICE_PPK", ("max_charge_price_gbp",), _pence_to_gbp,
      note="pence/kWh become GBP/kWh (16 → 0.16); the executor's hard limit and the planner's limit. Unlike the "
      "seed, a manual window never bypasses it"),
    V("PEAK_START_HOUR", ("peak_start_local",), _hour_to_hhmm, note="an hour becomes HH:00 local (16 → 16:00)"),
    V("PEAK_END_HOUR", ("peak_end_local",), _hour_to_hhmm, note="an hour becomes HH:00 local"),
    V("BATTERY_RESERVE_END", ("baseline_reserve_pct", "battery_reserve_pct"), _int_text,
      note="the reserve put back after charging: the baseline's reserve (executor, watchdog) and the self-use "
      "estimate's reserve (accounting)"),
    V("BATTERY_RESERVE_START", ("max_target_soc_pct",), _float_text,
      note="the reserve the seed set while charging, i.e. the highest SOC it charged to"),
    V("TARGET_SOC", ("target_soc_cap_pct",), _float_text, note="the SOC the seed charged to: grid charging stops here"),
    V("MIN_SOC", ("min_soc_pct",), _float_text, note="the planner keeps this SOC as its reserve"),
    # ------------------------------------------------------------------ battery and tariff
    V("BATTERY_KWH", ("battery_capacity_kwh",), _float_text, note="usable capacity, kWh"),
    V("CHARGE_RATE_KW", ("battery_grid_charge_kw",), _float_text, note="grid-charge power, kW"),
    V("OCTOPUS_PRODUCT_CODE", ("octopus_product",), note="the import product whose prices are fetched"),
    V("OCTOPUS_API_KEY", ("octopus_api_key",), secret=True, note="also for Saving Sessions (GraphQL)"),
    V("OCTOPUS_ACCOUNT_NUMBER", ("octopus_account",), note="tariff discovery and Saving Sessions"),
    V("NETZERO_API_KEY", ("netzero_api_key",), secret=True),
    V("NETZERO_SITE_ID", ("netzero_site_id",)),
    # ------------------------------------------------------------------ solar forecast
    V("CUST_POSTCODE", ("postcode",), note="looked up once (postcodes.io) for the PV forecast's location"),
    V("LATITUDE", ("pv_latitude",), _float_text, note="used when the postcode cannot be looked up, as in the seed"),
    V("LONGITUDE", ("pv_longitude",), _float_text, note="used when the postcode cannot be looked up"),
    V("WEATHER_CACHE_TTL", ("openmeteo_cache_s",), _float_text, note="seconds"),
    *(
        V(name, ("pv_arrays",), _float_text, note="the seed's PV constants, if put in the environment: one array "
          "of PV_NUM_PANELS × PV_NOMINAL_WATTAGE (scaled to 1000 W/m²), clipped at PV_NUM_PANELS × PV_SOTC_WATTAGE")
        for name in SEED_PV
    ),
    # ------------------------------------------------------------------ dashboard
    V("KEEP_ALIVE_PORT", ("dashboard_port",), _int_text),
    V("PORT", ("dashboard_port",), _int_text, note="the port the seed's web server listened on"),
    V("KEEP_ALIVE_API_KEY", ("dashboard_api_key",), secret=True,
      note="the x-api-key header of /update_status and the seed-compatible endpoints (never in the query string)"),
    V("FLASK_SECRET_KEY", ("dashboard_session_secret",), secret=True,
      note="signs the session cookie; shorter than 32 bytes, a random secret kept in the data directory is used"),
    V("GOOGLE_CLIENT_ID", ("oidc_client_id",), extra={"oidc_redirect_path": "/callback"},
      note="the seed's redirect URI …/callback is kept (BATSCHED_OIDC_REDIRECT_PATH)"),
    V("GOOGLE_CLIENT_SECRET", ("oidc_client_secret",), secret=True),
    V("AUTHORIZED_EMAILS", ("authorized_emails",),
      note="empty lets nobody in (the seed let every Google account in)"),
    # ------------------------------------------------------------------ every service
    V("LOG_LEVEL", ("log_level",), _log_level, note="any case: INFO, info, Warning"),
    V("TIMEZONE", ("timezone",)),
    # ------------------------------------------------------------------ replaced: one warning line each
    V("SOC_SKIP_THRESHOLD", owner="planner",
      replaced_by="the planner, which charges only what pays off, up to TARGET_SOC / BATSCHED_TARGET_SOC_CAP_PCT"),
    V("SCHEDULE_LOOKAHEAD_HOURS", owner="planner",
      replaced_by="the planner's horizon: every published price (BATSCHED_PLANNER_HORIZON_SLOTS)"),
    V("SCHEDULE_INTERVAL_MINUTES", owner="planner", replaced_by="half-hour slots, Agile's own"),
    V("SLOT_HOURS", owner="planner", replaced_by="half-hour slots, Agile's own"),
    V("RECOMMENDED_SLOTS", owner="planner", replaced_by="the planner, which works out how many slots are needed"),
    V("CHEAP_RATE_THRESHOLD", owner="planner", replaced_by="MAX_AGILE_PRICE_PPK / BATSCHED_MAX_CHARGE_PRICE_GBP"),
    V("SOLAR_POWER_SKIP_W", owner="planner", replaced_by="the PV forecast in the plan (forecast/pv)"),
    V("SCHEDULE_POLL_INTERVAL", owner="executor", replaced_by="BATSCHED_DECISION_INTERVAL_S"),
    V("FUTURE_SCHEDULE_SLEEP", owner="executor", replaced_by="BATSCHED_DECISION_INTERVAL_S"),
    V("EXECUTOR_IDLE_SLEEP_SEC", owner="executor", replaced_by="BATSCHED_DECISION_INTERVAL_S"),
    V("EXECUTOR_RUNNING_STATUS_INTERVAL", owner="executor",
      replaced_by="the executor's heartbeat and one decision on executor/applied per decision"),
    V("GRACE_RETRY_INTERVAL", owner="executor", replaced_by="BATSCHED_RETRY_BACKOFF_S"),
    V("MAX_STUCK_SOC_CYCLES", owner="executor",
      replaced_by="the read-back of every command (BATSCHED_RETRY_BACKOFF_S)"),
    V("DECISION_LOGGING", owner="executor", replaced_by="the journal, which records every decision, always"),
    V("PURGE_DAYS", owner="executor", replaced_by="the journal, which keeps history (dashboard: "
      "BATSCHED_DASHBOARD_HISTORY_DAYS)"),
    V("MAX_RETRIES", owner="pricing", replaced_by="BATSCHED_HTTP_ATTEMPTS"),
    V("RETRY_INTERVAL_SEC", owner="pricing", replaced_by="BATSCHED_HTTP_BACKOFF_S"),
    V("AGILE_CACHE_FILE", owner="pricing",
      replaced_by="the pricing service's store (pricing.db in the data directory)"),
    V("SUNSET_HOUR", owner="forecast", replaced_by="the PV forecast from Open-Meteo"),
    V("MIN_SOLAR_EXPECTED_TODAY", owner="forecast", replaced_by="the PV forecast in the plan"),
    V("CLOUD_MAX", owner="forecast", replaced_by="the PV forecast from Open-Meteo (cloud is in its irradiance)"),
    V("OPENWEATHER_API_KEY", owner="forecast", replaced_by="Open-Meteo, which needs no key"),
    V("WEATHER_CACHE_FILE", owner="forecast", replaced_by="BATSCHED_OPENMETEO_CACHE"),
    V("WEATHER_CACHE_EXPIRY_HOURS", owner="forecast", replaced_by="WEATHER_CACHE_TTL / BATSCHED_OPENMETEO_CACHE_S"),
    V("FLASK_ENV", owner="dashboard",
      replaced_by="BATSCHED_DASHBOARD_PUBLIC_URL (an https:// URL makes the session cookie Secure)"),
)  # fmt: skip
BY_NAME = {v.name: v for v in SEED_VARIABLES}


@dataclass(frozen=True)
class Source:
    """Where a setting's value came from: ``default``, ``env`` (a ``BATSCHED_`` or other accepted name),
    ``secret_file``, or ``seed`` (the original app's name); ``name`` is the variable or file."""

    kind: str
    name: str = ""

    def __str__(self) -> str:
        if self.kind == "default":
            return "default"
        if self.kind == "secret_file":
            return f"secret file {self.name}"
        if self.kind == "seed":
            return f"seed {self.name}"
        return self.name


@dataclass
class Note:
    """A start-up line about a seed variable: ``level`` warning (replaced, conflicts, unsafe) or info (honoured)."""

    level: str
    variable: str
    text: str


@dataclass
class Resolution:
    """What ``resolve`` found for one settings class."""

    overrides: dict[str, Any] = field(default_factory=dict)  # init values that the seed names supply
    sources: dict[str, Source] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)  # e.g. "short_session_secret"


def env_names(cls: type[BaseSettings], name: str) -> list[str]:
    """Every environment name a field accepts, ``BATSCHED_<NAME>`` first (upper case)."""
    info = cls.model_fields[name]
    alias = info.validation_alias
    names = [str(c) for c in alias.choices] if isinstance(alias, AliasChoices) else []
    if not names:
        names = [f"{ENV_PREFIX}{name.upper()}"]
    out: list[str] = []
    for n in names:
        if n != name and n.upper() not in out:  # the bare lower-case name is the secret file's, not a variable
            out.append(n.upper())
    return out


def upper_keys(environ: Mapping[str, str]) -> dict[str, str]:
    return {k.upper(): v for k, v in environ.items()}


def _secret_file(secrets_dir: Path | None, name: str) -> str | None:
    if secrets_dir is None:
        return None
    path = secrets_dir / name
    try:
        return path.read_text().strip() if path.is_file() else None
    except OSError:
        return None


def _shown(value: Any, secret: bool) -> str:
    if secret:
        return "(secret)"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _same(a: Any, b: Any) -> bool:
    try:
        return abs(float(a) - float(b)) < 1e-9
    except (TypeError, ValueError):
        return str(a).strip().lower() == str(b).strip().lower()


def _pv_arrays(env: Mapping[str, str]) -> list[dict[str, Any]]:
    values = dict(SEED_PV)
    for name in SEED_PV:
        if name in env:
            values[name] = _number(env[name])
    scale = 1000.0 / values["PV_NOMINAL_IRRADIANCE"] if values["PV_NOMINAL_IRRADIANCE"] > 0 else 1.0
    kwp = values["PV_NUM_PANELS"] * values["PV_NOMINAL_WATTAGE"] / 1000.0 * scale
    return [
        {
            "name": "pv",
            "tilt": values["PV_TILT_ANGLE"],
            "azimuth": values["PV_AZIMUTH_ANGLE"],
            "kwp": round(kwp, 4),
            "inverter_kw": round(values["PV_NUM_PANELS"] * values["PV_SOTC_WATTAGE"] / 1000.0, 4),
            "efficiency": values["PV_DERATING_FACTOR"],
        }
    ]


def resolve(
    cls: type[BaseSettings], environ: Mapping[str, str], secrets_dir: Path | None, service: str = ""
) -> Resolution:
    """Sources and seed-supplied values for every field of ``cls``; ``service`` picks the replaced variables this
    service reports (their ``owner``)."""
    env = upper_keys(environ)
    fields = cls.model_fields
    res = Resolution()
    batsched: dict[str, tuple[Source, str]] = {}  # field -> (source, raw text) of its own name or secret file
    for name in fields:
        names = env_names(cls, name)
        own = next((n for n in names if n in env and n not in BY_NAME), None)
        if own is not None:
            batsched[name] = (Source("env", own), env[own])
        else:
            text = _secret_file(secrets_dir, name)
            if text is not None:
                batsched[name] = (Source("secret_file", name), text)
        res.sources[name] = batsched[name][0] if name in batsched else Source("default")

    for var in SEED_VARIABLES:
        if var.name not in env:
            continue
        raw = env[var.name]
        if not var.honoured:
            if var.owner == service:
                res.notes.append(
                    Note("warning", var.name, f"seed setting {var.name} is not used: replaced by {var.replaced_by}")
                )
            continue
        targets = [f for f in var.fields if f in fields]
        if not targets:
            continue
        try:
            value = _pv_arrays(env) if var.fields == ("pv_arrays",) else var.convert(raw)
        except ValueError as exc:
            res.errors.append(f"{var.name} (seed name of {_batsched_name(cls, targets[0])}) is invalid: {exc}")
            continue
        used = [_apply(cls, res, var, raw, target, value, batsched) for target in targets]
        if not any(used):
            continue
        for target, constant in var.extra.items():
            if target in fields and target not in batsched and target not in res.overrides:
                res.overrides[target] = constant
                res.sources[target] = Source("seed", var.name)
    return res


def _apply(
    cls: type[BaseSettings],
    res: Resolution,
    var: SeedVariable,
    raw: str,
    target: str,
    value: Any,
    batsched: dict[str, tuple[Source, str]],
) -> bool:
    """Set ``target`` from a seed value unless a batsched source has it; True when the seed value is used."""
    shown = _shown(value, var.secret)
    mine = _batsched_name(cls, target)
    if target in batsched:
        source, text = batsched[target]
        if target == "pv_arrays" or not _same(text, value):
            res.notes.append(
                Note(
                    "warning",
                    var.name,
                    f"conflict: {source} = {_shown(text, var.secret)} is used, not the seed's {var.name} = "
                    f"{_shown(raw.strip(), var.secret)} (as {mine}: {shown})",
                )
            )
        # Its own value, given explicitly: pydantic's alias order would otherwise prefer the seed's variable over
        # a secret file, and a seed name over an older accepted one.
        res.overrides[target] = text
        return False
    if target in res.overrides:  # a second seed name for the same setting (PORT after KEEP_ALIVE_PORT)
        earlier = res.sources[target].name
        if not _same(res.overrides[target], value):
            res.notes.append(Note("warning", var.name, f"seed setting {var.name} ({shown}) is not used: {earlier} is"))
        return False
    if target == "dashboard_session_secret" and len(str(value).encode()) < MIN_SESSION_SECRET_BYTES:
        res.flags.add("short_session_secret")
        res.notes.append(
            Note(
                "warning",
                var.name,
                f"seed setting {var.name} is {len(str(value).encode())} bytes, too short to sign sessions safely "
                f"(at least {MIN_SESSION_SECRET_BYTES}): a random secret kept in the data directory is used instead; "
                f"set {mine} (or its secret file) to choose one",
            )
        )
        return False
    if target == "authorized_emails" and not str(value).strip():
        res.notes.append(
            Note("warning", var.name, f"seed setting {var.name} is empty: the seed let every Google account in; "
                 "batsched lets nobody in until it lists who may")
        )  # fmt: skip
    res.overrides[target] = json.dumps(value) if target == "pv_arrays" else value
    res.sources[target] = Source("seed", var.name)
    res.notes.append(Note("info", var.name, f"seed setting {var.name} is used as {mine} = {shown}"))
    return True


def _batsched_name(cls: type[BaseSettings], name: str) -> str:
    return env_names(cls, name)[0]


def seed_names_of(field_name: str) -> list[str]:
    """The seed variables that set ``field_name`` (for error messages and the docs)."""
    return [v.name for v in SEED_VARIABLES if field_name in v.fields]
