"""Grid-operator signals in the operator API: the operator as one more signal source, and
the list of active signals with their compliance for the page.

==========  =====================  =============================================================
method      path                   what
==========  =====================  =============================================================
GET         /api/signals           signals in force or to come (every source), conflicts,
                                   compliance per device and of the grid exchange, the sources
POST        /api/signals           set a signal: kind, feed_in_pct or limit_w, start, end,
                                   devices or feeder, ems, reason
DELETE      /api/signals/{id}      revoke an operator signal
==========  =====================  =============================================================

Writes need the API token like every operator action (:func:`vpp.web.api.refused`). A signal
set here is a :class:`~vpp.signals.model.Signal` from source ``operator``: resolved with the
others (the stricter wins, conflicts reported), enforced by the safety layer at once (the
``signals`` job runs right after it is set or revoked) and planned for from the next plan.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import AwareDatetime, Field, ValidationInfo, field_validator

from vpp.core.site import DeviceKind
from vpp.signals.model import Signal, SignalError, SignalKind
from vpp.signals.watch import SignalWatch
from vpp.web.actions import CAP_FUTURE, CAP_PAST, _Input
from vpp.web.api import API_KEY, busy, error, json_response, parse, refused, who
from vpp.web.link import ControlBusy
from vpp.web.views import iso

SIGNAL_ID_LEN = 12
#: Operator signals kept at most (a bound on what one token holder can pile up).
MAX_OPERATOR_SIGNALS = 100
_TAKES = (DeviceKind.PV, DeviceKind.BATTERY, DeviceKind.HEAT_PUMP)


class SignalInput(_Input):
    """``POST /api/signals``. Validated with the context ``now`` and ``site``."""

    kind: Literal["feed_in_pct", "consumption_limit", "import_cap", "export_cap", "zero_export"]
    feed_in_pct: Annotated[float, Field(ge=0.0, le=100.0, allow_inf_nan=False)] | None = None
    limit_w: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] | None = None
    #: Default: now. None for ``end``: until revoked.
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    devices: Annotated[list[str], Field(min_length=1, max_length=10_000)] | None = None
    feeder: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    ems: bool = False
    reason: Annotated[str, Field(min_length=1, max_length=200)]

    @field_validator("start", "end")
    @classmethod
    def _near_now(cls, when: datetime | None, info: ValidationInfo) -> datetime | None:
        now = (info.context or {}).get("now")
        if when is not None and now is not None and not now - CAP_PAST <= when <= now + CAP_FUTURE:
            raise ValueError(
                f"must lie between {CAP_PAST.days} day before and {CAP_FUTURE.days} days "
                f"after now ({now.astimezone(UTC).isoformat()})"
            )
        return when

    @field_validator("devices")
    @classmethod
    def _known_devices(cls, devices: list[str] | None, info: ValidationInfo) -> list[str] | None:
        site = (info.context or {}).get("site")
        if devices is None or site is None:
            return devices
        by_id = {d.id: d for d in site.devices}
        for ident in devices:
            device = by_id.get(ident)
            if device is None:
                raise ValueError(f"no device {ident!r}")
            if device.kind not in _TAKES:
                raise ValueError(f"{ident!r} is a {device.kind.value}, which takes no grid signal")
        return devices

    @field_validator("feeder")
    @classmethod
    def _known_feeder(cls, feeder: str | None, info: ValidationInfo) -> str | None:
        site = (info.context or {}).get("site")
        if (
            feeder is not None
            and site is not None
            and feeder not in {d.feeder for d in site.devices}
        ):
            raise ValueError(f"no feeder {feeder!r}")
        return feeder

    @field_validator("reason")
    @classmethod
    def _printable(cls, value: str) -> str:
        value = value.strip()
        if not value or not value.isprintable():
            raise ValueError("reason must be printable text")
        return value

    def to_signal(self, site: Any, now: datetime) -> Signal:
        """The signal (SignalError naming the field when the combination is wrong)."""
        if self.devices is not None and self.feeder is not None:
            raise SignalError("devices, feeder: give one scope, not both")
        scope: frozenset[str] | None = None
        if self.devices is not None:
            scope = frozenset(self.devices)
        elif self.feeder is not None:
            scope = frozenset(
                d.id for d in site.devices if d.feeder == self.feeder and d.kind in _TAKES
            )
        start = (self.start or now).astimezone(UTC)
        end = None if self.end is None else self.end.astimezone(UTC)
        if end is not None and end <= now:
            raise SignalError("end: the window has already ended")
        return Signal(
            source="operator",
            kind=SignalKind(self.kind),
            start=start,
            end=end,
            devices=scope,
            feed_in_pct=self.feed_in_pct,
            limit_w=self.limit_w,
            ems=self.ems,
            reason=self.reason,
        )


def _field(message: str) -> str:
    """The input field a signal's error message is about (the first named after its colon)."""
    said = message.split(": ", 1)[-1]
    names = ("feed_in_pct", "limit_w", "start", "end", "devices", "feeder")
    return next((n for n in names if said.startswith(n) or f" {n} " in f" {said} "), "body")


def signal_id(signal: Signal) -> str:
    key = "|".join(
        str(x)
        for x in (
            signal.source,
            signal.kind.value,
            iso(signal.start),
            iso(signal.end),
            sorted(signal.devices or ()),
            signal.feed_in_pct,
            signal.limit_w,
            signal.ems,
            signal.reason,
        )
    )
    return hashlib.sha256(key.encode()).hexdigest()[:SIGNAL_ID_LEN]


