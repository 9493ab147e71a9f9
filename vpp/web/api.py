"""The operator's JSON API: reads for the page, token-guarded writes for operator actions.

==========  =====================  =============================================================
method      path                   what
==========  =====================  =============================================================
GET         /api/status            site, time, dry-run, grid against its limits, fleet, plan info
GET         /api/plan              plan steps with planned and (where begun) measured values
GET         /api/devices           device table with comms state, worst first (``?limit=N``)
GET         /api/alerts            active conditions and recent events
GET         /api/caps              operator caps in force or to come
POST        /api/caps              set a cap: direction, limit_w, start, end, reason
DELETE      /api/caps/{id}         remove a cap
POST        /api/pause             ``{"dry_run": true|false}``: pause or resume control (paused:
                                   nothing is written; devices fall back to their own control
                                   when their revert timers run out)
POST        /api/replan            plan and dispatch now (in the background)
==========  =====================  =============================================================

Writes need ``Authorization: Bearer <token>`` with the token of ``[run] api_token`` or the
environment variable ``VPP_API_TOKEN`` (which wins). Without a configured token every write is
refused (403); a missing or wrong token gives 401; an invalid body 400 naming the field. The
token travels in a header only, never in a cookie, so another site cannot make a browser send
it (no CSRF), and no CORS headers are sent, so other origins cannot call the API from a page.

Handlers run on the HTTP server's thread: reads take the state as it is; writes are validated
there and then applied on the control loop (:mod:`vpp.web.link`). If the control loop does not
take a write within its deadline the answer is 503 and nothing changes.
"""

from __future__ import annotations

import hmac
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from vpp.control.state import ControllerState
from vpp.core.clock import Clock, floor_quarter
from vpp.web.actions import CapInput, Operator, PauseInput, ReplanInput
from vpp.web.alerts import alerts_view
from vpp.web.link import ControlBusy, ControlLink
from vpp.web.views import cap_view, caps_view, devices_view, iso, plan_view, status_view
from vpp.web.watch import Watch

TOKEN_ENV = "VPP_API_TOKEN"
#: Largest request body a write accepts, bytes.
MAX_BODY = 16 * 1024
CAP_ID = re.compile(r"^[0-9a-f]{12}$")
#: ``?limit=`` of /api/devices: ASCII digits only (``int`` also takes other scripts' digits).
LIMIT = re.compile(r"^[0-9]{1,7}$")
MAX_LIMIT = 1_000_000

M = TypeVar("M", bound=BaseModel)


class PlanCache:
    """The encoded steps and history of the last ``/api/plan`` answer, kept while the plan and
    the watched measurements stay the same. It is the largest answer (a 36 h plan has 144
    steps) and the one the page asks for most; with the cache a reader costs the server a
    fraction of a millisecond instead of several. Use it on one thread (the server's)."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._head: dict[str, Any] = {}
        self._steps = self._history = "[]"

    def body(self, state: ControllerState, watch: Watch, now: datetime) -> str:
        """The JSON text of :func:`~vpp.web.views.plan_view` for ``now``."""
        key = (state.plan, state.plan_created_at, watch.version, floor_quarter(now))
        old = self._key
        if old is None or old[0] is not key[0] or old[1:] != key[1:]:
            view = plan_view(state, watch, now)
            self._steps = json.dumps(view.pop("steps"))
            self._history = json.dumps(view.pop("history"))
            self._head = view
            self._key = key
        head = json.dumps({**self._head, "now": iso(now)})
        return f'{head[:-1]}, "steps": {self._steps}, "history": {self._history}}}'


@dataclass(frozen=True, slots=True)
class Api:
    """What the handlers share: the state, its watcher, the clock, the operator, the token,
    and the link to the control loop that operator actions run on."""

    state: ControllerState
    watch: Watch
    clock: Clock
    operator: Operator
    token: str | None
    link: ControlLink
    plan_cache: PlanCache = field(default_factory=PlanCache)

    def now(self) -> datetime:
        """The controller's now (UTC), after taking in what changed in the state."""
        now = self.clock.now()
        self.watch.sample(now)
        return now


API_KEY = web.AppKey("api", Api)


