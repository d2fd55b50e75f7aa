"""Executor and watchdog settings (env prefix ``BATSCHED_``; the seed app's NetZero variable names are accepted)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator

from shared.settings import SafetySettings, ServiceSettings, env


class NetZeroSettings(ServiceSettings):
    """What both the executor and its watchdog need to reach NetZero."""

    netzero_base_url: str = Field(
        "https://api.netzero.energy/api/v1", validation_alias=env("netzero_base_url"), description="NetZero API base"
    )
    netzero_api_key: SecretStr | None = Field(
        None,
        validation_alias=env("netzero_api_key", "NETZERO_API_KEY", "API_TOKEN"),
        description="NetZero API token (secret file `netzero_api_key`)",
    )
    netzero_site_id: str | None = Field(
        None, validation_alias=env("netzero_site_id", "NETZERO_SITE_ID", "SITE_ID"), description="Energy site id"
    )
    netzero_timeout_s: Annotated[float, Field(gt=0, le=30)] = Field(10.0, description="HTTP timeout per request")
    netzero_max_per_minute: Annotated[int, Field(ge=1, le=5)] = Field(
        4, description="Requests per minute this process may make (the API allows 5 per account)"
    )
    baseline_mode: Literal["autonomous", "self_consumption"] | None = Field(
        None, description="Override the captured baseline's operational mode"
    )
    baseline_reserve_pct: Annotated[int, Field(ge=0, le=100)] | None = Field(
        None, description="Override the captured baseline's backup reserve"
    )
    baseline_accept_nearest_reserve: bool = Field(
        False,
        description="Your own backup reserve is 81-99 % (NetZero stores those as 80 %): charge and hold anyway and "
        "hand back 80 %. Off: nothing is forced and an alert says why",
    )

    @field_validator("netzero_base_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.rstrip("/")


class ExecutorSettings(NetZeroSettings, SafetySettings):
    decision_interval_s: Annotated[float, Field(ge=1, le=900)] = Field(60.0, description="Seconds between decisions")
    dry_run: bool = Field(False, description="Initial dry-run state when the journal has none (decide, never write)")
    peak_lead_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        300.0, description="Stop grid-charging this long before the peak (covers the gateway's apply delay)"
    )
    min_target_soc_pct: Annotated[float, Field(ge=0, le=100)] = Field(10.0, description="Lowest charge target")
    max_target_soc_pct: Annotated[float, Field(ge=0, le=100)] = Field(100.0, description="Highest charge target")
    charge_method: Literal["backup", "reserve"] = Field(
        "backup",
        description="backup = backup mode + grid charging (~3.3 kW); reserve = self-consumption with a raised reserve",
    )
    battery_max_age_s: Annotated[float, Field(ge=30, le=3600)] = Field(
        180.0, description="Battery state older than this is stale: restore the baseline"
    )
    max_clock_skew_s: Annotated[float, Field(ge=5, le=3600)] = Field(
        60.0, description="No charge or hold while this host's clock and NetZero's (HTTP Date) differ by more"
    )
    lease_margin_s: Annotated[float, Field(ge=0, le=1800)] = Field(
        120.0, description="A forced state's lease runs to its slot's end plus this (never past the plan)"
    )
    manual_lease_s: Annotated[float, Field(ge=60, le=86400)] = Field(
        7200.0, description="A manual force_charge/hold mode reverts to auto after this"
    )
    retry_backoff_s: Annotated[float, Field(ge=10, le=3600)] = Field(
        120.0, description="First wait before re-sending a command whose read-back did not match (doubles)"
    )
    retry_backoff_max_s: Annotated[float, Field(ge=10, le=7200)] = Field(1800.0, description="Longest retry wait")
    restore_wait_s: Annotated[float, Field(ge=0, le=120)] = Field(
        20.0, description="On SIGTERM, how long to wait for a request token before using the API's spare request"
    )


class WatchdogSettings(NetZeroSettings):
    watchdog_timeout_s: Annotated[float, Field(ge=10, le=3600)] = Field(
        180.0, description="Restore the baseline when no executor heartbeat came for this long and a state is forced"
    )
    watchdog_check_s: Annotated[float, Field(ge=1, le=600)] = Field(15.0, description="Seconds between checks")
