"""The JSON bodies the Control page (and scripts) send to the dashboard's POST endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ModeIn(BaseModel):
    mode: str


class DryRunIn(BaseModel):
    enabled: bool


class OverrideIn(BaseModel):
    action: str | None = None  # None or "" cancels
    until: datetime | None = None
    until_day: str | None = None  # or a local day and 24-hour HH:MM on the system's clock (the Control page)
    until_hhmm: str | None = None
    target_soc_pct: float | None = Field(None, ge=0, le=100)


class WindowIn(BaseModel):
    start: datetime | None = None
    end: datetime | None = None
    start_day: str | None = None  # or local days and HH:MM (the Control page)
    start_hhmm: str | None = None
    end_day: str | None = None
    end_hhmm: str | None = None
    action: str = "charge"
    target_soc_pct: float | None = None


class WindowDeleteIn(BaseModel):
    window_id: int


class SettingIn(BaseModel):
    name: str
    value: str


class StatusIn(BaseModel):
    source: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.\-]+$")
    status: str = Field(min_length=1, max_length=40)
    detail: str = Field("", max_length=500)
