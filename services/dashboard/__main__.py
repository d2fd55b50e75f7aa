"""Dashboard service: the bus → live state + dashboard.db → web pages (SSE), and Control → MQTT commands."""

from __future__ import annotations

import secrets
import socket
import sys
from datetime import timedelta

from pydantic import SecretStr

from shared.ha import register_discovery
from shared.runner import ServiceContext, run_service
from shared.settings import load_settings

from .config import DashboardSettings, is_loopback, kept_session_secret
from .server import bind


def wire(ctx: ServiceContext[DashboardSettings], sock: socket.socket) -> None:
    # Imported here so that a configuration error is reported before the web stack is even loaded.
    from .app import create_app
    from .live import LiveState
    from .server import WebServer
    from .store import Store

    s = ctx.settings
    store = Store(ctx.data_path("dashboard.db"))
    live = LiveState(ctx.topics, ctx.clock, store)
    live.restore()
    ctx.bus.listen(ctx.topics.all, live.on_message)
    register_discovery(ctx.bus, list)  # Home Assistant: its connectivity sensor only

    local_token = secrets.token_urlsafe(24) if s.login_link else None
    session_secret = (
        s.dashboard_session_secret.get_secret_value() if s.dashboard_session_secret else secrets.token_urlsafe(48)
    )
    port = sock.getsockname()[1]
    # The public URL is the address the browser uses (Compose: the published port), else this port here.
    base = (s.dashboard_public_url or f"http://localhost:{port}").rstrip("/")

    def announce(token: str) -> None:
        url = f"{base}/?token={token}"
        ctx.log.info(f"dashboard ({s.dashboard_auth} mode): open this link to log in (once, within 10 min)", url=url)
        print(f"batsched-dashboard: open {url}", file=sys.stderr, flush=True)

    app = create_app(s, live, store, ctx.bus, ctx.clock, local_token, session_secret, announce if local_token else None)
    web = WebServer(app, sock)
    web.start()
    ctx.on_stop(web.stop)
    ctx.on_stop(store.close)  # after the web server: no page reads it any more
    ctx.every(3600, lambda: store.prune(ctx.now() - timedelta(days=s.dashboard_history_days)), name="prune")

    if local_token:
        announce(local_token)
        if s.dashboard_auth == "link" and not is_loopback(s.dashboard_host):
            ctx.log.warning(
                "login by link on a network address: whoever reads this log or the link can steer the battery; "
                "use BATSCHED_DASHBOARD_AUTH=oidc for a real installation"
            )
    else:
        ctx.log.info("dashboard listening", host=s.dashboard_host, port=port, allowed=len(s.allowed_emails()))
        if not s.allowed_emails():
            ctx.log.warning("the e-mail allow-list is empty: nobody can log in (set BATSCHED_AUTHORIZED_EMAILS)")


def main() -> int:
    settings = load_settings(DashboardSettings, "dashboard")
    if settings.dashboard_session_secret is None and "short_session_secret" in settings.seed_resolution.flags:
        # The seed's FLASK_SECRET_KEY is too short to sign with (the start-up log says so): a kept random one.
        settings.dashboard_session_secret = SecretStr(kept_session_secret(settings.data_dir))
    problem = settings.startup_problem()
    if problem:
        print(f"batsched-dashboard: configuration error: {problem}", file=sys.stderr)
        return 2
    try:
        sock = bind(settings.dashboard_host, settings.dashboard_port)
    except OSError as exc:
        print(
            f"batsched-dashboard: cannot listen on {settings.dashboard_host}:{settings.dashboard_port}: {exc}",
            file=sys.stderr,
        )
        return 1
    return run_service("dashboard", DashboardSettings, lambda ctx: wire(ctx, sock), settings=settings)


if __name__ == "__main__":
    raise SystemExit(main())
