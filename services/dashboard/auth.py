"""Who may see and change things: OpenID Connect login, a fail-closed allow-list, CSRF, local token, API key.

Rules (the seed's dashboard let anyone in when its list was empty, and trusted any proxy header):
- every route needs a logged-in session except the login pages, ``/healthz`` and the API-key endpoint;
  pages redirect to ``/login``, API calls get 401;
- the allow-list of e-mails is checked at login AND on every request, and an empty list admits nobody;
- the provider must say the e-mail is verified (``email_verified`` true in the signed ID token);
- the ID token's signature, ``iss``, ``aud``, ``exp`` and ``nonce`` are checked by authlib; PKCE (S256) is used;
- every state-changing request (not GET/HEAD/OPTIONS) needs the session's CSRF token in ``X-CSRF-Token``;
- local mode (``make run``): no provider; a random token printed at start logs the browser in (as Jupyter
  does). Only ever on a loopback bind (checked at start-up by the settings). ``link`` mode is the same on any
  address, for the Compose demo, whose dashboard listens on the container's network (its log says so).
- the machine endpoint takes its key from the ``X-API-Key`` header only, compared in constant time;
- the original app's endpoints (``seed_api.py``) take a session or that key, and refuse cross-site requests.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

from authlib.integrations.starlette_client import OAuth, OAuthError
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from shared.logging import get_logger

from .config import DashboardSettings
from .seed_api import is_seed_path, seed_access

log = get_logger("batsched.dashboard.auth")

# The style sheet is public so the login and error pages look right before login; it holds no data.
PUBLIC_PATHS = frozenset({"/login", "/auth/callback", "/callback", "/healthz", "/health", "/static/style.css"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALLOWED_NEXT = frozenset({"/", "/plan", "/history", "/control"})  # where a login may return to
CSRF_HEADER = "x-csrf-token"
LOCAL_USER = "local"
MAX_BAD_TOKENS = 10  # wrong local-login tokens per minute before all token logins pause (guessing is futile
BAD_TOKEN_WINDOW_S = 60.0  # anyway with 192 random bits; this keeps the log quiet and the CPU idle)


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
    def __init__(self, settings: DashboardSettings, local_token: str | None) -> None:
        self.settings = settings
        self.local = settings.login_link
        self.local_token = local_token
        self._bad_tokens: deque[float] = deque()
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
        if self.local:
            return user if user.get("email") == LOCAL_USER else None
        return user if self.email_allowed(user.get("email")) else None

    def email_allowed(self, email: Any) -> bool:
        # An empty allow-list admits nobody: ``in`` on an empty set is always False.
        return isinstance(email, str) and email.strip().lower() in self.allowed

    # ------------------------------------------------------------------ middleware

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        path = request.url.path
        if self.local and "token" in request.query_params and request.method == "GET":
            if self._too_many_bad_tokens():
                return _deny(request, 429, "too many wrong login tokens; wait a minute")
            if same_secret(request.query_params.get("token"), self.local_token):
                request.session.clear()
                request.session["user"] = {"email": LOCAL_USER, "sub": LOCAL_USER}
                csrf_token(request)
                log.info("local login")
                return RedirectResponse(path if path not in PUBLIC_PATHS else "/", status_code=303)
            self._bad_tokens.append(time.monotonic())
            log.warning("wrong local login token")
            return _deny(request, 401, "wrong or expired login token: use the link printed in the dashboard's log")
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
                request.session.clear()  # was allowed once, is not any more (list changed)
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

    def _too_many_bad_tokens(self) -> bool:
        cutoff = time.monotonic() - BAD_TOKEN_WINDOW_S
        while self._bad_tokens and self._bad_tokens[0] < cutoff:
            self._bad_tokens.popleft()
        return len(self._bad_tokens) >= MAX_BAD_TOKENS

    # ------------------------------------------------------------------ login flow (OIDC)

    def redirect_uri(self, request: Request) -> str:
        path = self.settings.oidc_redirect_path  # /callback for a seed user: the URI their provider knows
        if self.settings.dashboard_public_url:
            return self.settings.dashboard_public_url.rstrip("/") + path
        return str(request.url_for("auth_callback" if path == "/auth/callback" else "seed_callback"))

    async def login(self, request: Request) -> Response:
        if self.local:
            return _page(
                200,
                "Log in",
                "This dashboard runs in local mode. Open the link with <code>?token=…</code> that the dashboard "
                "printed in its log when it started (<code>docker compose logs dashboard</code> in Compose, "
                "<code>.run/logs/dashboard.log</code> under <code>make run</code>).",
            )
        assert self.oauth is not None
        target = request.query_params.get("next", "/")
        # Only a path on this site: never "//host" or a full URL (no open redirect).
        request.session["next"] = target if target.startswith("/") and not target.startswith("//") else "/"
        try:
            return await self.oauth.oidc.authorize_redirect(request, self.redirect_uri(request))
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
        target = request.session.get("next", "/")
        request.session.clear()  # a fresh session at login (no fixation)
        request.session["user"] = {"email": email.lower(), "sub": str(claims.get("sub", ""))}
        csrf_token(request)
        log.info("login", email=email.lower())
        return RedirectResponse(target if target in ALLOWED_NEXT else "/", status_code=303)

    async def logout(self, request: Request) -> Response:
        request.session.clear()
        return JSONResponse({"ok": True, "message": "logged out"})


def _deny(request: Request, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/") or request.method not in SAFE_METHODS:
        return JSONResponse({"error": message}, status_code=status)
    title = {403: "Access denied", 429: "Slow down"}.get(status, "Login required")
    return _page(status, title, message)


def _page(status: int, title: str, body_html: str) -> Response:
    html = (
        "<!doctype html><html><head><meta charset='utf-8'><title>batsched · "
        f"{title}</title><link rel='stylesheet' href='/static/style.css'></head><body class='plain'>"
        f"<main class='card narrow'><h1>{title}</h1><p>{body_html}</p>"
        "<p><a href='/login'>Log in</a></p></main></body></html>"
    )
    return Response(html, status_code=status, media_type="text/html")
