"""The original app's decisions, imported into the journal, on the dashboard's History page and in its CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.executor.journal import Journal
from services.executor.seed_import import import_seed, publish_imported_history
from services.executor.windows import WindowStore
from shared.bus import Incoming
from shared.logging import get_logger
from shared.peak import PeakWindow
from shared.topics import Topics
from tests.dashboard.fake_oidc import FakeOIDC
from tests.dashboard.helpers import InProcess, login, settings
from tests.seed.fixtures import make_seed_db

LONDON = ZoneInfo("Europe/London")


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOIDC]:
    p = FakeOIDC().start()
    yield p
    p.stop()


class Recorder:
    """Takes what the executor would publish (the Bus interface the function uses)."""

    def __init__(self) -> None:
        self.topics = Topics()
        self.sent: list[tuple[str, bytes, bool]] = []

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.sent.append((topic, payload, retain))


def test_imported_history_reaches_the_history_page_and_its_csv(tmp_path: Path, provider: FakeOIDC) -> None:
    now = datetime.now(UTC)
    seed = make_seed_db(tmp_path / "seed" / "Force_Charging.db", now)
    path = tmp_path / "exec" / "Force_Charging.db"
    journal, windows = Journal(path), WindowStore(path)
    import_seed(seed.path, journal, windows, now, PeakWindow.parse("17:00", "20:00", LONDON), LONDON)
    bus = Recorder()
    publish_imported_history(bus, path, now, get_logger("test"))
    [(topic, payload, retain)] = bus.sent
    assert topic == "batsched/executor/history/imported" and retain

    dash = InProcess(settings(tmp_path, provider))
    dash.live.on_message(Incoming(topic, payload, True))
    dash.live.on_message(Incoming(topic, payload, True))  # again after a reconnect: nothing doubles
    client = dash.client()
    assert login(client, provider).status_code == 303
    day = seed.last_decision.astimezone(LONDON).date().isoformat()
    doc = client.get(f"/api/history?day={day}").json()
    assert len(doc["rows"]) == 3  # three seed decisions that night
    assert all(r["decision_id"].startswith("seed-") for r in doc["rows"])
    assert any("original app, schedule" in r["rules"] for r in doc["rows"])
    body = client.get(f"/api/history.csv?day={day}").text
    rows = list(csv.DictReader(io.StringIO(body)))
    assert [r["decision_id"] for r in rows] == [r["decision_id"] for r in doc["rows"]]
    total = 0
    for offset in range(32):
        d = seed.first_decision.astimezone(LONDON).date().toordinal() + offset
        total += len(client.get(f"/api/history?day={datetime.fromordinal(d).date().isoformat()}").json()["rows"])
    assert total == seed.decisions


def test_history_larger_than_one_message_sends_the_newest(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    seed = make_seed_db(tmp_path / "seed" / "Force_Charging.db", now, days=800)
    path = tmp_path / "exec" / "Force_Charging.db"
    journal, windows = Journal(path), WindowStore(path)
    import_seed(seed.path, journal, windows, now, PeakWindow.parse("17:00", "20:00", LONDON), LONDON)
    bus = Recorder()
    publish_imported_history(bus, path, now, get_logger("test"))
    [(_topic, payload, _retain)] = bus.sent
    from shared.models import ImportedHistory

    msg = ImportedHistory.model_validate_json(payload)
    assert len(payload) < 1_000_000 and msg.total == seed.decisions == 2400 and len(msg.decisions) < 2400
    assert msg.decisions[-1].generated_at == max(d.generated_at for d in journal.decisions())
    assert len(journal.decisions()) == 2400  # every one is in the journal and its CSV export