def signal_view(signal: Signal, now: datetime) -> dict[str, Any]:
    return {
        "id": signal_id(signal),
        "source": signal.source,
        "kind": signal.kind.value,
        "what": signal.describe(),
        "start": iso(signal.start),
        "end": iso(signal.end),
        "active": signal.active(now),
        "devices": None if signal.devices is None else sorted(signal.devices),
        "feed_in_pct": signal.feed_in_pct,
        "limit_w": signal.limit_w,
        "basis": signal.basis,
        "ems": signal.ems,
        "reason": signal.reason,
    }


def signals_view(controller: Any, state: Any, now: datetime) -> dict[str, Any]:
    """Signals in force or to come, conflicts, compliance and sources (JSON-ready)."""
    watch = getattr(controller, "signal_watch", None)
    listed = [] if watch is None else list(watch.signals)
    listed = [s for s in listed if s.end is None or s.end > now]
    listed.sort(key=lambda s: (s.start, s.source))
    resolved = state.grid_signals
    compliance = state.grid_signal_compliance
    return {
        "signals": [signal_view(s, now) for s in listed],
        "conflicts": [] if resolved is None else [str(c) for c in resolved.conflicts],
        "import_cap_w": None if resolved is None else resolved.import_cap_w,
        "export_cap_w": None if resolved is None else resolved.export_cap_w,
        "compliance": {
            "compliant": True if compliance is None else compliance.compliant,
            "devices": {} if compliance is None else dict(sorted(compliance.devices.items())),
            "reasons": [] if compliance is None else sorted(compliance.reasons.values()),
            "grid": None if compliance is None else compliance.grid,
        },
        "sources": {
            ident: {"silent": silent, "last_success": iso(alive)}
            for ident, (silent, alive) in sorted(state.grid_signal_sources.items())
        },
    }


class SignalDesk:
    """Operator signals on the control loop: kept in the controller's signal watch."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[bool]] = set()

    def _watch(self, controller: Any) -> SignalWatch:
        if controller.signal_watch is None:
            controller.signal_watch = SignalWatch(controller.site, [], controller.clock.now())
        watch: SignalWatch = controller.signal_watch
        return watch

    def add(self, controller: Any, signal: Signal, who: str) -> str:
        watch = self._watch(controller)
        mine = [s for s in watch.extra if s.source == "operator"]
        if len(mine) >= MAX_OPERATOR_SIGNALS:
            raise SignalError(f"body: at most {MAX_OPERATOR_SIGNALS} operator signals at once")
        ident = signal_id(signal)
        watch.extra = [*watch.extra, signal]
        controller.event(
            "info",
            "operator",
            "signal_set",
            f"{who} set {signal.describe()} (id {ident}): {signal.reason}",
        )
        self._apply(controller)
        return ident

    def remove(self, controller: Any, ident: str, who: str) -> Signal | None:
        watch: SignalWatch | None = controller.signal_watch
        if watch is None:
            return None
        found = next(
            (s for s in watch.extra if s.source == "operator" and signal_id(s) == ident), None
        )
        if found is None:
            return None
        watch.extra = [s for s in watch.extra if s is not found]
        controller.event(
            "info", "operator", "signal_revoked", f"{who} revoked {found.describe()} (id {ident})"
        )
        self._apply(controller)
        return found

    def _apply(self, controller: Any) -> None:
        """Enforce at once: the signals job, in the background on the control loop."""
        task = asyncio.create_task(controller.run_job("signals"), name="vpp-operator-signals")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self) -> None:
        """Until the signals jobs started here have run (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


DESK_KEY = web.AppKey("signal_desk", SignalDesk)


async def get_signals(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    return json_response(signals_view(api.operator.controller, api.state, api.now()))


async def post_signal(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    if (denied := refused(request)) is not None:
        return denied
    controller = api.operator.controller
    if controller is None:
        return error(503, "grid signals need a running controller")
    now = api.now()
    given = await parse(request, SignalInput, now=now, site=api.state.site)
    if isinstance(given, web.Response):
        return given
    try:
        signal = given.to_signal(api.state.site, now)
    except SignalError as exc:
        return error(400, f"invalid signal: {exc}", _field(str(exc)))
    desk = request.app[DESK_KEY]
    try:
        ident = await api.link.call(desk.add, controller, signal, who(request))
    except ControlBusy as exc:
        return busy(exc)
    except SignalError as exc:
        return error(409, str(exc), "body")
    return json_response({"signal": signal_view(signal, now) | {"id": ident}}, 201)


async def delete_signal(request: web.Request) -> web.Response:
    api = request.app[API_KEY]
    if (denied := refused(request)) is not None:
        return denied
    ident = request.match_info["signal_id"]
    if len(ident) != SIGNAL_ID_LEN or any(c not in "0123456789abcdef" for c in ident):
        return error(400, "invalid id: expected 12 hex digits as listed by GET /api/signals", "id")
    controller = api.operator.controller
    if controller is None:
        return error(503, "grid signals need a running controller")
    try:
        removed = await api.link.call(request.app[DESK_KEY].remove, controller, ident, who(request))
    except ControlBusy as exc:
        return busy(exc)
    if removed is None:
        return error(404, f"no operator signal with id {ident}", "id")
    return json_response({"revoked": signal_view(removed, api.now())})


def add_routes(app: web.Application) -> None:
    """The signal routes on ``app`` (which must hold :data:`vpp.web.api.API_KEY`)."""
    app[DESK_KEY] = SignalDesk()
    app.router.add_get("/api/signals", get_signals)
    app.router.add_post("/api/signals", post_signal)
    app.router.add_delete("/api/signals/{signal_id}", delete_signal)
