"""Octopus Saving Sessions and free-electricity sessions, from Octopus's GraphQL API, published on ``pricing/sessions``.

Requests (the API's own shapes):
1. ``obtainKrakenToken(input: {APIKey})`` → a token, sent as the ``Authorization`` header (renewed before an hour,
   and once at once when the API says it expired);
2. ``savingSessions { events {…} account(accountNumber) { hasJoinedCampaign joinedEvents {…} } }``: the sessions
   the account joined, with their reward in OctoPoints per kWh (800 OctoPoints = £1). Where the API no longer has
   that query, ``customerFlexibilityCampaignEvents`` with the ``octoplus-saving-sessions`` campaign instead;
3. ``customerFlexibilityCampaignEvents(accountNumber, supplyPointIdentifier: <import MPAN>, campaignSlug:
   "free_electricity")``: the free-electricity sessions. The MPAN comes from the account (REST) unless configured.

A failure keeps the sessions last known, sets ``status: failing`` with the reason (an alert for people, the
dashboard and Home Assistant) and logs once; plans and the executor's safety rules never depend on this working.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

from shared.models import OctopusSession, SessionList
from shared.topics import PRICING_SESSIONS

TOKEN_LIFE_S = 50 * 60  # Kraken tokens last an hour; renew before
AUTH_ERRORS = ("KT-CT-1124", "KT-CT-1139", "JWT", "expired", "Authentication")
KEEP_PAST = timedelta(days=1)  # sessions kept this long after they end (the dashboard shows today's)

TOKEN_MUTATION = """mutation obtainKrakenToken($input: ObtainJSONWebTokenInput!) {
  obtainKrakenToken(input: $input) { token }
}"""

SAVING_QUERY = """query savingSessions($accountNumber: String!) {
  savingSessions {
    events { id code startAt endAt rewardPerKwhInOctoPoints }
    account(accountNumber: $accountNumber) {
      hasJoinedCampaign
      joinedEvents { eventId startAt endAt rewardGivenInOctoPoints }
    }
  }
}"""

CAMPAIGN_QUERY = """query campaignEvents($accountNumber: String!, $supplyPointIdentifier: String!,
    $campaignSlug: String!, $first: Int!) {
  customerFlexibilityCampaignEvents(accountNumber: $accountNumber, supplyPointIdentifier: $supplyPointIdentifier,
      campaignSlug: $campaignSlug, first: $first) {
    edges { node { code name startAt endAt isEventParticipant } }
  }
}"""


class SessionsError(Exception):
    """The GraphQL API could not give the sessions; ``str()`` says why."""


def _time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise SessionsError(f"bad time {text!r}")
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        raise SessionsError(f"time without a zone: {text!r}")
    return t.astimezone(UTC)


def parse_saving(data: dict[str, Any], points_per_gbp: float) -> list[OctopusSession]:
    """The joined Saving Sessions from a ``savingSessions`` answer."""
    block = data.get("savingSessions") or {}
    account = block.get("account") or {}
    if not account.get("hasJoinedCampaign"):
        return []
    events = {str(e.get("id")): e for e in block.get("events") or [] if isinstance(e, dict)}
    out = []
    for j in account.get("joinedEvents") or []:
        event = events.get(str(j.get("eventId")), {})
        reward = event.get("rewardPerKwhInOctoPoints")
        out.append(
            OctopusSession(
                kind="saving",
                code=str(event.get("code") or j.get("eventId")),
                start=_time(j.get("startAt") or event.get("startAt")),
                end=_time(j.get("endAt") or event.get("endAt")),
                reward_octopoints_per_kwh=int(reward) if reward is not None else None,
                reward_gbp_per_kwh=round(int(reward) / points_per_gbp, 4) if reward is not None else None,
            )
        )
    return out


def parse_campaign(data: dict[str, Any], kind: str) -> list[OctopusSession]:
    """Sessions from a ``customerFlexibilityCampaignEvents`` answer (the account's, when it says so)."""
    edges = (data.get("customerFlexibilityCampaignEvents") or {}).get("edges") or []
    out = []
    for edge in edges:
        node = (edge or {}).get("node") or {}
        if node.get("isEventParticipant") is False:
            continue
        out.append(
            OctopusSession(
                kind=kind,  # type: ignore[arg-type]
                code=str(node.get("code") or node.get("name") or "?"),
                start=_time(node.get("startAt")),
                end=_time(node.get("endAt")),
            )
        )
    return out


class GraphQLClient:
    """POSTs queries to Octopus's GraphQL endpoint with a Kraken token obtained from the API key."""

    def __init__(self, url: str, api_key: str, timeout_s: float, session: requests.Session | None = None) -> None:
        self.url = url
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.session = session or requests.Session()
        self._token: str | None = None
        self._token_at = 0.0

    def _post(self, query: str, variables: dict[str, Any], token: str | None) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = token
        try:
            r = self.session.post(
                self.url, json={"query": query, "variables": variables}, headers=headers, timeout=self.timeout_s
            )
        except requests.RequestException as exc:
            raise SessionsError(f"cannot reach Octopus GraphQL: {type(exc).__name__}") from None
        if r.status_code != 200:
            raise SessionsError(f"Octopus GraphQL answered HTTP {r.status_code}")
        try:
            body = r.json()
        except (ValueError, RecursionError):
            raise SessionsError("Octopus GraphQL answered with something that is not JSON") from None
        if not isinstance(body, dict):
            raise SessionsError("Octopus GraphQL answered with something that is not a JSON object")
        return body

    def token(self) -> str:
        if self._token and time.monotonic() - self._token_at < TOKEN_LIFE_S:
            return self._token
        body = self._post(TOKEN_MUTATION, {"input": {"APIKey": self.api_key}}, None)
        token = ((body.get("data") or {}).get("obtainKrakenToken") or {}).get("token")
        if not token:
            raise SessionsError(f"no Kraken token for this API key: {_errors(body) or 'empty answer'}")
        self._token, self._token_at = str(token), time.monotonic()
        return self._token

    def query(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """``data`` of the answer; a token refused as expired is renewed once. Raises ``SessionsError``."""
        for attempt in (1, 2):
            body = self._post(query, variables, self.token())
            errors = _errors(body)
            if errors and attempt == 1 and any(k in errors for k in AUTH_ERRORS):
                self._token = None
                continue
            if errors:
                raise SessionsError(f"Octopus GraphQL error: {errors}")
            data = body.get("data")
            if not isinstance(data, dict):
                raise SessionsError("Octopus GraphQL answered without data")
            return data
        raise SessionsError("unreachable")  # pragma: no cover


def _errors(body: dict[str, Any]) -> str:
    errs = body.get("errors") or []
    parts = []
    for e in errs if isinstance(errs, list) else []:
        if isinstance(e, dict):
            code = (e.get("extensions") or {}).get("errorCode")
            parts.append(f"{e.get('message')}{f' ({code})' if code else ''}")
    return "; ".join(parts)[:300]


class SessionFetcher:
    """Fetches on a timer, keeps the last good sessions (also on disk) and publishes ``SessionList``."""

    def __init__(
        self,
        graphql: GraphQLClient | None,
        account: str | None,
        mpan: Any,
        points_per_gbp: float,
        store_path: Path,
        log: Any,
    ) -> None:
        self.graphql = graphql
        self.account = account
        self.mpan = mpan  # the import MPAN, or a callable that finds it (the account's REST endpoint)
        self.points_per_gbp = points_per_gbp
        self.store_path = store_path
        self.log = log
        self._lock = threading.Lock()
        self.sessions: list[OctopusSession] = self._load()
        self.fetched_at: datetime | None = None
        self.failing_since: datetime | None = None
        self.error: str | None = None
        self._saving_fallback = False  # the API no longer has savingSessions

    @property
    def enabled(self) -> bool:
        return self.graphql is not None and bool(self.account)

    def _load(self) -> list[OctopusSession]:
        try:
            doc = json.loads(self.store_path.read_text())
            return [OctopusSession.model_validate(s) for s in doc]
        except (OSError, ValueError):
            return []

    def _save(self) -> None:
        tmp = self.store_path.with_suffix(".tmp")
        tmp.write_text(json.dumps([s.model_dump(mode="json") for s in self.sessions]))
        tmp.replace(self.store_path)

    def _mpan(self) -> str:
        value = self.mpan() if callable(self.mpan) else self.mpan
        if not value:
            raise SessionsError("no import MPAN for the account (set BATSCHED_OCTOPUS_MPAN)")
        self.mpan = str(value)  # found once
        return self.mpan

    def _saving(self) -> list[OctopusSession]:
        assert self.graphql is not None
        if not self._saving_fallback:
            try:
                return parse_saving(
                    self.graphql.query(SAVING_QUERY, {"accountNumber": self.account}), self.points_per_gbp
                )
            except SessionsError as exc:
                if "savingSessions" not in str(exc):
                    raise
                self._saving_fallback = True
                self.log.info("Octopus GraphQL has no savingSessions query: reading the Saving Sessions campaign")
        variables = {"accountNumber": self.account, "supplyPointIdentifier": self._mpan(), "first": 50}
        data = self.graphql.query(CAMPAIGN_QUERY, {**variables, "campaignSlug": "octoplus-saving-sessions"})
        return parse_campaign(data, "saving")

    def _free(self) -> list[OctopusSession]:
        assert self.graphql is not None
        variables = {"accountNumber": self.account, "supplyPointIdentifier": self._mpan(), "first": 50}
        return parse_campaign(
            self.graphql.query(CAMPAIGN_QUERY, {**variables, "campaignSlug": "free_electricity"}), "free"
        )

    def refresh(self, now: datetime) -> SessionList:
        """One fetch; the message to publish (the last good sessions with ``failing`` when it did not work)."""
        with self._lock:
            if not self.enabled:
                return SessionList(generated_at=now, status="disabled", error="no Octopus account number and API key")
            try:
                found = [*self._saving(), *self._free()]
            except (SessionsError, ValueError) as exc:
                if self.error is None:
                    self.log.warning("Octopus sessions fetch failing; keeping the sessions last known", error=str(exc))
                    self.failing_since = now
                self.error = str(exc)
            else:
                if self.error is not None:
                    self.log.info("Octopus sessions fetch works again")
                self.error, self.failing_since, self.fetched_at = None, None, now
                self.sessions = sorted(
                    {(s.kind, s.start): s for s in found if s.end > now - KEEP_PAST}.values(), key=lambda s: s.start
                )
                try:
                    self._save()
                except OSError as exc:
                    self.log.warning("sessions not saved to disk", error=str(exc))
            kept = [s for s in self.sessions if s.end > now - KEEP_PAST]
            return SessionList(
                generated_at=now,
                status="failing" if self.error else "ok",
                error=self.error,
                since=self.failing_since,
                fetched_at=self.fetched_at,
                sessions=kept[:500],
            )


# ------------------------------------------------------------------ wiring (``python -m services.pricing``)


def import_mpan(body: dict[str, Any]) -> str | None:
    """The current import MPAN in an account answer (REST ``/v1/accounts/<number>/``)."""
    for prop in body.get("properties") or []:
        if prop.get("moved_out_at"):
            continue
        for point in prop.get("electricity_meter_points") or []:
            if not point.get("is_export") and point.get("mpan"):
                return str(point["mpan"])
    return None


def wire_sessions(ctx: Any, rest: Any) -> SessionFetcher:
    """Fetch on a timer and publish ``pricing/sessions`` (retained; again on every reconnect), with Home
    Assistant entities: the next Saving Session, the next free-electricity session, and a fetch problem."""
    from shared.ha import entity, register_discovery

    from .octopus import OctopusError

    s = ctx.settings
    key = s.octopus_api_key.get_secret_value() if s.octopus_api_key else None
    graphql = GraphQLClient(s.graphql_url, key, s.http_timeout_s) if key and s.octopus_account else None

    def find_mpan() -> str | None:
        try:
            return import_mpan(rest.get_json(f"{rest.base_url}/v1/accounts/{s.octopus_account}/", auth=True))
        except OctopusError as exc:
            raise SessionsError(f"account lookup for the MPAN failed: {exc}") from None

    fetcher = SessionFetcher(
        graphql, s.octopus_account, s.octopus_mpan or find_mpan, s.octopoints_per_gbp,
        ctx.data_path("octopus_sessions.json"), ctx.log,
    )  # fmt: skip
    topic = PRICING_SESSIONS
    last: list[SessionList] = []

    def publish() -> None:
        ctx.bus.wait_connected(10)
        msg = fetcher.refresh(ctx.now())
        last[:] = [msg]
        ctx.bus.publish_state(topic, msg)

    def republish() -> None:
        if last:
            ctx.bus.publish_state(topic, last[0])

    def discovery() -> list[tuple[str, dict[str, Any]]]:
        now = "{% set t = utcnow().strftime('%Y-%m-%dT%H:%M:%SZ') %}"

        def nxt(kind: str) -> str:
            return (
                now + "{% set f = value_json.sessions | selectattr('kind', 'eq', '" + kind + "') | "
                "selectattr('end', 'gt', t) | list %}{{ f[0].start if f else None }}"
            )

        bus = ctx.bus
        return [
            entity(bus, "sensor", "next_saving_session", "Next Octopus Saving Session", topic,
                   device_class="timestamp", value_template=nxt("saving"), json_attributes_topic=topic,
                   json_attributes_template="{{ {'sessions': value_json.sessions} | tojson }}",
                   icon="mdi:piggy-bank"),
            entity(bus, "sensor", "next_free_session", "Next free-electricity session", topic,
                   device_class="timestamp", value_template=nxt("free"), icon="mdi:lightning-bolt"),
            entity(bus, "binary_sensor", "sessions_problem", "Octopus sessions problem", topic,
                   device_class="problem", value_template="{{ 'ON' if value_json.status == 'failing' else 'OFF' }}",
                   json_attributes_topic=topic, json_attributes_template="{{ {'error': value_json.error} | tojson }}"),
        ]  # fmt: skip

    ctx.bus.on_connect(republish)
    register_discovery(ctx.bus, discovery, with_status=False)
    ctx.every(s.sessions_refresh_s if fetcher.enabled else 86400.0, publish, name="sessions")
    return fetcher
