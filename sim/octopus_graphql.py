"""The fake Octopus GraphQL endpoint (``POST /v1/graphql/`` on the fake Octopus API), for Saving Sessions and
free-electricity sessions, answering the operations batsched sends in the API's own shapes:

- ``obtainKrakenToken(input: {APIKey})`` → ``{"data": {"obtainKrakenToken": {"token": …}}}`` (a wrong key gets a
  GraphQL error, HTTP 200, as the real API does);
- ``savingSessions { events {…} account(accountNumber) { hasJoinedCampaign joinedEvents {…} } }`` (with the token
  in ``Authorization``, raw or after ``JWT``);
- ``customerFlexibilityCampaignEvents(accountNumber, supplyPointIdentifier, campaignSlug, first)`` →
  ``edges[].node{code name startAt endAt isEventParticipant}`` for ``free_electricity`` and
  ``octoplus-saving-sessions``;
- ``plannedDispatches(accountNumber)`` / ``completedDispatches(accountNumber)`` → Intelligent Octopus Go's
  smart-charge dispatches, ``[{start end delta meta {source location}}]`` (times ``"YYYY-MM-DD HH:MM:SS+00:00"``,
  as the API writes them).

Switches (``POST /_control/graphql`` with a JSON object, or ``FakeOctopus.graphql`` in-process):
``saving_events`` (list of ``{id, code, startAt, endAt, rewardPerKwhInOctoPoints}``), ``joined`` (event ids),
``has_joined``, ``free_events`` (``{code, name, startAt, endAt}``), ``dispatches`` (``{start, end}`` in ISO,
optionally ``delta`` kWh and ``source`` "smart-charge" / "bump-charge"; those that ended are answered as
completed), ``fail_500`` / ``errors`` (the next n requests answer HTTP 500 / a GraphQL error; -1 = all),
``expire_tokens`` (every token issued so far is refused once as expired), ``removed_saving_sessions`` (the
``savingSessions`` query no longer exists). Every request is recorded (operation, variables, Authorization).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

API_KEY = "sk_test_fakeoctopus"
ACCOUNT_NUMBER = "A-1234ABCD"
MPAN = "1900000000001"
OPERATIONS = ("obtainKrakenToken", "savingSessions", "customerFlexibilityCampaignEvents", "plannedDispatches")


@dataclass
class GraphQLState:
    saving_events: list[dict[str, Any]] = field(default_factory=list)
    joined: list[int] = field(default_factory=list)
    has_joined: bool = True
    free_events: list[dict[str, Any]] = field(default_factory=list)
    dispatches: list[dict[str, Any]] = field(default_factory=list)
    now: Any = None  # a callable giving the time (the fake API's clock): past dispatches are "completed"
    fail_500: int = 0
    errors: int = 0
    expire_tokens: bool = False
    removed_saving_sessions: bool = False
    api_key: str = API_KEY
    account: str = ACCOUNT_NUMBER
    mpan: str = MPAN
    tokens: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, changes: dict[str, Any]) -> None:
        with self._lock:
            for name, value in changes.items():
                if name.startswith("_") or name in ("tokens", "requests", "now") or not hasattr(self, name):
                    raise ValueError(f"unknown GraphQL switch {name!r}")
                setattr(self, name, value)
            if changes.get("expire_tokens"):
                self.tokens = []
                self.expire_tokens = False

    def _take(self, name: str) -> bool:
        left = getattr(self, name)
        if left == 0:
            return False
        if left > 0:
            setattr(self, name, left - 1)
        return True

    def answer(self, raw: bytes, authorization: str | None) -> tuple[int, dict[str, Any]]:
        try:
            body = json.loads(raw or b"{}")
            query = str(body.get("query") or "")
            variables = body.get("variables") or {}
        except (ValueError, AttributeError):
            return 400, {"errors": [{"message": "Must provide query string."}]}
        operation = next(
            (
                op
                for op in (
                    "obtainKrakenToken",
                    "savingSessions",
                    "customerFlexibilityCampaignEvents",
                    "plannedDispatches",
                )
                if op in query
            ),
            "unknown",
        )
        with self._lock:
            self.requests.append({"operation": operation, "variables": variables, "authorization": authorization})
            if self._take("fail_500"):
                return 500, {"errors": [{"message": "Internal server error"}]}
            if self._take("errors"):
                return 200, _error("Something went wrong.", "KT-CT-1111")
            if operation == "obtainKrakenToken":
                if ((variables.get("input") or {}).get("APIKey")) != self.api_key:
                    return 200, _error("Authentication failed.", "KT-CT-1138")
                token = f"fake-kraken-jwt-{len(self.tokens) + 1}"
                self.tokens.append(token)
                return 200, {"data": {"obtainKrakenToken": {"token": token}}}
            token = (authorization or "").removeprefix("JWT ").strip()
            if token not in self.tokens:
                return 200, _error("Signature of the JWT has expired.", "KT-CT-1124")
            if variables.get("accountNumber") != self.account:
                return 200, _error("Unauthorized.", "KT-CT-1111")
            if operation == "savingSessions":
                if self.removed_saving_sessions:
                    return 200, _error('Cannot query field "savingSessions" on type "Query".', None)
                return 200, {"data": {"savingSessions": self._saving()}}
            if operation == "customerFlexibilityCampaignEvents":
                if variables.get("supplyPointIdentifier") != self.mpan:
                    return 200, _error("No supply point found for the account.", "KT-CT-4501")
                return 200, {"data": {"customerFlexibilityCampaignEvents": self._campaign(variables)}}
            if operation == "plannedDispatches":
                return 200, {"data": self._dispatches()}
            return 200, _error("Unknown operation.", None)

    def _saving(self) -> dict[str, Any]:
        joined = [e for e in self.saving_events if e["id"] in self.joined] if self.has_joined else []
        return {
            "events": list(self.saving_events),
            "account": {
                "hasJoinedCampaign": self.has_joined,
                "joinedEvents": [
                    {"eventId": e["id"], "startAt": e["startAt"], "endAt": e["endAt"], "rewardGivenInOctoPoints": None}
                    for e in joined
                ],
            },
        }

    def _dispatches(self) -> dict[str, Any]:
        now = self.now() if callable(self.now) else None
        planned, completed = [], []
        for d in self.dispatches:
            start, end = _parse(d["start"]), _parse(d["end"])
            node = {
                "start": start.strftime("%Y-%m-%d %H:%M:%S+00:00"),
                "end": end.strftime("%Y-%m-%d %H:%M:%S+00:00"),
                "delta": str(d.get("delta", "-2.50")),
                "meta": {"source": d.get("source", "smart-charge"), "location": "AT_HOME"},
            }
            (completed if now is not None and end <= now else planned).append(node)
        return {"plannedDispatches": planned, "completedDispatches": completed}

    def _campaign(self, variables: dict[str, Any]) -> dict[str, Any]:
        slug = variables.get("campaignSlug")
        if slug == "free_electricity":
            events = [{**e, "isEventParticipant": True} for e in self.free_events]
        elif slug == "octoplus-saving-sessions":
            events = [
                {"code": e["code"], "name": e["code"], "startAt": e["startAt"], "endAt": e["endAt"],
                 "isEventParticipant": e["id"] in self.joined}
                for e in self.saving_events
            ]  # fmt: skip
        else:
            events = []
        events = events[: int(variables.get("first") or 50)]
        return {"edges": [{"node": e} for e in events], "edgeCount": len(events)}


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _error(message: str, code: str | None) -> dict[str, Any]:
    err: dict[str, Any] = {"message": message, "path": []}
    if code:
        err["extensions"] = {"errorCode": code}
    return {"data": None, "errors": [err]}
