"""Who gets in and what they may change (the seed let anyone in when its list was empty): fail-closed allow-list,
verified e-mail, CSRF on every state-changing request, API key in a header only, local mode only on loopback (link
mode anywhere)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from fastapi.routing import APIRoute
from joserfc.jwk import RSAKey

from services.dashboard.auth import PUBLIC_PATHS
from services.dashboard.seed_api import is_seed_path
from tests.dashboard.fake_oidc import FakeOIDC
from tests.dashboard.helpers import InProcess, csrf_of, login, settings

ALICE = {"sub": "u-1", "email": "alice@example.org", "email_verified": True}


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOIDC]:
    p = FakeOIDC().start()
    yield p
    p.stop()


def protected_routes(app) -> list[tuple[str, str]]:
    out = []
    for route in app.routes:
        if not isinstance(route, APIRoute) or route.path in PUBLIC_PATHS:
            continue
        path = route.path.replace("{name}", "app.js")
        for method in route.methods:
            out.append((method, path))
    return out


def test_every_page_and_api_route_needs_a_session(tmp_path: Path) -> None:
    dash = InProcess(settings(tmp_path))
    client = dash.client()
    routes = protected_routes(dash.app)
    assert {("GET", "/"), ("GET", "/api/events"), ("POST", "/api/control/override"), ("POST", "/logout")} <= set(routes)
    for method, path in routes:
        # A forwarded-for header claiming loopback must not help (the seed trusted 127.0.0.1).
        r = client.request(method, path, headers={"X-Forwarded-For": "127.0.0.1"}, json={})
        if method == "GET" and not path.startswith("/api/") and not is_seed_path(path):  # seed's: 401 JSON
            assert r.status_code == 303 and r.headers["location"].startswith("/login"), (method, path, r.status_code)
        else:
            assert r.status_code == 401, (method, path, r.status_code)
    # The public ones really are public.
    assert client.get("/login").status_code in (200, 302, 502)
    assert client.get("/healthz").status_code == 503


def test_listed_user_logs_in_with_safe_cookie_then_logs_out(tmp_path: Path, provider: FakeOIDC) -> None:
    client = InProcess(settings(tmp_path, provider)).client()
    done = login(client, provider, ALICE)
    assert done.status_code == 303 and done.headers["location"] == "/"
    cookie = done.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert "secure" not in cookie.lower()  # plain http here; see the https test below
    assert client.get("/").status_code == 200
    assert client.get("/api/now").json()["warnings"]
    token = csrf_of(client)
    assert client.post("/logout", headers={"X-CSRF-Token": token}).status_code == 200
    assert client.get("/api/now").status_code == 401


def test_cookie_is_secure_when_served_over_https(tmp_path: Path, provider: FakeOIDC) -> None:
    dash = InProcess(settings(tmp_path, provider, dashboard_public_url="https://testserver"))
    client = dash.client(base_url="https://testserver")
    done = login(client, provider, ALICE)
    assert done.status_code == 303
    assert "secure" in done.headers["set-cookie"].lower()


def test_login_returns_to_the_page_asked_for_but_never_off_site(tmp_path: Path, provider: FakeOIDC) -> None:
    client = InProcess(settings(tmp_path, provider)).client()
    first = client.get("/history")
    assert first.headers["location"] == "/login?next=%2Fhistory"
    client.get(first.headers["location"])  # stores where to go back to
    done = login(client, provider, ALICE)
    assert done.headers["location"] == "/"  # login() starts a new flow without next=
    for target, expected in (("/history", "/history"), ("//evil.example", "/"), ("https://evil.example", "/")):
        start = client.get("/login", params={"next": target})
        authorize = httpx.get(start.headers["location"], follow_redirects=False)
        back = urlparse(authorize.headers["location"])
        assert client.get(f"{back.path}?{back.query}").headers["location"] == expected, target


def test_email_not_on_the_list_is_refused(tmp_path: Path, provider: FakeOIDC) -> None:
    client = InProcess(settings(tmp_path, provider)).client()
    r = login(client, provider, {"sub": "u-9", "email": "mallory@example.org", "email_verified": True})
    assert r.status_code == 403
    assert client.get("/api/now").status_code == 401


def test_allow_list_match_ignores_case(tmp_path: Path, provider: FakeOIDC) -> None:
    client = InProcess(settings(tmp_path, provider)).client()
    r = login(client, provider, {"sub": "u-2", "email": "bob@EXAMPLE.org", "email_verified": True})
    assert r.status_code == 303
    assert client.get("/api/now").status_code == 200


def test_empty_allow_list_admits_nobody(tmp_path: Path, provider: FakeOIDC) -> None:
    client = InProcess(settings(tmp_path, provider, authorized_emails="")).client()
    for user in (ALICE, {"sub": "x", "email": "anyone@gmail.com", "email_verified": True}):
        assert login(client, provider, user).status_code == 403
        assert client.get("/").status_code == 303


def test_unverified_email_is_refused(tmp_path: Path, provider: FakeOIDC) -> None:
    client = InProcess(settings(tmp_path, provider)).client()
    assert login(client, provider, {**ALICE, "email_verified": False}).status_code == 403
    assert login(client, provider, {k: v for k, v in ALICE.items() if k != "email_verified"}).status_code == 403


def test_id_token_with_a_bad_signature_or_audience_is_rejected(tmp_path: Path, provider: FakeOIDC) -> None:
    client = InProcess(settings(tmp_path, provider)).client()
    provider.signing_key = RSAKey.generate_key(2048, parameters={"kid": "test-key"})  # same kid, other key
    try:
        assert login(client, provider, ALICE).status_code == 400
    finally:
        provider.signing_key = None
    assert client.get("/api/now").status_code == 401
    provider.audience = "some-other-client"
    try:
        assert login(client, provider, ALICE).status_code == 400
    finally:
        provider.audience = None
    assert client.get("/api/now").status_code == 401
    assert login(client, provider, ALICE).status_code == 303  # and the same flow with a good token works


def test_post_without_csrf_token_is_refused(tmp_path: Path, provider: FakeOIDC) -> None:
    client = InProcess(settings(tmp_path, provider)).client()
    login(client, provider, ALICE)
    token = csrf_of(client)
    posts = [
        (path, {"mode": "hold"})
        for method, path in protected_routes(client.app)
        if method != "GET" and not is_seed_path(path)  # the seed's own page sent no token: tests/seed covers them
    ]
    assert len(posts) >= 6  # every control route and logout
    for path, body in posts:
        assert client.post(path, json=body).status_code == 403, path
        assert client.post(path, json=body, headers={"X-CSRF-Token": "wrong"}).status_code == 403, path
    # With the token the request goes through; nobody answers on this unconnected bus, and the page is told so.
    r = client.post("/api/control/replan", json={}, headers={"X-CSRF-Token": token})
    assert r.status_code == 504 and "no answer" in r.json()["error"]


def test_api_key_endpoint(tmp_path: Path) -> None:
    key = "k" * 32
    client = InProcess(settings(tmp_path)).client()
    body = {"source": "ups", "status": "on_battery", "detail": "mains lost"}
    assert client.post("/update_status", json=body).status_code == 401
    assert client.post("/update_status", json=body, headers={"X-API-Key": "k" * 31 + "x"}).status_code == 401
    assert client.post(f"/update_status?api_key={key}", json=body).status_code == 401  # never in a URL
    assert client.post("/update_status", json=body, headers={"X-API-Key": key}).status_code == 200
    assert client.post("/update_status", content=b"{bad", headers={"X-API-Key": key}).status_code == 422
    login_free = client.get("/api/now")
    assert login_free.status_code == 401  # the key opens only its own endpoint


def test_api_key_endpoint_is_closed_when_no_key_is_configured(tmp_path: Path) -> None:
    client = InProcess(settings(tmp_path, dashboard_api_key=None)).client()
    r = client.post("/update_status", json={"source": "x", "status": "y"}, headers={"X-API-Key": ""})
    assert r.status_code == 401


def test_local_token_login(tmp_path: Path) -> None:
    s = settings(tmp_path, dashboard_auth="local", dashboard_session_secret=None)
    client = InProcess(s, local_token="t0ken-abc").client()
    assert client.get("/").status_code == 303
    assert client.get("/?token=wrong").status_code == 401
    assert client.get("/api/now").status_code == 401
    r = client.get("/plan?token=t0ken-abc")
    assert r.status_code == 303 and r.headers["location"] == "/plan"
    assert client.get("/plan").status_code == 200
    assert client.get("/api/now").status_code == 200


def test_local_token_guessing_is_throttled(tmp_path: Path) -> None:
    s = settings(tmp_path, dashboard_auth="local", dashboard_session_secret=None)
    client = InProcess(s, local_token="t0ken-abc").client()
    codes = [client.get(f"/?token=guess{i}").status_code for i in range(12)]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]
    assert client.get("/?token=t0ken-abc").status_code == 429  # even the right one, until the minute is over


def test_secrets_come_from_files_named_after_the_settings(tmp_path: Path, monkeypatch) -> None:
    from services.dashboard.config import DashboardSettings
    from shared.settings import build_settings

    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "dashboard_session_secret").write_text("x" * 40)
    (secrets / "oidc_client_secret").write_text("client-secret")
    (secrets / "dashboard_api_key").write_text("api-key")
    monkeypatch.setenv("BATSCHED_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("BATSCHED_OIDC_CLIENT_ID", "cid")
    monkeypatch.setenv("AUTHORIZED_EMAILS", "Alice@example.org")  # the seed's name
    s = build_settings(DashboardSettings)
    assert s.startup_problem() is None
    assert s.dashboard_api_key is not None and s.dashboard_api_key.get_secret_value() == "api-key"
    assert s.allowed_emails() == frozenset({"alice@example.org"})
    assert "x" * 40 not in repr(s)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.org"])
def test_local_mode_refuses_a_non_loopback_bind(tmp_path: Path, host: str) -> None:
    s = settings(tmp_path, dashboard_auth="local", dashboard_host=host)
    assert "loopback" in (s.startup_problem() or "")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_local_mode_accepts_loopback(tmp_path: Path, host: str) -> None:
    assert settings(tmp_path, dashboard_auth="local", dashboard_host=host).startup_problem() is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_link_mode_listens_on_any_address_and_lets_in_only_the_link(tmp_path: Path, host: str) -> None:
    """The Compose demo: the dashboard listens on the container's network; the printed link is the only way in."""
    s = settings(tmp_path, dashboard_auth="link", dashboard_host=host, dashboard_session_secret=None)
    assert s.startup_problem() is None
    client = InProcess(s, local_token="t0ken-abc").client()
    assert client.get("/api/now").status_code == 401
    assert client.get("/?token=wrong").status_code == 401
    assert client.get("/?token=t0ken-abc").status_code == 303
    assert client.get("/api/now").status_code == 200


