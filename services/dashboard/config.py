"""Dashboard settings: where it listens, how people log in, who may, and when data counts as stale.

Secrets (session secret, OIDC client secret, machine API key) come from secret files named after the setting
(`dashboard_session_secret`, `oidc_client_secret`, `dashboard_api_key`) or the environment.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr

from shared.settings import ServiceSettings, env

GOOGLE_METADATA = "https://accounts.google.com/.well-known/openid-configuration"
MIN_SECRET_BYTES = 32
SESSION_SECRET_FILE = "dashboard_session_secret"  # in the data directory, when the seed's key is too short


class DashboardSettings(ServiceSettings):
    dashboard_host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in a container)")
    dashboard_port: Annotated[int, Field(ge=1, le=65535)] = Field(
        5000, validation_alias=env("dashboard_port", "KEEP_ALIVE_PORT")
    )
    dashboard_auth: Literal["oidc", "local", "link"] = Field(
        "oidc",
        description="oidc: OpenID Connect login; local: a login link with a random token printed in the log, "
        "loopback only (make run); link: the same on any address (the Compose demo: whoever has the link gets in)",
    )
    dashboard_public_url: str | None = Field(
        None,
        pattern=r"^(https?://[^/?#\s]+(/[^?#\s]*)?)?$",  # empty = unset
        description="External URL, e.g. https://battery.example.org: the OpenID redirect URI is built from it "
        "(required for oidc on a network address); https makes the cookie Secure and turns on HSTS",
    )
    dashboard_session_secret: SecretStr | None = Field(
        None,
        validation_alias=env("dashboard_session_secret", "SECRET_KEY"),
        description="Signs the session cookie; at least 32 bytes (secret file `dashboard_session_secret`)",
    )
    dashboard_session_max_age_s: int = Field(8 * 3600, description="Session lifetime (s)")
    oidc_metadata_url: str = Field(
        GOOGLE_METADATA,
        validation_alias=env("oidc_metadata_url", "OIDC_ISSUER_METADATA"),
        description="OpenID provider discovery document (Google by default)",
    )
    oidc_client_id: str | None = Field(None, validation_alias=env("oidc_client_id", "GOOGLE_CLIENT_ID"))
    oidc_redirect_path: str = Field(
        "/auth/callback",
        pattern=r"^/(auth/)?callback$",
        description="Path of the login redirect URI registered with the provider (the seed's is /callback)",
    )
    oidc_client_secret: SecretStr | None = Field(
        None, validation_alias=env("oidc_client_secret", "GOOGLE_CLIENT_SECRET")
    )
    authorized_emails: str = Field(
        "",
        validation_alias=env("authorized_emails", "AUTHORIZED_EMAILS"),
        description="Comma-separated e-mails allowed in; EMPTY MEANS NOBODY",
    )
    dashboard_api_key: SecretStr | None = Field(
        None,
        validation_alias=env("dashboard_api_key", "API_KEY"),
        description="Key for the machine endpoints (/update_status, /status and the original app's schedule "
        "endpoints; header X-API-Key, never in the URL); unset: only a logged-in session may use them",
    )
    dashboard_command_timeout_s: Annotated[float, Field(gt=0, le=120)] = Field(
        8.0, description="How long the Control page waits for a command's result or a setting's echo"
    )
    dashboard_history_days: Annotated[int, Field(ge=1, le=3650)] = Field(
        60, description="History kept in dashboard.db (days)"
    )
    dashboard_tariff_report: Path | None = Field(
        None,
        description="The latest `batsched compare-tariffs` report linked from the dashboard "
        "(default: <data dir>/tariff-report/compare-tariffs.html, i.e. run it with --out <data dir>/tariff-report)",
    )
    dashboard_heartbeat_stale_s: Annotated[float, Field(gt=0)] = Field(
        180.0, description="Executor heartbeat older than this (clock time) is shown as stale"
    )

    def allowed_emails(self) -> frozenset[str]:
        return frozenset(e.strip().lower() for e in self.authorized_emails.split(",") if e.strip())

    @property
    def https(self) -> bool:
        return bool(self.dashboard_public_url and self.dashboard_public_url.lower().startswith("https://"))

    def base_url(self) -> str:
        """Where browsers reach this dashboard, from settings only: the public URL, else the bind address."""
        if self.dashboard_public_url:
            return self.dashboard_public_url.rstrip("/")
        host = self.dashboard_host.strip("[]")
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.dashboard_port}"

    @property
    def login_link(self) -> bool:
        """Logged in by the random-token link the dashboard prints at start (``local`` and ``link``)."""
        return self.dashboard_auth in ("local", "link")

    def startup_problem(self) -> str | None:
        """Why the dashboard must not start with these settings (one line), or None."""
        if self.dashboard_auth == "local":
            if not is_loopback(self.dashboard_host):
                return (
                    f"BATSCHED_DASHBOARD_AUTH=local only binds to loopback (127.0.0.1, ::1, localhost); "
                    f"BATSCHED_DASHBOARD_HOST is {self.dashboard_host!r}: use oidc for any other address"
                )
            return None
        if self.dashboard_auth == "link":
            return None
        secret = self.dashboard_session_secret.get_secret_value() if self.dashboard_session_secret else ""
        if not secret:
            return (
                "BATSCHED_DASHBOARD_SESSION_SECRET (or SECRET_KEY, or the secret file dashboard_session_secret) "
                "is required when login is enabled"
            )
        if len(secret.encode()) < MIN_SECRET_BYTES:
            return f"BATSCHED_DASHBOARD_SESSION_SECRET must be at least {MIN_SECRET_BYTES} bytes"
        if not self.oidc_client_id or not self.oidc_client_secret:
            return "BATSCHED_OIDC_CLIENT_ID and BATSCHED_OIDC_CLIENT_SECRET are required for OpenID Connect login"
        if not self.dashboard_public_url and not is_loopback(self.dashboard_host):
            return (
                "BATSCHED_DASHBOARD_PUBLIC_URL is required for OpenID Connect login on a network address: the "
                "provider's redirect URI is built from it (never from a request's Host header)"
            )
        return None


def kept_session_secret(data_dir: Path) -> str:
    """A random session secret kept in the data directory (created once, readable by this user only): used when
    the seed's ``FLASK_SECRET_KEY`` is too short to sign sessions with."""
    path = data_dir / SESSION_SECRET_FILE
    try:
        text = path.read_text().strip()
        if len(text.encode()) >= MIN_SECRET_BYTES:
            return text
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    text = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    return text


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
