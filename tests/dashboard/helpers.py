"""Builders for dashboard tests: settings, an in-process app, bus messages around a given time, login."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from fastapi.testclient import TestClient

from services.dashboard.app import create_app
from services.dashboard.config import DashboardSettings
from services.dashboard.live import LiveState
from services.dashboard.store import Store
from shared.bus import Bus
from shared.clock import Clock, FixedClock
from shared.models import (
    SLOT,
    Action,
    AppliedDecision,
    BatteryState,
    EnergyForecast,
    ExecutorMode,
    Plan,
    PlanSlot,
    PowerwallConfig,
    Rate,
    RateSeries,
    Reason,
    RuleOutcome,
    SlotEnergy,
)
from shared.slots import slot_start
from tests.dashboard.fake_oidc import CLIENT_ID, CLIENT_SECRET, FakeOIDC

SECRET = "s" * 40


def settings(tmp_path: Path, provider: FakeOIDC | None = None, **over: Any) -> DashboardSettings:
    base: dict[str, Any] = {
        "dashboard_auth": "oidc",
        "dashboard_session_secret": SECRET,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_metadata_url": provider.metadata_url if provider else "http://127.0.0.1:9/none",
        "authorized_emails": "alice@example.org, Bob@Example.org",
        "dashboard_api_key": "k" * 32,
        "dashboard_command_timeout_s": 0.3,
        "data_dir": tmp_path / "data",
        "mqtt_port": 9,
    }
    base.update(over)
    return DashboardSettings(_secrets_dir=None, **base)


class InProcess:
    """The dashboard app without its process: a Bus (started only when a test wants it), state, store."""

    def __init__(
        self,
        s: DashboardSettings,
        clock: Clock | None = None,
        local_token: str | None = None,
        announce_link: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = s
        self.clock = clock or FixedClock(datetime(2024, 1, 15, 12, 0, tzinfo=UTC))
        self.bus = Bus(s, "dashboard")
        self.store = Store(s.data_dir / "dashboard.db")
        self.live = LiveState(self.bus.topics, self.clock, self.store)
        self.bus.listen(self.bus.topics.all, self.live.on_message)
        secret = s.dashboard_session_secret.get_secret_value() if s.dashboard_session_secret else SECRET
        self.app = create_app(s, self.live, self.store, self.bus, self.clock, local_token, secret, announce_link)

    def client(self, base_url: str = "http://testserver") -> TestClient:
        return TestClient(self.app, base_url=base_url, follow_redirects=False)


def login(client: TestClient, provider: FakeOIDC, user: dict[str, Any] | None = None) -> httpx.Response:
    """Run the OpenID Connect code flow through the fake provider; returns the callback's response."""
    if user is not None:
        provider.user = user
    start = client.get("/login")
    assert start.status_code == 302, start.text
    authorize = httpx.get(start.headers["location"], follow_redirects=False)
    assert authorize.status_code == 302, authorize.text
    back = urlparse(authorize.headers["location"])
    return client.get(f"{back.path}?{back.query}")


def csrf_of(client: TestClient) -> str:
    page = client.get("/control")
    assert page.status_code == 200
    marker = 'name="csrf-token" content="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


# ------------------------------------------------------------------ bus messages around ``now``


def rates(now: datetime, hours: int = 48, gen: datetime | None = None) -> RateSeries:
    first = slot_start(now) - SLOT
    items = []
    for i in range(hours * 2):
        start = first + i * SLOT
        price = 0.05 + 0.25 * ((start.hour + 6) % 24) / 24
        items.append(Rate(start=start, end=start + SLOT, value_inc_vat=round(price, 4)))
    return RateSeries(
        generated_at=gen or now, valid_until=items[-1].end, tariff_code="E-1R-AGILE-24-10-01-J", rates=items
    )


def forecast(now: datetime, kind: str, hours: int = 48) -> EnergyForecast:
    first = slot_start(now)
    slots = []
    for i in range(hours * 2):
        start = first + i * SLOT
        energy = max(0.0, 1.2 - abs(start.hour - 12) * 0.2) if kind == "pv" else 0.25 + 0.2 * (17 <= start.hour < 21)
        slots.append(SlotEnergy(start=start, end=start + SLOT, energy_kwh=round(energy, 3)))
    return EnergyForecast(
        generated_at=now, valid_until=now + timedelta(hours=6), kind=kind, source="test", model="t", slots=slots
    )


def plan(now: datetime, hours: int = 36, charge_hours: tuple[int, ...] = (2, 3, 4)) -> Plan:
    series = rates(now, hours)
    slots = []
    soc = 40.0
    for r in series.rates[1:]:
        charge = r.start.hour in charge_hours
        soc = min(100.0, soc + 8) if charge else max(10.0, soc - 2)
        slots.append(
            PlanSlot(
                start=r.start,
                end=r.end,
                action=Action.CHARGE if charge else Action.SELF_USE,
                reason=Reason.CHEAPEST_NEEDED if charge else Reason.SELF_USE,
                reason_detail="one of the 6 cheapest slots before the peak" if charge else None,
                target_soc_pct=90.0 if charge else None,
                expected_soc_pct=soc,
                value_inc_vat=r.value_inc_vat,
                pv_kwh=0.3,
                load_kwh=0.4,
            )
        )
    return Plan(
        generated_at=now,
        valid_until=now + timedelta(hours=2),
        plan_id="plan-test-1",
        slots=slots,
        expected_cost_gbp=1.23,
        baseline_costs_gbp={"no_battery": 3.21, "seed_rule": 1.87},
    )


def battery(now: datetime, soc: float) -> BatteryState:
    return BatteryState(
        generated_at=now,
        observed_at=now,
        valid_until=now + timedelta(minutes=5),
        soc_pct=soc,
        capacity_kwh=13.5,
        battery_power_w=-2500.0,
        grid_power_w=3100.0,
        solar_power_w=150.0,
        load_power_w=750.0,
        grid_status="on_grid",
    )


def decision(now: datetime, decision_id: str = "d-1") -> AppliedDecision:
    cfg = PowerwallConfig(operational_mode="backup", backup_reserve_pct=80, grid_charging=True)
    return AppliedDecision(
        generated_at=now,
        decision_id=decision_id,
        plan_id="plan-test-1",
        slot_start=slot_start(now),
        mode=ExecutorMode.AUTO,
        dry_run=False,
        requested_action=Action.CHARGE,
        action=Action.CHARGE,
        rules=[RuleOutcome(rule="peak_window", verdict="pass")],
        desired=cfg,
        sent=cfg,
        observed=PowerwallConfig(operational_mode="backup", backup_reserve_pct=80, grid_charging=False),
        outcome="mismatch",
        soc_pct=55.0,
    )
