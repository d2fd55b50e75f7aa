"""Who may see and change things: OpenID Connect login, a fail-closed allow-list, CSRF, local token, API key.

Rules (the seed's dashboard let anyone in when its list was empty, and trusted any proxy header):
- every route needs a logged-in session except the login pages, ``/healthz`` and the API-key endpoint;
  pages redirect to ``/login``, API calls get 401;
- the allow-list of e-mails is checked at login AND on every request, and an empty list admits nobody;
- the provider must say the e-mail is verified (``email_verified`` true in the signed ID token);
- the ID token's signature, ``iss``, ``aud``, ``exp`` and ``nonce`` are checked by authlib; PKCE (S256) is used;
- every state-changing request (not GET/HEAD/OPTIONS) needs the session's CSRF token in ``X-CSRF-Token``;
- local mode (``make run``): no provider; a login link printed in the log logs one browser in (as Jupyter does):
  single-use, dead after 10 minutes, a new one at each start or when asked for on the login page
  (``login_links.py``). Only ever on a loopback bind (checked at start-up by the settings). ``link`` mode is
  the same on any address, for the Compose demo, whose dashboard listens on the container's network;
- a login is a row in ``dashboard.db`` as well as a signed cookie: logout deletes the row, so the cookie is dead
  even if someone kept a copy;
- redirects after login go only to a path on this site (never ``//host`` or a full URL);
- the OpenID redirect URI is built from the configured public URL (or, on a loopback bind, the bind address),
  never from the request's ``Host`` header;
- the machine endpoint takes its key from the ``X-API-Key`` header only, compared in constant time;
- the original app's endpoints (``seed_api.py``) take a session or that key, and refuse cross-site requests.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from authlib.integrations.starlette_client import OAuth, OAuthError
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from shared.logging import get_logger

from .config import DashboardSettings
from .login_links import BadTokenBrake, LoginLinks
from .seed_api import is_seed_path, seed_access
from .store import Store

log = get_logger("batsched.dashboard.auth")

# The style sheet is public so the login and error pages look right before login; it holds no data.
PUBLIC_PATHS = frozenset(
    {
        "/login",
        "/login/new-link",
        "/auth/callback",
        "/callback",
        "/healthz",
        "/health",
        "/static/style.css",
        "/favicon.ico",
        "/favicon.svg",
    }
)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrf-token"
LOCAL_USER = "local"


def same_site_path(target: Any) -> str:
    """``target`` when it is a path on this site, else ``/``: never ``//host``, ``/\\host``, a scheme or a control
    character (browsers read ``/\\host`` as ``//host``)."""
    if not isinstance(target, str) or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def same_secret(given: str | None, expected: str | None) -> bool:
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class Auth:
    def __init__(
        self,
        settings: DashboardSettings,
        links: LoginLinks | None,
        store: Store,
        wall_s: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.local = settings.login_link
        self.links = links or LoginLinks()
        self.store = store
        self.wall_s = wall_s  # real seconds: the cookie's own lifetime is real time, whatever the service clock
        self.brake = BadTokenBrake()
        self.allowed = settings.allowed_emails()
        self.oauth: OAuth | None = None
        if not self.local:
            self.oauth = OAuth()
            self.oauth.register(
                "oidc",
                client_id=settings.oidc_client_id,
                client_secret=settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else None,
                server_metadata_url=settings.oidc_metadata_url,
                client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
            )

    # ------------------------------------------------------------------ who is this

    def user(self, request: Request) -> dict[str, Any] | None:
        user = request.session.get("user")
        if not isinstance(user, dict):
            return None
        if not self.session_stands(request):
            return None  # logged out (or from before this rule): the cookie alone opens nothing
        if self.local:
            return user if user.get("email") == LOCAL_USER else None
        return user if self.email_allowed(user.get("email")) else None

    def session_stands(self, request: Request) -> bool:
        sid = request.session.get("sid")
        oldest = self.wall_s() - self.settings.dashboard_session_max_age_s
        return isinstance(sid, str) and self.store.session_alive(sid, oldest)

    def start_session(self, request: Request, email: str, sub: str) -> None:
        """A fresh session at login (no fixation), recorded server-side so that logout can end it."""
        request.session.clear()
        sid = secrets.token_urlsafe(24)
        now_s = self.wall_s()
        self.store.sessions_prune(now_s - self.settings.dashboard_session_max_age_s)
        self.store.session_add(sid, email, now_s)
        request.session["user"] = {"email": email, "sub": sub}
        request.session["sid"] = sid
        csrf_token(request)

    def email_allowed(self, email: Any) -> bool:
        # An empty allow-list admits nobody: ``in`` on an empty set is always False.
        return isinstance(email, str) and email.strip().lower() in self.allowed

    # ------------------------------------------------------------------ middleware

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        if self.local and "token" in request.query_params and request.method == "GET":
            client = request.client.host if request.client else "?"
            if self.brake.blocked(client):
                return _deny(request, 429, "too many wrong login tokens from this address; wait a minute")
            if self.links.redeem(request.query_params.get("token")):
                self.start_session(request, LOCAL_USER, LOCAL_USER)
                log.info("local login")
                target = request.query_params.get("next", path if path not in PUBLIC_PATHS else "/")
                return RedirectResponse(same_site_path(target), status_code=303)
            self.brake.wrong(client)
            log.warning("wrong, used or expired local login token", client=client)
            return _deny(
                request,
                401,
                "this login link is wrong, already used or older than 10 minutes: ask for a new one below, "
                "then open the link the dashboard prints in its log",
                new_link_form=True,
            )
        if is_seed_path(path):  # the original app's endpoints: a session or the x-api-key header (seed_api.py)
            key = self.settings.dashboard_api_key
            denied = seed_access(
                request, key.get_secret_value() if key else None, self.user(request), request.session.get("csrf")
            )
            return denied or await call_next(request)
        if path in PUBLIC_PATHS:
            return await call_next(request)
        user = self.user(request)
        if user is None:
            if request.session.get("user"):
                stood = self.session_stands(request)
                request.session.clear()
                if stood:  # was allowed once, is not any more (list changed)
                    return _deny(request, 403, "your account is not on this dashboard's allow-list")
            if path.startswith("/api/") or request.method not in SAFE_METHODS:
                return JSONResponse({"error": "login required"}, status_code=401)
            return RedirectResponse("/login?" + urlencode({"next": path}), status_code=303)
        if request.method not in SAFE_METHODS and not same_secret(
            request.headers.get(CSRF_HEADER), request.session.get("csrf")
        ):
            log.warning("request without a valid CSRF token refused", path=path)
            return JSONResponse({"error": "missing or wrong CSRF token; reload the page"}, status_code=403)
        return await call_next(request)

    # ------------------------------------------------------------------ login flow (OIDC)

    def redirect_uri(self) -> str:
        """From trusted settings only (a forged ``Host`` header must not choose where the provider sends the code):
        the public URL, else on a loopback bind the bind address (the settings refuse OIDC otherwise)."""
        path = self.settings.oidc_redirect_path  # /callback for a seed user: the URI their provider knows
        return self.settings.base_url().rstrip("/") + path

    async def login(self, request: Request) -> Response:
        if self.local:
            return _page(200, "Log in", LOCAL_LOGIN_HTML, new_link_form=True)
        assert self.oauth is not None
        request.session["next"] = same_site_path(request.query_params.get("next", "/"))
        try:
            return await self.oauth.oidc.authorize_redirect(request, self.redirect_uri())
        except Exception as exc:  # the provider's discovery document is unreachable or bad
            log.error("cannot start login: OpenID provider unavailable", error=str(exc)[:200])
            return _page(502, "Login unavailable", "The sign-in provider could not be reached. Try again later.")

    async def callback(self, request: Request) -> Response:
        if self.local or self.oauth is None:
            return RedirectResponse("/login", status_code=303)
        try:
            token = await self.oauth.oidc.authorize_access_token(request)
        except (OAuthError, ValueError, KeyError) as exc:
            log.warning("login failed", error=str(exc)[:200])
            return _page(400, "Login failed", "The sign-in could not be completed. Please try again.")
        except Exception as exc:  # bad token signature/claims (joserfc errors) or provider errors
            log.warning("login failed: ID token rejected", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            return _page(400, "Login failed", "The sign-in could not be verified. Please try again.")
        claims = token.get("userinfo")
        if not claims:
            log.warning("login refused: no ID token")
            return _page(400, "Login failed", "The provider returned no ID token.")
        email = str(claims.get("email") or "")
        if claims.get("email_verified") is not True:
            log.warning("login refused: e-mail not verified", email=email)
            return _page(403, "Access denied", "Your e-mail address is not verified by the sign-in provider.")
        if not self.email_allowed(email):
            log.warning("login refused: not on the allow-list", email=email, allow_list_size=len(self.allowed))
            return _page(403, "Access denied", "Your account is not on this dashboard's allow-list.")
        target = same_site_path(request.session.get("next", "/"))
        self.start_session(request, email.lower(), str(claims.get("sub", "")))
        log.info("login", email=email.lower())
        return RedirectResponse(target, status_code=303)

    async def new_link(self, request: Request) -> Response:
        """The login page's button: a new link in the log (only log readers see it), the old one dead."""
        if not self.local:
            return RedirectResponse("/login", status_code=303)
        printed = self.links.request_new()
        body = (
            "A new login link is in the dashboard's log now; the previous one no longer works."
            if printed
            else "A new link was printed a moment ago: look in the dashboard's log."
        )
        return _page(200, "New link printed", body)

    async def logout(self, request: Request) -> Response:
        sid = request.session.get("sid")
        if isinstance(sid, str):
            self.store.session_drop(sid)  # the cookie is dead from now on, wherever a copy of it is
        request.session.clear()
        return JSONResponse({"ok": True, "message": "logged out"})


LOCAL_LOGIN_HTML = (
    "This dashboard logs in with a link that it prints in its log (<code>.run/logs/dashboard.log</code> under "
    "<code>make run</code>, <code>docker compose logs dashboard</code> in Compose). Each link works once and for "
    "10 minutes."
)


def _deny(request: Request, status: int, message: str, new_link_form: bool = False) -> Response:
    if request.url.path.startswith("/api/") or request.method not in SAFE_METHODS:
        return JSONResponse({"error": message}, status_code=status)
    title = {403: "Access denied", 429: "Slow down"}.get(status, "Login required")
    return _page(status, title, message, new_link_form)


def _page(status: int, title: str, body_html: str, new_link_form: bool = False) -> Response:
    form = (
        "<form method='post' action='/login/new-link'><button type='submit'>Print a new login link in the log"
        "</button></form>"
        if new_link_form
        else "<p><a href='/login'>Log in</a></p>"
    )
    html = (
        "<!doctype html><html lang='en-GB'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><title>batsched · "
        f"{title}</title><link rel='icon' href='/favicon.svg' type='image/svg+xml'>"
        "<link rel='stylesheet' href='/static/style.css'></head><body class='plain'>"
        f"<main class='card narrow'><h1>{title}</h1><p>{body_html}</p>{form}</main></body></html>"
    )
    return Response(html, status_code=status, media_type="text/html")
