"""Settings with pydantic-settings: env prefix ``BATSCHED_``, secrets from files, the seed app's names accepted.

Each service subclasses ``ServiceSettings`` in ``services/<name>/config.py``. ``load_settings`` turns a wrong or
missing setting into one clear line naming it and exits with status 2, so the container's restart policy (not a
traceback) tells the user what to fix.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "BATSCHED_"
DEFAULT_SECRETS_DIR = "/run/secrets"
SECRETS_DIR_ENV = "BATSCHED_SECRETS_DIR"


def env(name: str, *aliases: str) -> AliasChoices:
    """Accept ``BATSCHED_<NAME>`` first, then ``<name>`` (also the secret file's name), then legacy names.

    Every secret field uses this, so that Compose secrets are files named after the setting (``mqtt_password``)."""
    return AliasChoices(f"{ENV_PREFIX}{name.upper()}", name, *aliases)


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

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

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
    """The safety values the planner and the executor share, from one place (one environment variable each).

    The planner starts from them (a person may then change its copy on the bus: ``planner/<setting>/set``); the
    executor enforces them on its own, and also the stricter of its own and the plan's."""

    peak_start_local: str = Field("16:00", description="Local start of the no-grid-charging peak window")
    peak_end_local: str = Field("19:00", description="Local end of the peak window")
    max_charge_price_gbp: Annotated[float, Field(ge=-1, le=2)] = Field(
        0.20, description="Never grid-charge above this price (GBP/kWh inc VAT); the planner's lower limit also holds"
    )

    @field_validator("peak_start_local", "peak_end_local")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        try:
            return f"{time.fromisoformat(value.strip().zfill(5)):%H:%M}"
        except ValueError:
            raise ValueError(f"expected a local time HH:MM, got {value!r}") from None


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


def describe_error(cls: type[BaseSettings], exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        what = "is required but not set" if err["type"] == "missing" else f"is invalid: {err['msg']}"
        parts.append(f"{_setting_name(cls, tuple(err['loc']))} {what}")
    return "; ".join(parts)


def secrets_dir() -> Path | None:
    configured = os.environ.get(SECRETS_DIR_ENV, DEFAULT_SECRETS_DIR)
    path = Path(configured)
    return path if path.is_dir() else None


def build_settings(cls: type[S], **overrides: Any) -> S:
    """Read settings from the environment and the secrets directory; raises ``ValidationError``."""
    return cls(_secrets_dir=secrets_dir(), **overrides)


def load_settings(cls: type[S], service: str, **overrides: Any) -> S:
    """Like ``build_settings`` but a bad configuration ends the process with one line naming the setting."""
    try:
        return build_settings(cls, **overrides)
    except ValidationError as exc:
        print(f"batsched-{service}: configuration error: {describe_error(cls, exc)}", file=sys.stderr)
        raise SystemExit(2) from None
