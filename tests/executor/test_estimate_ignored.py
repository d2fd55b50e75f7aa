"""The price estimate is never a price for the executor: it does not charge on it even when it can read it, and the
project's broker does not let it read it at all."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from shared.models import EstimateSlot, PriceEstimate, Rate, RateSeries
from shared.slots import SLOT
from shared.topics import Topics
from tests.deploy.project_broker import ProjectBroker, User
from tests.executor.support import make_plan, utc, wait_until
from tests.executor.test_service import World
from tests.support.probe import Probe

T = Topics()


def cheap_estimate(start, now, n: int = 96) -> PriceEstimate:
    slots = [EstimateSlot(start=t, end=t + SLOT, median_gbp=0.01, low_gbp=0.0, high_gbp=0.02)
             for t in (start + k * SLOT for k in range(n))]  # fmt: skip
    return PriceEstimate(
        generated_at=now,
        valid_until=start + n * SLOT,
        tariff_code="E-1R-AGILE-TEST-J",
        method="test",
        learned_from="test",
        published_until=start,
        slots=slots,
        scenarios_gbp=[[0.01] * n],
    )


def test_the_executor_does_not_charge_on_an_estimate(probe: Probe, spawn) -> None:
    """A plan asks to charge now; Octopus has published no price for now, only for the hours before; the estimate
    says 1p. The price rule must block the charge as 'price unknown' and the Powerwall never grid-charges."""
    start = utc(2024, 1, 15, 1, 0)  # 01:00 GMT, far from the peak
    world = World(start, 60.0, apply_delay_s=0)
    try:
        past = [Rate(start=start - k * SLOT, end=start - (k - 1) * SLOT, value_inc_vat=0.05) for k in range(8, 0, -1)]
        rates = RateSeries(generated_at=start, valid_until=start, tariff_code="E-1R-AGILE-TEST-J", rates=past)
        plan = make_plan(start, start, 3, charge=[start, start + SLOT, start + 2 * SLOT])
        probe.publish(T.import_rates, rates.model_dump_json(), retain=True)
        probe.publish(T.import_estimate, cheap_estimate(start, start).model_dump_json(), retain=True)
        probe.publish(T.plan, plan.model_dump_json(), retain=True)
        spawn("services.executor", env=world.env(), name="executor")
        decided = probe.wait_json(T.executor_applied, lambda d: d["requested_action"] == "charge", timeout=30)
        verdict = {r["rule"]: r for r in decided["rules"]}["price_limit"]
        assert verdict["verdict"] == "blocked" and "price for now unknown" in verdict["detail"]
        assert decided["action"] != "charge"
        # a few more decisions on the simulated clock: still never grid charging
        wait_until(lambda: len(probe.on(T.executor_applied)) >= 3, 30, "three decisions")
        assert all(a.json()["action"] != "charge" for a in probe.on(T.executor_applied))
        assert not world.config()["grid_charging"]
        assert sum(s["grid_charge_w"] for s in world.sim.log()["samples"]) == 0
    finally:
        world.sim.stop()


@pytest.fixture(scope="module")
def project_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProjectBroker]:
    b = ProjectBroker(tmp_path_factory.mktemp("estimate-acl")).start()
    yield b
    b.stop()


def test_the_broker_does_not_let_the_executor_read_the_estimate(project_broker: ProjectBroker, tmp_path: Path) -> None:
    pw = project_broker.passwords
    executor = Probe(
        project_broker.port, subscribe=f"{T.prefix}/pricing/#", username="executor", password=pw["executor"]
    )
    planner = Probe(project_broker.port, subscribe=f"{T.prefix}/pricing/#", username="planner", password=pw["planner"])
    pricing = User(project_broker.port, "pricing", pw["pricing"])
    executor.start(), planner.start()
    try:
        assert pricing.connect() == 0
        now = utc(2024, 1, 15, 1, 0)
        assert pricing.publish(T.import_estimate, cheap_estimate(now + timedelta(hours=22), now).model_dump_json()) == 0
        assert pricing.publish(T.import_current, "sentinel") == 0  # after the estimate, from the same connection
        planner.wait_for(T.import_estimate, timeout=10)  # the planner may read it
        executor.wait_for(T.import_current, lambda m: m.text == "sentinel", timeout=10)
        assert executor.on(T.import_estimate) == []  # delivered in order: it would have come first
    finally:
        pricing.close()
        executor.stop()
        planner.stop()
