"""Saving Sessions and free-electricity sessions from the (fake) Octopus GraphQL API, in its request shapes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from services.pricing.sessions import GraphQLClient, SessionFetcher
from shared.clock import FixedClock
from shared.logging import get_logger
from sim.octopus import FakeOctopus
from sim.octopus_graphql import ACCOUNT_NUMBER, API_KEY, MPAN
from tests.executor.support import sim_clock_env

NOW = datetime(2025, 1, 20, 12, 0, tzinfo=UTC)


def z(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def events(now: datetime) -> dict[str, object]:
    start = now.replace(hour=17, minute=30)
    return {
        "saving_events": [
            {"id": 101, "code": "EVENT_101", "startAt": z(start), "endAt": z(start + timedelta(hours=1)),
             "rewardPerKwhInOctoPoints": 1800},
            {"id": 102, "code": "EVENT_102", "startAt": z(start + timedelta(days=1)),
             "endAt": z(start + timedelta(days=1, hours=1)), "rewardPerKwhInOctoPoints": 2400},
        ],
        "joined": [101],
        "free_events": [
            {"code": "FREE_1", "name": "Free Electricity", "startAt": z(now.replace(hour=13) + timedelta(days=1)),
             "endAt": z(now.replace(hour=14) + timedelta(days=1))},
        ],
    }  # fmt: skip


@pytest.fixture
def octopus() -> Iterator[FakeOctopus]:
    api = FakeOctopus(FixedClock(NOW)).start()
    api.graphql.update(events(NOW))
    yield api
    api.stop()


def fetcher(
    api: FakeOctopus, tmp_path: Path, key: str = API_KEY, account: str | None = ACCOUNT_NUMBER
) -> SessionFetcher:
    client = GraphQLClient(f"{api.url}/v1/graphql/", key, 5.0)
    return SessionFetcher(client, account, MPAN, 800.0, tmp_path / "sessions.json", get_logger("test"))


def test_joined_saving_sessions_and_free_sessions_with_the_real_request_shapes(
    octopus: FakeOctopus, tmp_path: Path
) -> None:
    msg = fetcher(octopus, tmp_path).refresh(NOW)
    assert msg.status == "ok" and msg.error is None
    saving = [s for s in msg.sessions if s.kind == "saving"]
    free = [s for s in msg.sessions if s.kind == "free"]
    assert [s.code for s in saving] == ["EVENT_101"]  # 102 was not joined
    assert saving[0].reward_octopoints_per_kwh == 1800 and saving[0].reward_gbp_per_kwh == 2.25
    assert saving[0].start == NOW.replace(hour=17, minute=30) and saving[0].end == NOW.replace(hour=18, minute=30)
    assert [s.code for s in free] == ["FREE_1"]
    reqs = octopus.graphql.requests
    assert [r["operation"] for r in reqs] == [
        "obtainKrakenToken",
        "savingSessions",
        "customerFlexibilityCampaignEvents",
    ]
    assert reqs[0]["variables"] == {"input": {"APIKey": API_KEY}} and reqs[0]["authorization"] is None
    assert reqs[1]["variables"] == {"accountNumber": ACCOUNT_NUMBER}
    assert reqs[1]["authorization"] == octopus.graphql.tokens[0]
    assert reqs[2]["variables"] == {
        "accountNumber": ACCOUNT_NUMBER, "supplyPointIdentifier": MPAN, "campaignSlug": "free_electricity", "first": 50
    }  # fmt: skip


def test_an_expired_token_is_renewed_once(octopus: FakeOctopus, tmp_path: Path) -> None:
    f = fetcher(octopus, tmp_path)
    f.refresh(NOW)
    octopus.graphql.update({"expire_tokens": True})
    assert f.refresh(NOW).status == "ok"
    ops = [r["operation"] for r in octopus.graphql.requests]
    assert ops.count("obtainKrakenToken") == 2


def test_failures_keep_the_last_sessions_and_say_why(octopus: FakeOctopus, tmp_path: Path) -> None:
    f = fetcher(octopus, tmp_path)
    good = f.refresh(NOW)
    octopus.graphql.update({"fail_500": -1})
    bad = f.refresh(NOW + timedelta(minutes=30))
    assert bad.status == "failing" and "HTTP 500" in (bad.error or "") and bad.since == NOW + timedelta(minutes=30)
    assert bad.sessions == good.sessions and bad.fetched_at == NOW
    octopus.graphql.update({"fail_500": 0, "errors": 2})
    worse = f.refresh(NOW + timedelta(hours=1))
    assert worse.status == "failing" and "Something went wrong" in (worse.error or "")
    assert worse.since == NOW + timedelta(minutes=30)  # failing since the first failure
    # a restart while failing still has the sessions (on disk)
    again = fetcher(octopus, tmp_path)
    octopus.graphql.update({"errors": -1})
    assert again.refresh(NOW + timedelta(hours=2)).sessions == good.sessions
    octopus.graphql.update({"errors": 0})
    assert again.refresh(NOW + timedelta(hours=3)).status == "ok"


def test_wrong_api_key_and_missing_settings(octopus: FakeOctopus, tmp_path: Path) -> None:
    msg = fetcher(octopus, tmp_path, key="sk_live_wrong").refresh(NOW)
    assert msg.status == "failing" and "Authentication failed" in (msg.error or "")
    assert fetcher(octopus, tmp_path / "x", account=None).refresh(NOW).status == "disabled"


def test_without_the_saving_sessions_query_the_campaign_is_read(octopus: FakeOctopus, tmp_path: Path) -> None:
    octopus.graphql.update({"removed_saving_sessions": True})
    msg = fetcher(octopus, tmp_path).refresh(NOW)
    assert msg.status == "ok"
    assert sorted((s.kind, s.code) for s in msg.sessions) == [("free", "FREE_1"), ("saving", "EVENT_101")]
    slugs = [r["variables"].get("campaignSlug") for r in octopus.graphql.requests]
    assert "octoplus-saving-sessions" in slugs


def test_pricing_service_publishes_sessions_and_alerts_when_the_api_fails(spawn, probe) -> None:
    start = datetime(2024, 1, 22, 8, 0, tzinfo=UTC)  # inside the bundled prices
    clock, env = sim_clock_env(start, 60.0)
    api = FakeOctopus(clock).start()
    api.graphql.update(events(start))
    try:
        spawn(
            "services.pricing",
            {**env, "BATSCHED_OCTOPUS_BASE_URL": api.url, "BATSCHED_OCTOPUS_REGION": "J",
             "OCTOPUS_ACCOUNT_NUMBER": ACCOUNT_NUMBER, "OCTOPUS_API_KEY": API_KEY,
             "BATSCHED_SESSIONS_REFRESH_S": "120"},
        )  # fmt: skip
        doc = probe.wait_json("batsched/pricing/sessions", lambda d: d["status"] == "ok", timeout=30)
        assert {s["code"] for s in doc["sessions"]} == {"EVENT_101", "FREE_1"}
        discovery = probe.wait_json("homeassistant/sensor/batsched_pricing/next_saving_session/config", timeout=10)
        assert discovery["state_topic"] == "batsched/pricing/sessions" and discovery["device_class"] == "timestamp"
        probe.wait_for("homeassistant/binary_sensor/batsched_pricing/sessions_problem/config", timeout=10)
        requests.post(f"{api.url}/_control/graphql", json={"fail_500": -1}, timeout=5).raise_for_status()
        bad = probe.wait_json("batsched/pricing/sessions", lambda d: d["status"] == "failing", timeout=30)
        assert "HTTP 500" in bad["error"] and {s["code"] for s in bad["sessions"]} == {"EVENT_101", "FREE_1"}
        # prices are unaffected
        probe.wait_json("batsched/pricing/import/rates", lambda d: len(d["rates"]) > 0, timeout=30)
    finally:
        api.stop()
