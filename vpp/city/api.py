"""The coordinator's operator API: city-level grid signals and substation caps while it runs.

==========  ===========================  =======================================================
method      path                         what
==========  ===========================  =======================================================
GET         /api/city/signals            signals (file and API) and substation caps, in force,
                                         to come or ended but not cancelled
POST        /api/city/signals            add a signal: the fields of a ``--signals`` file entry
                                         (id, kind, start, end, feed_in_pct or limit_w, reason,
                                         agents); sent to its agents at once
DELETE      /api/city/signals/{id}       cancel a signal set through the API
POST        /api/city/caps               add a substation cap: id, direction (import/export),
                                         limit_w, start, end, reason; held from the next plan
DELETE      /api/city/caps/{id}          cancel a substation cap
==========  ===========================  =======================================================

Writes need ``Authorization: Bearer <token>`` (``VPP_API_TOKEN`` or ``vpp coordinator
--api-token-file``), as the operator API of ``vpp run``: without a configured token every
write is refused (403), a missing or wrong token gives 401. A bad body is 400 naming the
field with the words a ``--signals`` file gets (there after ``signals.<n>.``), an id already
used 409 (ids are never reused, also not after a cancel), a history that cannot store it
503; in each case nothing changes. What is taken is first stored in the history, so a
restarted coordinator holds it again.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from vpp.city.coordinator import Coordinator, SignalConflict
from vpp.city.signals import EntryError, SignalEntry, SubstationCap
from vpp.web.api import MAX_BODY, TOKEN_ENV, error, json_response, token_refusal, who

COORD_KEY = web.AppKey("coordinator", Coordinator)
TOKEN_KEY = web.AppKey("city_token", str)
#: How to configure the write token (in the 403 answer).
TOKEN_HOW = f"{TOKEN_ENV} or vpp coordinator --api-token-file"


def signal_view(entry: SignalEntry, source: str, coord: Coordinator) -> dict[str, Any]:
    now = coord.now()
    return entry.model_dump(mode="json") | {
        "source": source,
        "active": entry.start <= now and (entry.end is None or now < entry.end),
    }


def cap_view(cap: SubstationCap, coord: Coordinator) -> dict[str, Any]:
    return cap.model_dump(mode="json") | {"source": "api", "active": cap.active(coord.now())}


def signals_view(coord: Coordinator) -> dict[str, Any]:
    """Every signal (per entry, with the agents it is for) and every cap."""
    from_file: dict[str, tuple[Any, list[str]]] = {}
    for agent, found in coord.config.signals.items():
        for g in found:
            from_file.setdefault(g.id, (g, []))[1].append(agent)
    listed = [
        signal_view(SignalEntry(**g.model_dump(), agents=agents), "file", coord)
        for g, agents in from_file.values()
    ]
    listed += [signal_view(e, "api", coord) for e in coord.live_signals.values()]
    imp, exp = coord.limits_now()
    return {
        "signals": listed,
        "caps": [cap_view(c, coord) for c in coord.caps.values()],
        "substation": {"import_limit_w": imp, "export_limit_w": exp},
    }


async def _body(request: web.Request) -> Any:
    """The JSON body, or a 400/413 response naming it."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return error(413, f"body larger than {MAX_BODY} bytes", "body")
    raw = await request.read()
    if len(raw) > MAX_BODY:
        return error(413, f"body larger than {MAX_BODY} bytes", "body")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return error(400, f"body: not JSON: {exc}", "body")


def _refusal(coord: Coordinator, what: str, exc: Exception, author: str) -> web.Response:
    coord.refused(what, exc, author)
    if isinstance(exc, EntryError):
        return error(409 if isinstance(exc, SignalConflict) else 400, str(exc), exc.field)
    return error(503, f"the history did not store it, nothing changed: {exc}")


async def get_signals(request: web.Request) -> web.Response:
    return json_response(signals_view(request.app[COORD_KEY]))


def _post(kind: type[SignalEntry] | type[SubstationCap]) -> Any:
    """The handler that adds a signal or a substation cap (201 with its view)."""
    name = "cap" if kind is SubstationCap else "signal"

    async def handler(request: web.Request) -> web.Response:
        coord = request.app[COORD_KEY]
        if (denied := token_refusal(request, request.app.get(TOKEN_KEY), TOKEN_HOW)) is not None:
            return denied
        raw = await _body(request)
        if isinstance(raw, web.Response):
            return raw
        author = who(request)
        add = coord.add_cap if kind is SubstationCap else coord.add_signal
        try:
            added = await add(raw, author)
        except Exception as exc:  # nothing changed: bad entry, id in use, history gone
            return _refusal(coord, name, exc, author)
        view = (
            cap_view(added, coord)
            if isinstance(added, SubstationCap)
            else signal_view(added, "api", coord)
        )
        return json_response({name: view}, 201)

    return handler


def _delete(kind: type[SignalEntry] | type[SubstationCap]) -> Any:
    async def handler(request: web.Request) -> web.Response:
        coord = request.app[COORD_KEY]
        if (denied := token_refusal(request, request.app.get(TOKEN_KEY), TOKEN_HOW)) is not None:
            return denied
        ident = request.match_info["ident"]
        listed = coord.caps if kind is SubstationCap else coord.live_signals
        author = who(request)
        if ident not in listed and not (kind is SignalEntry and ident in coord.file_ids()):
            return error(404, f"no {'cap' if kind is SubstationCap else 'signal'} {ident!r}", "id")
        try:
            found = await coord.cancel(ident, author)
        except Exception as exc:
            return _refusal(coord, "cancel", exc, author)
        if found is None:
            return error(404, f"no signal or cap {ident!r}", "id")
        view = (
            cap_view(found, coord)
            if isinstance(found, SubstationCap)
            else signal_view(found, "api", coord)
        )
        return json_response({"cancelled": view})

    return handler


def add_routes(app: web.Application, coord: Coordinator, token: str | None) -> None:
    """The signal and cap routes on ``app``; ``token`` None: writes refused (403)."""
    app[COORD_KEY] = coord
    if token:
        app[TOKEN_KEY] = token
    app.router.add_get("/api/city/signals", get_signals)
    app.router.add_post("/api/city/signals", _post(SignalEntry))
    app.router.add_delete("/api/city/signals/{ident}", _delete(SignalEntry))
    app.router.add_post("/api/city/caps", _post(SubstationCap))
    app.router.add_delete("/api/city/caps/{ident}", _delete(SubstationCap))
