"""Settings with pydantic-settings: env prefix ``BATSCHED_``, secrets from files, the seed app's names accepted.

Each service subclasses ``ServiceSettings`` in ``services/<name>/config.py``. ``load_settings`` turns a wrong or
missing setting into one clear line naming it and exits with status 2, so the container's restart policy (not a
traceback) tells the user what to fix. The seed app's variables (``shared/seed_settings.py``) are read with
their own units; what was made of them is kept on the settings (``seed_resolution``) for the start-up log and
``batsched config``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from shared.models import PlannerSettings
from shared.peak import PeakWindow
from shared.seed_settings import Resolution, SeedSettingError, resolve, seed_names_of

ENV_PREFIX = "BATSCHED_"
DEFAULT_SECRETS_DIR = "/run/secrets"
SECRETS_DIR_ENV = "BATSCHED_SECRETS_DIR"
_PLANNER_DEFAULTS = PlannerSettings()  # the defaults of the safety values (SafetySettings)


def env(name: str, *aliases: str) -> AliasChoices:
    """Accept ``BATSCHED_<NAME>`` first, then ``<name>`` (also the secret file's name), then legacy names.

    Every secret field uses this, so that Compose secrets are files named after the setting (``mqtt_password``)."""
    return AliasChoices(f"{ENV_PREFIX}{name.upper()}", name, *aliases)


_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("batsched_settings_environ", default=None)


class _MappingEnvSource(EnvSettingsSource):
    """The environment source reading a given mapping (an env file for ``batsched config --env``)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


@contextmanager
def _reading(environ: Mapping[str, str] | None) -> Iterator[None]:
    token = _ENVIRON.set(environ)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


class ServiceSettings(BaseSettings):
    """Settings every service has: the broker, the topic prefix, time, logging, storage."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",
        populate_by_name=True,
        secrets_dir=None,  # set per call by load_settings (a missing dir must not be an error)
    )

    mqtt_host: str = Field("127.0.0.1", description="MQTT broker host")
    mqtt_port: Annotated[int, Field(ge=1, le=65535)] = Field(1883, description="MQTT broker port")
    mqtt_username: str | None = Field(None, description="MQTT user name (one per service with the project's ACL)")
    mqtt_password: SecretStr | None = Field(
        None, validation_alias=env("mqtt_password"), description="MQTT password (secret file `mqtt_password`)"
    )
    mqtt_tls: bool = Field(False, description="Use TLS to the broker")
    mqtt_ca_file: Path | None = Field(None, description="CA bundle for TLS (system CAs when unset)")
    mqtt_protocol: Literal["5", "3.1.1"] = Field("5", description="MQTT protocol version")
    mqtt_prefix: str = Field("batsched", description="Topic prefix, e.g. batsched/site-0042 for a fleet")
    mqtt_keepalive_s: Annotated[int, Field(ge=5, le=3600)] = Field(30, description="MQTT keepalive (s)")
    mqtt_inbox_max: Annotated[int, Field(ge=100, le=1_000_000)] = Field(
        10_000, description="Messages queued for the handlers; more are dropped and counted on <service>/health"
    )
    ha_discovery: bool = Field(True, description="Publish Home Assistant discovery")
    ha_discovery_prefix: str = Field("homeassistant", description="Home Assistant discovery prefix")
    ha_discovery_retain: bool = Field(False, description="Retain discovery messages (default: republish on HA birth)")
    timezone: str = Field("Europe/London", description="Local time zone for days, the peak window and display")
    data_dir: Path = Field(Path("data"), description="Where SQLite stores live")
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level")
    log_format: Literal["auto", "json", "console"] = Field("auto", description="json when not on a terminal")
    clock: Literal["real", "sim"] = Field("real", description="real, or sim for the demo's fast clock")
    sim_start: datetime | None = Field(None, description="Simulated clock: start instant (aware ISO time)")
    sim_speed: Annotated[float, Field(gt=0)] = Field(60.0, description="Simulated clock: speed-up factor")
    sim_origin: float | None = Field(None, description="Simulated clock: real UNIX time of sim_start")
    sim_origin_file: Path | None = Field(
        None,
        description="Simulated clock without sim_origin: a file shared by every process, holding the first one's start",
    )

    _seed: Resolution = PrivateAttr(default_factory=Resolution)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _ENVIRON.get()
        if environ is not None:
            env_settings = _MappingEnvSource(settings_cls, environ)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @property
    def seed_resolution(self) -> Resolution:
        """Where each setting came from and what the seed's variables became (see ``shared/seed_settings.py``)."""
        return self._seed

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_any_case(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip().lower()
            return {"warn": "warning", "critical": "error", "fatal": "error"}.get(text, text)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("sim_origin", mode="before")
    @classmethod
    def _unset_origin(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value  # Compose's ${BATSCHED_SIM_ORIGIN:-}

    @field_validator("sim_start")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2024-01-15T00:00:00Z")
        return value.astimezone(UTC) if value else None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class SafetySettings(ServiceSettings):
    """The safety values the planner and the executor share, from one place (one environment variable each, or the
    original app's name: ``MAX_AGILE_PRICE_PPK``, ``PEAK_START_HOUR``, ``PEAK_END_HOUR``; ``shared/seed_settings.py``).
    Their defaults are the planner's (``PlannerSettings``).

    The planner starts from them (a person may then change its copy on the bus: ``planner/<setting>/set``; a value
    the environment changes is applied again at the next start); the executor enforces them on its own, and also
    the stricter of its own, the planner's and the plan's."""

    peak_start_local: str = Field(
        _PLANNER_DEFAULTS.peak_start_local, description="Local start of the no-grid-charging peak window"
    )
    peak_end_local: str = Field(_PLANNER_DEFAULTS.peak_end_local, description="Local end of the peak window")
    max_charge_price_gbp: Annotated[float, Field(ge=-1, le=2)] = Field(
        _PLANNER_DEFAULTS.max_charge_price_gbp,
        description="Never grid-charge above this price (GBP/kWh inc VAT); the planner's lower limit also holds",
    )

    @field_validator("peak_start_local", "peak_end_local")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        try:
            return f"{time.fromisoformat(value.strip().zfill(5)):%H:%M}"
        except ValueError:
            raise ValueError(f"expected a local time HH:MM, got {value!r}") from None

    @property
    def peak(self) -> PeakWindow:
        """The peak window these settings give, in the local time zone (``shared.peak``)."""
        return PeakWindow.parse(self.peak_start_local, self.peak_end_local, self.tz)

    def given(self, names: tuple[str, ...]) -> dict[str, Any]:
        """The values among ``names`` that the environment gave (its own name, a seed name or a secret file), not
        the defaults."""
        return {n: getattr(self, n) for n in names if n in self.model_fields_set}


S = TypeVar("S", bound=ServiceSettings)


def _setting_name(cls: type[BaseSettings], loc: tuple[Any, ...]) -> str:
    """The environment variable(s) a user sets for the field at ``loc``."""
    key = str(loc[0]) if loc else "?"
    for field, info in cls.model_fields.items():
        if isinstance(info.validation_alias, AliasChoices):
            names = [str(c) for c in info.validation_alias.choices]
            if key == field or key in names:
                legacy: list[str] = []
                for n in names[1:]:
                    if n.upper() not in {x.upper() for x in (names[0], *legacy)}:
                        legacy.append(n)
                return names[0] + (f" (or {', '.join(legacy)})" if legacy else "")
    return key.upper() if key.upper().startswith(ENV_PREFIX) else f"{ENV_PREFIX}{key.upper()}"


def describe_error(cls: type[BaseSettings], exc: ValidationError, resolution: Resolution | None = None) -> str:
    parts = []
    for err in exc.errors():
        what = "is required but not set" if err["type"] == "missing" else f"is invalid: {err['msg']}"
        loc = tuple(err["loc"])
        name = _setting_name(cls, loc)
        source = resolution.sources.get(str(loc[0])) if resolution is not None and loc else None
        if source is not None and source.kind == "seed":
            name = f"{source.name} (seed name of {name.split(' ')[0]})"
        elif err["type"] == "missing" and loc and (seeds := seed_names_of(str(loc[0]))):
            name = f"{name.split(' (')[0]} (or the seed's {', '.join(seeds)})"
        parts.append(f"{name} {what}")
    return "; ".join(parts)


def secrets_dir(environ: Mapping[str, str] | None = None) -> Path | None:
    configured = (os.environ if environ is None else environ).get(SECRETS_DIR_ENV, DEFAULT_SECRETS_DIR)
    path = Path(configured)
    return path if path.is_dir() else None


def build_settings(cls: type[S], environ: Mapping[str, str] | None = None, service: str = "", **overrides: Any) -> S:
    """Read settings from the environment (or ``environ``, e.g. an env file) and the secrets directory, with the
    seed's variable names; raises ``ValidationError`` or ``SeedSettingError`` (a seed value that cannot be
    converted)."""
    source = os.environ if environ is None else environ
    folder = secrets_dir(source)
    resolution = resolve(cls, source, folder, service)
    if resolution.errors:
        raise SeedSettingError("; ".join(resolution.errors))
    with _reading(None if environ is None else environ):
        try:
            settings = cls(_secrets_dir=folder, **{**resolution.overrides, **overrides})
        except ValidationError as exc:
            exc.__dict__["batsched_resolution"] = resolution  # for describe_error: name the seed variable
            raise
    settings._seed = resolution
    return settings


def load_settings(cls: type[S], service: str, **overrides: Any) -> S:
    """Like ``build_settings`` but a bad configuration ends the process with one line naming the setting."""
    try:
        return build_settings(cls, service=service, **overrides)
    except SeedSettingError as exc:
        print(f"batsched-{service}: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except ValidationError as exc:
        why = describe_error(cls, exc, exc.__dict__.get("batsched_resolution"))
        print(f"batsched-{service}: configuration error: {why}", file=sys.stderr)
        raise SystemExit(2) from None


def log_seed_notes(log: Any, settings: ServiceSettings) -> None:
    """The start-up lines about the seed's variables: a warning for each one replaced or overruled, an info line
    for each one honoured."""
    for note in settings.seed_resolution.notes:
        (log.warning if note.level == "warning" else log.info)(note.text, seed_variable=note.variable)
