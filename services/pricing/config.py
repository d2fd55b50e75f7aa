"""Pricing settings (env ``BATSCHED_…``; the seed app's ``OCTOPUS_API_KEY`` is accepted too)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator

from shared.settings import ServiceSettings, env

_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class PricingSettings(ServiceSettings):
    octopus_base_url: str = Field(
        "https://api.octopus.energy", validation_alias=env("octopus_base_url"), description="Octopus API base URL"
    )
    octopus_product: str = Field(
        "AGILE-24-10-01",
        validation_alias=env("octopus_product", "OCTOPUS_PRODUCT"),
        description="Import product code: Agile (AGILE-…), Go (GO-VAR-…), Intelligent Octopus Go (INTELLI-VAR-…), "
        'Flux (FLUX-IMPORT-…), Cosy (COSY-…), Tracker (SILVER-…) or a fixed one; "auto": the account\'s tariff '
        "(with account number and API key), else the current Agile product",
    )
    octopus_region: str = Field(
        "H", validation_alias=env("octopus_region", "OCTOPUS_REGION"), description="Region letter A–P (not I, O)"
    )
    octopus_export_product: str | None = Field(
        None,
        validation_alias=env("octopus_export_product"),
        description='Export product (AGILE-OUTGOING-…, FLUX-EXPORT-…, OUTGOING-FIX-…, or "auto"); unset = none',
    )
    octopus_api_key: SecretStr | None = Field(
        None,
        validation_alias=env("octopus_api_key", "OCTOPUS_API_KEY"),
        description="API key (only for discovery from the account; prices need none)",
    )
    octopus_account: str | None = Field(
        None,
        validation_alias=env("octopus_account", "OCTOPUS_ACCOUNT_NUMBER"),
        description="Account number (A-…) for tariff discovery",
    )
    octopus_mpan: str | None = Field(
        None, description="Import MPAN for free-electricity sessions (default: found from the account)"
    )
    octopus_graphql_url: str | None = Field(
        None, description="Octopus GraphQL endpoint for Saving Sessions (default: <base URL>/v1/graphql/)"
    )
    sessions_refresh_s: Annotated[float, Field(ge=60, le=86400)] = Field(
        1800.0, description="How often to read Saving Sessions and free-electricity sessions (needs account + API key)"
    )
    dispatch_refresh_s: Annotated[float, Field(ge=60, le=3600)] = Field(
        300.0, description="How often to read Intelligent Octopus Go's smart-charge dispatches (account + API key)"
    )
    octopoints_per_gbp: Annotated[float, Field(gt=0)] = Field(
        800.0, description="OctoPoints worth £1 (values a Saving Session's reward)"
    )
    http_timeout_s: Annotated[float, Field(gt=0, le=60)] = Field(10.0, description="Timeout of each HTTP call")
    http_attempts: Annotated[int, Field(ge=1, le=10)] = Field(3, description="Tries per call on 5xx/timeouts")
    http_backoff_s: Annotated[float, Field(ge=0, le=60)] = Field(1.0, description="First retry delay (doubles)")
    history_days: Annotated[int, Field(ge=0, le=38)] = Field(
        0, description="Days before today to fetch and publish (0 = from the start of today; 38 fits a message)"
    )
    refresh_interval_s: Annotated[float, Field(ge=10)] = Field(3600, description="Refresh when nothing is due")
    price_refresh_cooldown_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        60.0, description="A refresh command sooner than this after the last one is refused (spares the Octopus API)"
    )
    poll_from_local: str = Field("16:00", pattern=_HHMM, description="Start polling for tomorrow's prices")
    poll_interval_s: Annotated[float, Field(ge=1)] = Field(300, description="First poll interval for tomorrow")
    poll_max_interval_s: Annotated[float, Field(ge=1)] = Field(1800, description="Poll/failure backoff ceiling")
    late_after_local: str = Field("20:00", pattern=_HHMM, description="Alert prices_late after this local time")
    price_min_gbp: float = Field(-0.5, description="Reject a batch with any price below this (GBP/kWh)")
    price_max_gbp: float = Field(1.0, description="Reject a batch with any price above this (the 100p cap)")
    price_estimate_hours: Annotated[int, Field(ge=0, le=96)] = Field(
        48, description="Hours after the published prices the price estimate covers (0 = no estimate; else 24-96)"
    )
    agilepredict_url: str | None = Field(
        None,
        description='AgilePredict base URL (e.g. "https://agilepredict.com") to re-centre the estimate; unset = off',
    )
    agilepredict_refresh_s: Annotated[float, Field(ge=60)] = Field(3600, description="How often to ask AgilePredict")
    agilepredict_max_age_h: Annotated[float, Field(gt=0, le=168)] = Field(
        24, description="An AgilePredict forecast older than this is late and not used"
    )

    @field_validator("octopus_region")
    @classmethod
    def _region(cls, value: str) -> str:
        value = value.strip().upper().lstrip("_")
        if len(value) != 1 or value not in "ABCDEFGHJKLMNP":
            raise ValueError("a region letter A–P without I and O")
        return value

    @field_validator("price_estimate_hours")
    @classmethod
    def _estimate_hours(cls, value: int) -> int:
        if 0 < value < 24:
            raise ValueError("0 (no estimate) or 24-96 hours")
        return value

    @field_validator("octopus_base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def graphql_url(self) -> str:
        return self.octopus_graphql_url or f"{self.octopus_base_url}/v1/graphql/"