def test_oidc_mode_needs_a_long_session_secret(tmp_path: Path) -> None:
    assert "SESSION_SECRET" in (settings(tmp_path, dashboard_session_secret=None).startup_problem() or "")
    assert "32 bytes" in (settings(tmp_path, dashboard_session_secret="short").startup_problem() or "")


def test_process_refuses_to_start(spawn, tmp_path: Path) -> None:
    """The real entry point: exit status 2 and one line naming the setting, before listening anywhere."""
    cases = [
        ({"BATSCHED_DASHBOARD_AUTH": "local", "BATSCHED_DASHBOARD_HOST": "0.0.0.0"}, "loopback"),
        ({"BATSCHED_DASHBOARD_AUTH": "oidc", "BATSCHED_OIDC_CLIENT_ID": "x"}, "SESSION_SECRET"),
    ]
    procs = [
        (spawn("services.dashboard", env={**env, "BATSCHED_DASHBOARD_PORT": "1"}, name=f"refuse-{i}"), word)
        for i, (env, word) in enumerate(cases)
    ]
    for proc, word in procs:
        assert proc.proc is not None
        assert proc.proc.wait(30) == 2
        lines = [ln for ln in proc.log().splitlines() if "configuration error" in ln]
        assert len(lines) == 1 and word in lines[0], proc.log()
        assert re.search(r"Traceback", proc.log()) is None
