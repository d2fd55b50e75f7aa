"""The pricing service's parts without a broker or HTTP: fetching against a stub Octopus client and a real store,
publishing on the in-memory bus, the alert's rules. (The whole service runs on Mosquitto in ``test_service``.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import CapturingLogger

from services.pricing.alerts import Alerts
from services.pricing.config import PricingSettings
from services.pricing.fetching import Fetcher, Problem
from services.pricing.octopus import OctopusError
from services.pricing.publishing import Publisher
from services.pricing.schedule import Timetable
from services.pricing.store import RateStore
from shared.models import CurrentRate, PricingAlert, RateSeries
from shared.slots import LONDON
from shared.topics import IMPORT_CURRENT, IMPORT_RATES
from tests.support.memory_bus import MemoryBus

NOW = datetime(2023, 6, 12, 10, 0, tzinfo=UTC)


def rows(start: datetime, prices_p: list[float | None]) -> list[dict[str, Any]]:
    out = []
    for k, p in enumerate(prices_p):
        if p is not None:
            t = start + timedelta(minutes=30 * k)
            out.append(
                {
                    "valid_from": f"{t:%Y-%m-%dT%H:%M}Z",
                    "valid_to": f"{t + timedelta(minutes=30):%Y-%m-%dT%H:%M}Z",
                    "value_inc_vat": p,
                }
            )
    return out


class StubOctopus:
    def __init__(self) -> None:
        self.answer: list[dict[str, Any]] | Exception = []
        self.calls = 0

    def unit_rates(self, product: str, tariff: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        self.calls += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Fetcher, Publisher, MemoryBus, StubOctopus, CapturingLogger]:
    settings = PricingSettings(_secrets_dir=None, data_dir=tmp_path, octopus_region="J")
    logs = CapturingLogger()
    log = structlog.wrap_logger(logs, processors=[])
    bus = MemoryBus(settings, "pricing")
    bus.start()
    store = RateStore(tmp_path / "pricing.db")

    def window(now: datetime) -> tuple[datetime, datetime]:
        return now.replace(hour=0), now.replace(hour=0) + timedelta(days=2)

    publisher = Publisher(settings, bus, store, lambda: NOW, window, log)
    client = StubOctopus()
    fetcher = Fetcher(settings, client, store, window, publisher.publish_series, log)  # type: ignore[arg-type]
    return fetcher, publisher, bus, client, logs


def test_a_good_batch_is_stored_and_published_and_a_gap_is_never_a_price(parts) -> None:
    fetcher, publisher, bus, client, _ = parts
    client.answer = rows(NOW, [10.5, None, 30.0])
    assert fetcher.fetch_all(NOW).errors == []
    series = RateSeries.model_validate_json(bus.last(IMPORT_RATES).payload)
    assert [r.value_inc_vat for r in series.rates] == [0.105, 0.30]
    assert series.source == "octopus" and series.valid_until == NOW + timedelta(minutes=90)
    publisher.publish_current()
    now = CurrentRate.model_validate_json(bus.last(IMPORT_CURRENT).payload)
    assert now.known and now.value_inc_vat == 0.105
    assert publisher.current_rate(NOW + timedelta(minutes=30)).known is False  # the gap: unknown, not 0


@pytest.mark.parametrize(
    ("answer", "code", "event"),
    [
        (OctopusError("HTTP 500 from Octopus"), "fetch_failing", "fetch failed; keeping the last good prices"),
        (rows(NOW, [10.0, 5000.0]), "validation_failed", "batch rejected; keeping the last good prices"),
    ],
)
def test_a_failed_fetch_publishes_nothing_new_and_names_the_problem(parts, answer, code: str, event: str) -> None:
    fetcher, _, bus, client, logs = parts
    client.answer = rows(NOW, [10.0, 11.0])
    fetcher.fetch_all(NOW)
    good = bus.last(IMPORT_RATES)
    client.answer = answer
    outcome = fetcher.fetch_all(NOW)
    assert outcome.problem is not None and outcome.problem.code == code and outcome.errors
    assert bus.last(IMPORT_RATES) == good  # the last good prices stay
    assert any(c.kwargs.get("event") == event for c in logs.calls)


def test_stored_prices_are_republished_as_they_were(parts, tmp_path: Path) -> None:
    fetcher, publisher, bus, client, _ = parts
    client.answer = rows(NOW, [10.0, 12.0])
    fetcher.fetch_all(NOW - timedelta(hours=1))
    publisher.series.clear()
    publisher.from_store(["import"])
    series = RateSeries.model_validate_json(bus.last(IMPORT_RATES).payload)
    assert series.source == "store" and series.fetched_at == NOW - timedelta(hours=1)
    sent = len(bus.sent)
    publisher.republish()  # after a reconnect
    assert [m.topic for m in bus.sent[sent:]] == [bus.topics.import_rates]


def test_the_alert_names_the_problem_keeps_its_start_and_resolves() -> None:
    published: list[PricingAlert] = []
    logs = CapturingLogger()
    alerts = Alerts(Timetable(tz=LONDON), published.append, structlog.wrap_logger(logs, processors=[]))
    covered = datetime(2023, 6, 12, 22, 0, tzinfo=UTC)  # 23:00 BST today: all of today, nothing of tomorrow
    alerts.update(NOW, covered, Problem("fetch_failing", "HTTP 500"), attempted=False)
    assert published == []  # nothing before the first fetch
    alerts.update(NOW, covered, Problem("fetch_failing", "HTTP 500"), attempted=True)
    alerts.update(NOW + timedelta(minutes=5), covered, Problem("fetch_failing", "HTTP 500"), attempted=True)
    alerts.update(NOW + timedelta(minutes=10), covered, None, attempted=True)
    assert [(a.code, a.since) for a in published] == [("fetch_failing", NOW), ("ok", NOW + timedelta(minutes=10))]
    late = NOW.replace(hour=19, minute=30)  # 20:30 BST without tomorrow's prices
    alerts.update(late, covered, None, attempted=True)
    assert published[-1].code == "prices_late" and "tomorrow's prices are not published yet" in published[-1].message
    assert [c.kwargs["event"] for c in logs.calls] == ["pricing alert", "pricing alert resolved", "pricing alert"]
