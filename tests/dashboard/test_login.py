"""Login as issue 19 asks: a one-time login link that expires after 10 minutes (a new one on request), logout that
kills the session server-side (a copied cookie included), redirects only to this site, the OpenID redirect URI from
settings never from the Host header, wrong-token limits per client, a favicon, HSTS on https."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from fastapi.testclient import TestClient

from services.dashboard.auth import same_site_path
from services.dashboard.login_links import LINK_TTL_S, LoginLinks
from tests.dashboard.fake_oidc import FakeOIDC
from tests.dashboard.helpers import InProcess, csrf_of, login, settings

ALICE = {"sub": "u-1", "email": "alice@example.org", "email_verified": True}


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeOIDC]:
    p = FakeOIDC().start()
    yield p
    p.stop()


def local(tmp_path: Path, token: str = "t0ken-abc", announced: list[str] | None = None) -> InProcess:
    s = settings(tmp_path, dashboard_auth="local", dashboard_session_secret=None)
    return InProcess(s, local_token=token, announce_link=(announced.append if announced is not None else None))


def test_login_link_works_once(tmp_path: Path) -> None:
    dash = local(tmp_path)
    first = dash.client()
    assert first.get("/?token=t0ken-abc").status_code == 303
    assert first.get("/api/now").status_code == 200
    second = dash.client()  # another browser (or the same link opened again) with the spent token
    again = second.get("/?token=t0ken-abc")
    assert again.status_code == 401 and "already used" in again.text
    assert second.get("/api/now").status_code == 401


def test_login_link_dies_after_ten_minutes() -> None:
    t = [1000.0]
    links = LoginLinks(first_token="abc", monotonic=lambda: t[0])
    t[0] += LINK_TTL_S + 1
    assert links.redeem("abc") is False
    links = LoginLinks(first_token="abc", monotonic=lambda: t[0])
    t[0] += LINK_TTL_S - 1
    assert links.redeem("wrong") is False and links.redeem("abc") is True and links.redeem("abc") is False


def test_a_new_link_is_printed_on_request_and_the_old_one_dies(tmp_path: Path) -> None:
    printed: list[str] = []
    dash = local(tmp_path, announced=printed)
    client = dash.client()
    page = client.get("/login")
    assert page.status_code == 200 and "/login/new-link" in page.text and "10 minutes" in page.text
    r = client.post("/login/new-link")
    assert r.status_code == 200 and "in the dashboard's log" in r.text
    assert len(printed) == 1 and printed[0] != "t0ken-abc"
    assert client.post("/login/new-link").status_code == 200 and len(printed) == 1  # not a log flood
    assert client.get("/?token=t0ken-abc").status_code == 401
    assert client.get(f"/?token={printed[0]}").status_code == 303
    assert client.get("/api/now").status_code == 200


def test_logout_kills_the_session_server_side_even_for_a_copied_cookie(tmp_path: Path, provider: FakeOIDC) -> None:
    dash = InProcess(settings(tmp_path, provider))
    client = dash.client()
    assert login(client, provider, ALICE).status_code == 303
    copied = dict(client.cookies)
    thief = TestClient(dash.app, follow_redirects=False, cookies=copied)
    assert thief.get("/api/now").status_code == 200  # the copy works while the login stands
    assert client.post("/logout", headers={"X-CSRF-Token": csrf_of(client)}).status_code == 200
    assert client.get("/api/now").status_code == 401
    assert thief.get("/api/now").status_code == 401  # ... and not after logout
    dash.store.close()
    restarted = InProcess(settings(tmp_path, provider))  # the same data directory after a restart
    assert TestClient(restarted.app, follow_redirects=False, cookies=copied).get("/api/now").status_code == 401


def test_a_session_survives_a_restart_until_logout(tmp_path: Path, provider: FakeOIDC) -> None:
    dash = InProcess(settings(tmp_path, provider))
    client = dash.client()
    login(client, provider, ALICE)
    cookies = dict(client.cookies)
    dash.store.close()
    restarted = InProcess(settings(tmp_path, provider))
    assert TestClient(restarted.app, follow_redirects=False, cookies=cookies).get("/api/now").status_code == 200


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/history", "/history"),
        ("/plan?x=1", "/plan?x=1"),
        ("//other.host/", "/"),
        ("/\\other.host", "/"),
        ("https://other.host/", "/"),
        ("javascript:alert(1)", "/"),
        ("/\tx", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_only_same_site_paths_are_redirect_targets(target: object, expected: str) -> None:
    assert same_site_path(target) == expected


def test_link_login_with_an_off_site_next_stays_on_site(tmp_path: Path) -> None:
    client = local(tmp_path).client()
    r = client.get("/", params={"token": "t0ken-abc", "next": "//other.host/"})
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_oauth_redirect_uri_ignores_a_forged_host(tmp_path: Path, provider: FakeOIDC) -> None:
    s = settings(tmp_path, provider, dashboard_public_url="https://battery.example.org", dashboard_host="0.0.0.0")
    client = InProcess(s).client()
    start = client.get("/login", headers={"Host": "evil.example"})
    uri = parse_qs(urlparse(start.headers["location"]).query)["redirect_uri"][0]
    assert uri == "https://battery.example.org/auth/callback"
    # On a loopback bind without a public URL: the bind address, still not the Host header.
    client = InProcess(settings(tmp_path / "2", provider, dashboard_port=8123)).client()
    start = client.get("/login", headers={"Host": "evil.example"})
    assert parse_qs(urlparse(start.headers["location"]).query)["redirect_uri"][0] == (
        "http://127.0.0.1:8123/auth/callback"
    )


def test_oidc_on_a_network_address_needs_a_public_url(tmp_path: Path) -> None:
    problem = settings(tmp_path, dashboard_host="0.0.0.0").startup_problem() or ""
    assert "BATSCHED_DASHBOARD_PUBLIC_URL" in problem and "Host" in problem
    assert (
        settings(tmp_path, dashboard_host="0.0.0.0", dashboard_public_url="https://b.example").startup_problem() is None
    )


def test_wrong_tokens_are_limited_per_client_not_for_everyone(tmp_path: Path) -> None:
    dash = local(tmp_path)
    guesser = TestClient(dash.app, follow_redirects=False, client=("10.9.9.9", 4000))
    codes = [guesser.get(f"/?token=guess{i}").status_code for i in range(11)]
    assert codes[:10] == [401] * 10 and codes[10] == 429
    owner = TestClient(dash.app, follow_redirects=False, client=("127.0.0.1", 5000))
    assert owner.get("/?token=t0ken-abc").status_code == 303  # the guesser did not lock the owner out


def test_favicon_without_login_and_hsts_only_on_https(tmp_path: Path, provider: FakeOIDC) -> None:
    client = InProcess(settings(tmp_path, provider)).client()
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in icon.text
    assert "strict-transport-security" not in client.get("/login").headers
    secure = InProcess(settings(tmp_path / "s", provider, dashboard_public_url="https://testserver"))
    r = secure.client(base_url="https://testserver").get("/favicon.ico")
    assert r.headers["strict-transport-security"].startswith("max-age=")


def test_pages_link_the_favicon(tmp_path: Path, provider: FakeOIDC) -> None:
    client = InProcess(settings(tmp_path, provider)).client()
    login(client, provider, ALICE)
    assert 'rel="icon"' in client.get("/").text
    assert client.get("/favicon.svg").status_code == httpx.codes.OK
