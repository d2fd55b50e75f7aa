"""The original app's REST endpoints, kept so its users' scripts and habits still work, on batsched's windows.

=====================================  ======================================================================
``POST /putSchedule``                  ``{"start_time": "2025-11-05T01:30", "end_time": …, "target_soc": 98}``
                                       (local times as a ``datetime-local`` field gives them) → a charge window;
                                       ``{"message": "Manual schedule added successfully!", "id": 4}``
``GET /getPendingSchedules``           the pending windows in the seed's row shape (local times as text)
``DELETE /delSchedule/<id>``           ``{"status": "ok", "message": "Schedule 4 is deleted"}``
``GET /status``                        the seed's status document from what batsched knows (price in pence)
``POST /update_status``                a JSON object of status keys (the seed's executor posted these), shown
                                       on the Now page; batsched's own ``{"source", "status", "detail"}`` too
``GET /health``                        ``{"status": "ok", "time": …}``, public
=====================================  ======================================================================

Who may call them (safer than the seed): a logged-in session, or the ``x-api-key`` header equal to the key
(``KEEP_ALIVE_API_KEY`` / ``BATSCHED_DASHBOARD_API_KEY``), compared in constant time. A key in the query string is
refused (it would end up in logs); the seed's "any request from 127.0.0.1" is not kept (a reverse proxy makes
every request local). Cross-site requests cannot use a session: the seed's own JavaScript sends no CSRF token,
so a session request that changes something must come from this site (``Origin``/``Sec-Fetch-Site``, when the
browser sends them) and a POST must be JSON (a cross-site form cannot send that without a CORS preflight, which
this server never allows); a request with the page's ``X-CSRF-Token`` passes as everywhere else. Every change
is a command to the executor, answered by it: a charge window in the peak is refused with the reason.
"""

from __future__ import annotations

import hmac
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from shared.slots import slot_start
from shared.topics import (
    BATTERY_STATE,
    EXECUTOR_APPLIED,
    EXECUTOR_WINDOWS,
    IMPORT_CURRENT,
    IMPORT_RATES,
    PLAN,
    PLAN_CURRENT,
    Channel,
)

from . import views
from .control import Controller
from .live import LiveState

SEED_PATHS = ("/putSchedule", "/getPendingSchedules", "/delSchedule/", "/status", "/update_status")
SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_STATUS_KEYS = 20
DEFAULT_TARGET = 98  # the seed's default target SOC for a manual schedule


def is_seed_path(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in SEED_PATHS)


