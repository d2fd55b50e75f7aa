"""Settings of the accounting job (env prefix ``BATSCHED_``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from shared.settings import ServiceSettings


class AccountingSettings(ServiceSettings):
    accounting_settle_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        300, description="Wait this long after local midnight (clock time) for late battery/state messages"
    )
    accounting_max_hold_s: Annotated[float, Field(gt=0, le=3600)] = Field(
        600, description="A battery/state sample's power holds at most this long (a longer silence is a gap)"
    )
    accounting_keep_days: Annotated[int, Field(ge=3, le=3660)] = Field(
        35, description="Keep raw samples, rates and plan slots this many days (summaries are kept for ever)"
    )
    accounting_money_interval_s: Annotated[float, Field(ge=10, le=3600)] = Field(
        300, description="Republish accounting/money (today so far) this often"
    )
    battery_capacity_kwh: Annotated[float, Field(gt=0)] = Field(
        13.5, description="Capacity for the self-use estimate when battery/state does not report one"
    )
    battery_reserve_pct: Annotated[float, Field(ge=0, le=100)] = Field(
        10.0, description="Self-use estimate: the reserve the battery keeps"
    )