def configured_token(state: ControllerState) -> str | None:
    """The write token: ``VPP_API_TOKEN`` if set and not empty, else ``[run] api_token``."""
    token = os.environ.get(TOKEN_ENV) or state.site.run.api_token
    return token or None


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON that no cache keeps (the values change with every poll)."""
    return web.json_response(data, status=status, headers={"Cache-Control": "no-store"})


def error(status: int, message: str, field: str | None = None, **extra: Any) -> web.Response:
    """``{"error": message, "field": field}`` with ``status``."""
    body: dict[str, Any] = {"error": message}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return json_response(body, status)


# -- reads --------------------------------------------------------------------------------


async def get_status(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    now = api.now()
    return json_response(
        status_view(
            api.state,
            now,
            writes_enabled=api.token is not None,
            replan_running=api.operator.replan_running,
        )
    )


async def get_plan(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    body = api.plan_cache.body(api.state, api.watch, api.now())
    return web.Response(
        text=body, content_type="application/json", headers={"Cache-Control": "no-store"}
    )


async def get_devices(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    text = request.query.get("limit")
    limit = None
    if text is not None:
        if not LIMIT.match(text) or not 1 <= int(text) <= MAX_LIMIT:
            return error(400, f"limit must be a whole number from 1 to {MAX_LIMIT}", "limit")
        limit = int(text)
    return json_response(devices_view(api.state, api.now(), limit))


async def get_alerts(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    return json_response(alerts_view(api.state, api.watch, api.now()))


async def get_caps(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    return json_response({"caps": caps_view(api.state, api.now())})


# -- writes -------------------------------------------------------------------------------


def refused(request: web.Request) -> web.Response | None:
    """403 without a configured token, 401 without the right one; None when authorised."""
    return token_refusal(
        request, request.app[API_KEY].token, f"[run] api_token in the site file or {TOKEN_ENV}"
    )


def token_refusal(request: web.Request, token: str | None, where: str) -> web.Response | None:
    """403 without a configured token (``where`` says how to set one), 401 without the
    right one; None when authorised."""
    if token is None:
        return error(
            403, f"operator actions are disabled: no API token is configured (set {where})"
        )
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Header bytes that are not UTF-8 arrive as lone surrogates: keep them, as bytes.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), token.encode()
    ):
        response = error(401, "missing or wrong API token (Authorization: Bearer <token>)")
        response.headers["WWW-Authenticate"] = 'Bearer realm="vpp"'
        return response
    return None


def who(request: web.Request) -> str:
    """How an action's event names its author."""
    return f"operator at {request.remote or 'unknown address'}"


async def parse(
    request: web.Request, model: type[M], empty_ok: bool = False, **context: Any
) -> M | web.Response:
    """The body as ``model`` (its validators see ``context``), or a 400 response naming the
    first bad field."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return error(413, f"body larger than {MAX_BODY} bytes", "body")
    body = await request.read()
    if not body.strip() and empty_ok:
        body = b"{}"
    try:
        return model.model_validate_json(body, context=context)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        first = problems[0]
        return error(
            400, f"invalid {first['field']}: {first['message']}", first["field"], errors=problems
        )


def busy(exc: ControlBusy) -> web.Response:
    """503 for an action the control loop did not take in time."""
    response = error(503, str(exc))
    response.headers["Retry-After"] = "5"
    return response


async def post_cap(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    if (denied := refused(request)) is not None:
        return denied
    cap_in = await parse(request, CapInput, now=api.now(), site=api.state.site)
    if isinstance(cap_in, web.Response):
        return cap_in
    try:
        cap, replan = await api.link.call(api.operator.add_cap, cap_in, who(request))
    except ControlBusy as exc:
        return busy(exc)
    return json_response({"cap": cap_view(cap, api.now()), "replan": replan}, 201)


async def delete_cap(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    if (denied := refused(request)) is not None:
        return denied
    ident = request.match_info["cap_id"]
    if not CAP_ID.match(ident):
        return error(400, "invalid id: expected 12 hex digits as listed by GET /api/caps", "id")
    try:
        removed = await api.link.call(api.operator.remove_cap, ident, who(request))
    except ControlBusy as exc:
        return busy(exc)
    if removed is None:
        return error(404, f"no cap with id {ident}", "id")
    cap, replan = removed
    return json_response({"removed": cap_view(cap, api.now()), "replan": replan})


async def post_pause(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    if (denied := refused(request)) is not None:
        return denied
    pause = await parse(request, PauseInput)
    if isinstance(pause, web.Response):
        return pause
    try:
        dry_run = await api.link.call(api.operator.pause, pause.dry_run, who(request))
    except ControlBusy as exc:
        return busy(exc)
    return json_response({"dry_run": dry_run})


async def post_replan(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    if (denied := refused(request)) is not None:
        return denied
    replan = await parse(request, ReplanInput, empty_ok=True)
    if isinstance(replan, web.Response):
        return replan
    if not api.operator.can_replan:
        return error(503, "re-planning needs a running controller")
    try:
        outcome = await api.link.call(api.operator.request_replan, replan.reason, who(request))
    except ControlBusy as exc:
        return busy(exc)
    return json_response({"replan": outcome}, 202)


def add_routes(app: web.Application) -> None:
    """The API routes on ``app`` (which must hold :data:`API_KEY`)."""
    app.router.add_get("/api/status", get_status)
    app.router.add_get("/api/plan", get_plan)
    app.router.add_get("/api/devices", get_devices)
    app.router.add_get("/api/alerts", get_alerts)
    app.router.add_get("/api/caps", get_caps)
    app.router.add_post("/api/caps", post_cap)
    app.router.add_delete("/api/caps/{cap_id}", delete_cap)
    app.router.add_post("/api/pause", post_pause)
    app.router.add_post("/api/replan", post_replan)
