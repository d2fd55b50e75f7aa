"""The dashboard's web app (FastAPI on uvicorn).

Why FastAPI + uvicorn rather than Flask + waitress: Server-Sent Events need many long-lived responses, which an
asyncio server holds for free while a thread-per-request WSGI server would pin a thread per open tab; FastAPI
also runs the blocking Control calls (which wait for an MQTT answer) in its thread pool without extra code.
SSE is written with Starlette's ``StreamingResponse`` (no extra dependency): the protocol is a few lines of
text, and one-way server → browser push is all the pages need (``EventSource`` reconnects by itself).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from shared.bus import Bus
from shared.clock import Clock
from shared.slots import local_date
from shared.topics import ACCOUNTING_MONEY, EXECUTOR_APPLIED, PLAN, PLANNER_SETTING

from . import charts, extras_view, history, history_spans, money_view, seed_api, views
from .auth import Auth, csrf_token
from .config import DashboardSettings
from .control import Controller, Outcome
from .inputs import DryRunIn, ModeIn, OverrideIn, SettingIn, WindowDeleteIn, WindowIn
from .live import LiveState
from .local_time import control_clock, parse_local
from .login_links import LoginLinks
from .store import Store

HERE = Path(__file__).resolve().parent
PLOTLY_JS = HERE / "static" / "plotly.min.js"  # plotly.js as published (MIT), see static/README.md
FAVICON = HERE / "static" / "favicon.svg"
HSTS = "max-age=31536000"  # only when the public URL is https: a browser then never tries plain http
# Topics (below the prefix) whose change redraws the Plan chart: its inputs and the peak window it shades.
PLAN_TOPICS = frozenset(
    [c.path for c in charts.CHART_INPUTS]
    + [PLANNER_SETTING.at(setting=name).path for name in ("peak_start_local", "peak_end_local")]
)
STOP = "\x00stop"  # not a topic name: tells an event stream to end
TICK_S = 5.0  # the Now page's ages move on even when nothing arrives
MAX_EXTERNAL = 20  # /update_status sources kept (a key holder must not grow memory without bound)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


REPORT_CSP = (
    "sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
)


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), default=str)}\n\n"


def create_app(
    settings: DashboardSettings,
    live: LiveState,
    store: Store,
    bus: Bus,
    clock: Clock,
    local_token: str | None = None,
    session_secret: str | None = None,
    announce_link: Callable[[str], None] | None = None,
) -> FastAPI:
    """``local_token``: the login link printed at start (local/link modes); ``announce_link`` prints each new one."""
    tz = settings.tz
    auth = Auth(settings, LoginLinks(announce_link, local_token), store)
    control = Controller(bus, live, clock, settings.dashboard_command_timeout_s)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    external: dict[str, dict[str, str]] = {}  # /update_status notes from machines, shown on the Now page
    app = FastAPI(title="batsched dashboard", docs_url=None, redoc_url=None, openapi_url=None)

    def now_doc() -> dict[str, Any]:
        entries, now = live.snapshot(), clock.now()
        doc = views.now_view(entries, now, tz, settings.dashboard_heartbeat_stale_s, bus.connected)
        doc["external"] = list(external.values())
        doc["windows"] = extras_view.windows_view(entries, now, tz)
        doc["sessions"] = extras_view.sessions_view(entries, now, tz)
        doc["warnings"] += extras_view.warnings(entries, now, tz)
        doc["clock"] = control_clock(now, tz)
        doc["money_today"] = money_view.today_text(entries)
        return doc

    def plan_doc() -> dict[str, Any]:
        entries = live.snapshot()
        doc = charts.plan_figure(entries, clock.now(), tz)
        doc["comparison"] = money_view.plan_comparison(views.parse(entries, PLAN))
        return doc

    # ------------------------------------------------------------------ middleware (order: last added runs first)

    app.middleware("http")(auth.middleware)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret or settings.dashboard_session_secret.get_secret_value(),  # type: ignore[union-attr]
        session_cookie="batsched_session",
        max_age=settings.dashboard_session_max_age_s,
        same_site="lax",
        https_only=settings.https,
    )

    @app.middleware("http")  # outermost: denials get the headers too
    async def headers(request: Request, call_next: Callable[..., Any]) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", "no-store")
        if settings.https:
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response

    # ------------------------------------------------------------------ pages

    def page(name: str, request: Request, title: str) -> HTMLResponse:
        user = auth.user(request) or {}
        return templates.TemplateResponse(
            request,
            f"{name}.html",
            {"title": title, "page": name, "csrf": csrf_token(request), "user": user.get("email", "")},
        )

    @app.get("/", response_class=HTMLResponse)
    def now_page(request: Request) -> HTMLResponse:
        return page("now", request, "Now")

    @app.get("/plan", response_class=HTMLResponse)
    def plan_page(request: Request) -> HTMLResponse:
        return page("plan", request, "Plan")

    @app.get("/history", response_class=HTMLResponse)
    def history_page(request: Request) -> HTMLResponse:
        return page("history", request, "History")

    @app.get("/money", response_class=HTMLResponse)
    def money_page(request: Request) -> HTMLResponse:
        return page("money", request, "Money")

    @app.get("/control", response_class=HTMLResponse)
    def control_page(request: Request) -> HTMLResponse:
        return page("control", request, "Control")

    @app.get("/reports/tariffs", response_class=HTMLResponse)
    def tariff_report() -> Response:
        """The latest ``batsched compare-tariffs`` report, as the command wrote it (its chart's script inline, so
        it is served sandboxed: scripts run in an origin of their own, with no access to the dashboard)."""
        path = settings.dashboard_tariff_report or settings.data_dir / "tariff-report" / "compare-tariffs.html"
        try:
            body = path.read_text(encoding="utf-8")
        except OSError:
            return PlainTextResponse(
                "No tariff comparison yet: run `batsched compare-tariffs --out <data dir>/tariff-report`.",
                status_code=404,
            )
        return HTMLResponse(body, headers={"Content-Security-Policy": REPORT_CSP})

    @app.get("/static/plotly.min.js")
    def plotly_js() -> FileResponse:
        return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.get("/favicon.ico")  # browsers ask for it on every page: an answer, not a redirect to /login
    @app.get("/favicon.svg")
    def favicon() -> FileResponse:
        return FileResponse(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        allowed = {"app.js": "text/javascript", "style.css": "text/css"}
        if name not in allowed:
            return PlainTextResponse("not found", status_code=404)
        return FileResponse(HERE / "static" / name, media_type=allowed[name])

    # ------------------------------------------------------------------ data (JSON)

    @app.get("/api/now")
    def api_now() -> dict[str, Any]:
        return now_doc()

    @app.get("/api/money")
    def api_money() -> dict[str, Any]:
        return money_view.money_page(live.snapshot())

    @app.get("/api/plan")
    def api_plan() -> dict[str, Any]:
        return plan_doc()

    def parse_day(day: str | None) -> date:
        if not day:
            return local_date(clock.now(), tz)
        return date.fromisoformat(day)

    @app.get("/api/history")
    def api_history(day: str | None = None) -> Response:
        try:
            chosen = parse_day(day)
        except ValueError:
            return JSONResponse({"error": f"bad day {day!r}: use YYYY-MM-DD"}, status_code=422)
        start, end = history.day_range(chosen, tz)
        decisions = store.decisions_between(start, end)
        doc = history_spans.page(chosen, local_date(clock.now(), tz), decisions, tz)
        doc["rows"] = history.decision_rows(decisions, tz)  # the CSV's rows, as JSON (scripts read these)
        return JSONResponse(doc)

    @app.get("/api/history.csv")
    def api_history_csv(day: str | None = None) -> Response:
        try:
            chosen = parse_day(day)
        except ValueError:
            return PlainTextResponse(f"bad day {day!r}: use YYYY-MM-DD", status_code=422)
        start, end = history.day_range(chosen, tz)
        body = history.decisions_csv(history.decision_rows(store.decisions_between(start, end), tz))
        return Response(
            body,
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="batsched-decisions-{chosen.isoformat()}.csv"'},
        )

    @app.get("/api/history/chart")
    def api_history_chart(days: int = 7) -> dict[str, Any]:
        days = max(1, min(days, settings.dashboard_history_days))
        end = clock.now()
        start = end - timedelta(days=days)
        return charts.history_figure(store.battery_between(start, end), store.prices_between(start, end), tz)

    streams: set[Callable[[str], None]] = set()

    def close_streams() -> None:
        """At shutdown: end every open event stream now, so uvicorn can finish without cutting them."""
        for wake in list(streams):
            wake(STOP)

    app.state.close_streams = close_streams

    @app.get("/api/events")
    async def events(request: Request) -> StreamingResponse:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str] = asyncio.Queue()

        def listener(name: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, name)

        async def stream() -> AsyncIterator[str]:
            live.add_listener(listener)
            streams.add(listener)
            try:
                yield "retry: 2000\n\n"
                yield sse("now", now_doc())
                yield sse("plan", plan_doc())
                while True:
                    try:
                        names = {await asyncio.wait_for(queue.get(), TICK_S)}
                    except TimeoutError:
                        names = set()
                    while not queue.empty():  # coalesce a burst (e.g. retained messages on reconnect)
                        names.add(queue.get_nowait())
                    if STOP in names or await request.is_disconnected():
                        return
                    yield sse("now", now_doc())
                    if names & PLAN_TOPICS:
                        yield sse("plan", plan_doc())
                    if ACCOUNTING_MONEY.path in names:
                        yield sse("money", {})
                    if EXECUTOR_APPLIED.path in names:
                        yield sse("applied", {"day": local_date(clock.now(), tz).isoformat()})
            finally:
                live.remove_listener(listener)
                streams.discard(listener)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    # ------------------------------------------------------------------ control (POST, CSRF-checked)

    def reply(outcome: Outcome) -> JSONResponse:
        doc = outcome.as_dict()
        doc["at"] = clock.now().astimezone(tz).strftime("%H:%M:%S")  # the system's time, not the browser's
        return JSONResponse(doc, status_code=outcome.status)

    def local_or(given: datetime | None, day: str | None, hhmm: str | None) -> datetime | None:
        return parse_local(day, hhmm, tz) if day and hhmm else given

    @app.post("/api/control/mode")
    def set_mode(body: ModeIn) -> JSONResponse:
        return reply(control.set_mode(body.mode))

    @app.post("/api/control/dry_run")
    def set_dry_run(body: DryRunIn) -> JSONResponse:
        return reply(control.set_dry_run(body.enabled))

    @app.post("/api/control/override")
    def override(body: OverrideIn) -> JSONResponse:
        try:
            until = local_or(body.until, body.until_day, body.until_hhmm)
        except ValueError as exc:
            return reply(Outcome(False, f"override: {exc}", 422))
        return reply(control.override(body.action, until, body.target_soc_pct))

    @app.post("/api/control/replan")
    def replan() -> JSONResponse:
        return reply(control.replan())

    @app.get("/api/windows")
    def api_windows() -> dict[str, Any]:
        return {"windows": extras_view.windows_view(live.snapshot(), clock.now(), tz)}

    @app.post("/api/control/window")
    def add_window(body: WindowIn) -> JSONResponse:
        try:
            start = local_or(body.start, body.start_day, body.start_hhmm)
            end = local_or(body.end, body.end_day, body.end_hhmm)
        except ValueError as exc:
            return reply(Outcome(False, f"window: {exc}", 422))
        return reply(control.add_window(start, end, body.action, body.target_soc_pct, "dashboard"))

    @app.post("/api/control/window/delete")
    def delete_window(body: WindowDeleteIn) -> JSONResponse:
        return reply(control.delete_window(body.window_id, "dashboard"))

    @app.post("/api/control/setting")
    def setting(body: SettingIn) -> JSONResponse:
        return reply(control.set_planner(body.name, body.value))

    # ------------------------------------------------------------------ login, logout, machine endpoint, health

    @app.get("/login")
    async def login(request: Request) -> Response:
        return await auth.login(request)

    @app.post("/login/new-link")
    async def new_link(request: Request) -> Response:
        return await auth.new_link(request)

    @app.get("/auth/callback", name="auth_callback")
    async def auth_callback(request: Request) -> Response:
        return await auth.callback(request)

    @app.get("/callback", name="seed_callback")  # the seed's redirect URI, kept so its provider set-up still works
    async def seed_callback(request: Request) -> Response:
        return await auth.callback(request)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        return await auth.logout(request)

    seed_api.register(app, control, live, clock, tz, external, MAX_EXTERNAL)  # the original app's endpoints

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        entries = live.snapshot()
        reasons = [] if bus.connected else ["MQTT broker not connected"]
        for f in views.freshness(entries, clock.now()):
            if f.name in views.FRESHNESS_FOR_HEALTH and f.state != "fresh":
                reasons.append(f"{f.label}: {f.state} ({f.detail})")
        body = {"status": "ok" if not reasons else "unhealthy", "reasons": reasons}
        return JSONResponse(body, status_code=200 if not reasons else 503)

    return app