def _same_origin(request: Request) -> bool:
    """What the browser says of where the request comes from, when it says it (every current browser does on a
    cross-site POST or DELETE; the session cookie is SameSite=Lax, so such a request has no session anyway)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin.split("://", 1)[-1].rstrip("/") == request.headers.get("host", "")


def seed_access(
    request: Request, api_key: str | None, user: dict[str, Any] | None, csrf: str | None
) -> Response | None:
    """None when the request may go on; else the answer (401/403/400, in the seed's ``{"error": …}`` shape)."""
    if "api_key" in request.query_params or "x-api-key" in request.query_params:
        return JSONResponse({"error": "Unauthorized: the API key goes in the x-api-key header, never in the URL"}, 401)
    given = request.headers.get("x-api-key")
    if given is not None:
        if api_key and hmac.compare_digest(given.encode(), api_key.encode()):
            return None
        return JSONResponse({"error": "Unauthorized"}, status_code=401)
    if user is None:
        return JSONResponse({"error": "Unauthorized"}, status_code=401)
    if request.method in SAFE:
        return None
    token = request.headers.get("x-csrf-token")
    if token and csrf and hmac.compare_digest(token.encode(), csrf.encode()):
        return None
    if not _same_origin(request):
        return JSONResponse({"error": "cross-site request refused"}, status_code=403)
    if request.method == "POST" and "application/json" not in request.headers.get("content-type", "").lower():
        return JSONResponse({"error": "send JSON (Content-Type: application/json)"}, status_code=415)
    return None


def _local_time(text: Any, tz: ZoneInfo) -> datetime:
    """A seed time: ``YYYY-MM-DDTHH:MM`` local (its datetime-local fields), or any ISO time with an offset."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("start_time and end_time are required, e.g. 2025-11-05T01:30")
    t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        from shared.slots import local_wall_time

        t = local_wall_time(t.date(), t.time(), tz)
    return t


def _text(t: datetime | None, tz: ZoneInfo) -> str | None:
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S") if t else None


def register(
    app: FastAPI, control: Controller, live: LiveState, clock: Any, tz: ZoneInfo, external: dict[str, dict[str, str]],
    max_external: int,
) -> None:  # fmt: skip
    started = time.monotonic()

    def parse(channel: Channel) -> Any:
        return views.parse(live.snapshot(), channel)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "time": clock.now().astimezone(tz).isoformat()}

    @app.post("/putSchedule")
    async def put_schedule(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("send a JSON object")
            start = _local_time(body.get("start_time"), tz)
            end = _local_time(body.get("end_time"), tz)
            raw = body.get("target_soc", DEFAULT_TARGET)
            target = float(raw) if raw not in (None, "") else float(DEFAULT_TARGET)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"message": f"Failed to add schedule: {exc}"}, status_code=422)
        import anyio

        out = await anyio.to_thread.run_sync(lambda: control.add_window(start, end, "charge", target, "api"))
        if not out.ok:
            status = {502: 409}.get(out.status, out.status)  # refused by the executor: a conflict, not a crash
            return JSONResponse({"message": f"Failed to add schedule: {out.message}"}, status_code=status)
        window = out.data.get("window", {})
        return JSONResponse(
            {
                "message": "Manual schedule added successfully!",
                "id": window.get("window_id"),
                "note": out.data.get("note"),
            }
        )

    @app.get("/getPendingSchedules")
    def pending_schedules() -> list[dict[str, Any]]:
        listed = parse(EXECUTOR_WINDOWS)
        rates = parse(IMPORT_RATES)
        now = clock.now()
        out = []
        for w in listed.windows if listed else []:
            if w.end <= now:
                continue
            price = rates.price_at(slot_start(w.start)) if rates else None
            scheduler = w.source == "seed:scheduler"
            out.append(
                {
                    "id": w.window_id,
                    "start_time": _text(w.start, tz),
                    "end_time": _text(w.end, tz),
                    "target_soc": w.target_soc_pct if w.target_soc_pct is not None else "-",
                    "price_p_per_kwh": round(price * 100, 2) if price is not None else "-",
                    "manual_override": not scheduler,
                    "source": "scheduler" if scheduler else "manual",
                    "mode": w.action if not scheduler else "autonomous",
                }
            )
        return out

    @app.delete("/delSchedule/{schedule_id}")
    def del_schedule(schedule_id: int) -> JSONResponse:
        out = control.delete_window(schedule_id, "api")
        if out.ok:
            return JSONResponse({"status": "ok", "message": f"Schedule {schedule_id} is deleted"})
        status = 404 if "no pending window" in out.message else out.status
        return JSONResponse({"status": "error", "message": out.message}, status_code=status)

    @app.get("/status")
    def status() -> dict[str, Any]:
        battery = parse(BATTERY_STATE)
        current = parse(IMPORT_CURRENT)
        applied = parse(EXECUTOR_APPLIED)
        plan = parse(PLAN)
        plan_now = parse(PLAN_CURRENT)
        listed = parse(EXECUTOR_WINDOWS)
        now = clock.now()
        active = listed.at(now) if listed else None
        upcoming = [w.start for w in (listed.windows if listed else []) if w.start > now]
        if plan_now is not None and plan_now.next_charge_start is not None:
            upcoming.append(plan_now.next_charge_start)
        message = "no decision from the executor yet"
        if applied is not None:
            message = f"{applied.action.value if applied.action else 'stand aside'} ({applied.outcome})"
            blocked = [f"{r.rule}: {r.detail or r.verdict}" for r in applied.rules if r.verdict == "blocked"]
            if blocked:
                message += " — " + "; ".join(blocked)
        price = current.value_inc_vat if current is not None and current.known else None
        return {
            "executor_status_msg": message,
            "last_scheduler_run": _text(plan.generated_at, tz) if plan else "Not yet run",
            "next_schedule_time": _text(min(upcoming), tz) if upcoming else None,
            "active_schedule_id": active.window_id if active else None,
            "current_price": round(price * 100, 2) if price is not None else None,
            "soc": battery.soc_pct if battery else None,
            "solar_power": battery.solar_power_w if battery else None,
            "island": battery.grid_status.value if battery else None,
            "uptime": round(time.monotonic() - started, 1),
        }

    @app.post("/update_status")
    async def update_status(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "invalid status: the body is not JSON"}, status_code=422)
        if not isinstance(body, dict) or not body:
            return JSONResponse({"error": "No JSON payload provided"}, status_code=400)
        if "source" in body and "status" in body:  # batsched's own shape
            from .inputs import StatusIn

            try:
                doc = StatusIn.model_validate(body)
            except ValidationError as exc:
                return JSONResponse({"error": f"invalid status: {str(exc)[:200]}"}, status_code=422)
            source, state, detail, reply = doc.source, doc.status, doc.detail, {"ok": True}
        else:  # the seed's: any of its EXECUTOR_STATUS keys
            if len(body) > MAX_STATUS_KEYS:
                return JSONResponse({"error": f"at most {MAX_STATUS_KEYS} keys"}, status_code=422)
            source = "seed-executor"
            state = str(body.get("message") or body.get("executor_status_msg") or "status")[:40]
            detail = "; ".join(f"{k}={str(v)[:60]}" for k, v in body.items() if k != "message")[:500]
            reply = {"status": "ok"}
        if source not in external and len(external) >= max_external:
            return JSONResponse({"error": f"at most {max_external} status sources"}, status_code=429)
        external[source] = {"source": source, "status": state, "detail": detail,
                            "at": views.local_text(clock.now(), tz)}  # fmt: skip
        return JSONResponse(reply)
