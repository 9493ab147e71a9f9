"""A small aiohttp server inside the controller: ``/metrics``, ``/healthz``, the operator page
(``/``) and its JSON API (``/api/...``, see :mod:`vpp.web.api`).

:func:`make_app` builds the application around the controller's state and metrics registry;
more routes can be added to it before it is served::

    app = make_app(state, registry, controller=ctl)
    app.router.add_get("/api/site", site_handler)   # handlers find the state at
                                                     # request.app[STATE_KEY]
    async with serve(app, port=9310) as server:
        ...  # server.url, server.port (the bound port, also when 0 was asked for)

The server runs on a thread of its own with its own event loop, so neither readers of the API
nor Prometheus can hold up the jobs on the control loop (the one that calls :func:`serve`).
Handlers read :class:`~vpp.control.state.ControllerState` from that thread: the jobs replace
whole values (a new Snapshot, a new Plan, a new list of caps), so a reader sees the old value
or the new one. Operator actions run on the control loop (:mod:`vpp.web.link`), with a deadline
after which the answer is 503 and nothing changes. Requests pass the ``Host`` allow-list and
admission control first (:mod:`vpp.web.guard`): bounded concurrency, bounded waiting, a share
of one core for the server thread, 503 beyond.

The server binds to loopback unless told otherwise: the metrics show the plant's state, and
the API accepts operator actions (with a token).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from aiohttp import hdrs, web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import CollectorRegistry

from vpp.control.state import ControllerState
from vpp.core.clock import Clock, SystemClock
from vpp.web import api, page
from vpp.web import signals as signals_api
from vpp.web.actions import Operator
from vpp.web.guard import (
    Busy,
    Gates,
    HostPolicy,
    Limits,
    busy_response,
    misdirected_response,
)
from vpp.web.link import ACTION_TIMEOUT_S, ControlLink
from vpp.web.watch import Watch

log = logging.getLogger("vpp.web")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9310
#: The classic text format: every Prometheus reads it, and it formats about twice as fast
#: as OpenMetrics in prometheus_client, which matters with thousands of devices.
METRICS_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: Seconds a stopping server waits for requests in flight.
SHUTDOWN_TIMEOUT_S = 2.0
#: Seconds beyond that a stopping server waits for its thread to end.
JOIN_MARGIN_S = 5.0
#: Wall seconds between samples of the state for the operator page (see vpp.web.watch).
WATCH_INTERVAL_S = 1.0
#: Wall seconds between the server thread's checks that the control loop still exists.
ORPHAN_CHECK_S = 1.0

STATE_KEY = web.AppKey("state", ControllerState)
REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)
HOSTS_KEY = web.AppKey("hosts", HostPolicy)
LIMITS_KEY = web.AppKey("limits", Limits)


class _GateSlot:
    """The gates, made on the server's event loop when it starts (asyncio primitives belong
    to the loop that first uses them)."""

    gates: Gates | None = None


_GATES_KEY = web.AppKey("gates", _GateSlot)


async def metrics(request: web.Request) -> web.Response:
    """The registry in Prometheus text format (collected and formatted on the server thread,
    so the server's CPU budget covers it)."""
    body = generate_latest(request.app[REGISTRY_KEY])
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


async def healthz(request: web.Request) -> web.Response:
    """200 while the server answers (liveness); health of the plant is in the metrics."""
    return web.Response(text="ok\n")


@web.middleware
async def check_host(request: web.Request, handler: Any) -> web.StreamResponse:
    """421 for a ``Host`` that is not on the allow-list (see :mod:`vpp.web.guard`)."""
    host = request.headers.get(hdrs.HOST)
    if not request.app[HOSTS_KEY].allows(host):
        return misdirected_response(host or "")
    response: web.StreamResponse = await handler(request)
    return response


@web.middleware
async def admit(request: web.Request, handler: Any) -> web.StreamResponse:
    """A turn at the request's gate, and a deadline for its handler; 503 without either."""
    if request.path == "/healthz":
        response: web.StreamResponse = await handler(request)
        return response
    gates = request.app[_GATES_KEY].gates
    if gates is None:  # served by something other than WebServer: no admission control
        response = await handler(request)
        return response
    gate = gates.metrics if request.path == "/metrics" else gates.api
    try:
        await gate.enter()
    except Busy as exc:
        return busy_response(str(exc))
    limit_s = request.app[LIMITS_KEY].request_s
    try:
        async with asyncio.timeout(limit_s) as deadline:
            response = await handler(request)
    except TimeoutError:
        if not deadline.expired():
            raise
        return busy_response(f"the request took longer than {limit_s:g} s and was cut off")
    finally:
        gate.leave()
    return response


async def _gates(app: web.Application) -> AsyncIterator[None]:
    app[_GATES_KEY].gates = Gates.make(app[LIMITS_KEY])
    yield
    app[_GATES_KEY].gates = None


async def _watch(app: web.Application) -> AsyncIterator[None]:
    # Samples the state between page requests (measured means need every few polls).
    shared = app[api.API_KEY]

    async def sample() -> None:
        while True:
            try:
                shared.watch.sample(shared.clock.now())
            except Exception:  # the page must not take the server down; try again next time
                log.exception("sampling the state for the operator page failed")
            await asyncio.sleep(WATCH_INTERVAL_S)

    task = asyncio.create_task(sample(), name="vpp-web-watch")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def make_app(
    state: ControllerState,
    registry: CollectorRegistry,
    controller: Any = None,
    *,
    clock: Clock | None = None,
    api_token: str | None = None,
    allowed_hosts: Iterable[str] | None = None,
    limits: Limits | None = None,
    action_timeout_s: float = ACTION_TIMEOUT_S,
) -> web.Application:
    """The controller's web application: ``/metrics``, ``/healthz``, the page and the API.

    controller : the :class:`~vpp.control.controller.Controller` that operator actions act
        through (events, re-plans); without one, actions only change ``state``
    clock : "now" for ages and caps; default the controller's clock, else the system clock
    api_token : the write token; default ``VPP_API_TOKEN`` or the site's ``[run] api_token``
    allowed_hosts : ``Host`` names served besides the bind address and the loopback names
        (``name`` for any port, ``name:port`` for one); default the site's
        ``[run] allowed_hosts`` where the site schema has that field, else none
    limits : admission control of the server (:class:`~vpp.web.guard.Limits`)
    action_timeout_s : wall seconds the control loop has to take an operator action (503)

    Handlers added later read ``request.app[STATE_KEY]`` and ``request.app[REGISTRY_KEY]``;
    they run on the server's thread.
    """
    app = web.Application(client_max_size=api.MAX_BODY, middlewares=[check_host, admit])
    app[STATE_KEY] = state
    app[REGISTRY_KEY] = registry
    if allowed_hosts is None:
        allowed_hosts = getattr(state.site.run, "allowed_hosts", None) or ()
    app[HOSTS_KEY] = HostPolicy(allowed_hosts)
    app[LIMITS_KEY] = limits or Limits()
    app[_GATES_KEY] = _GateSlot()
    clock = clock or (controller.clock if controller is not None else SystemClock())
    watch = Watch(state)
    if getattr(controller, "recorder", None) is not None:
        _seed(watch, controller, clock)
    app[api.API_KEY] = api.Api(
        state=state,
        watch=watch,
        clock=clock,
        operator=Operator(state, controller, clock, watch),
        token=api_token or api.configured_token(state),
        link=ControlLink(action_timeout_s),
    )
    app.cleanup_ctx.append(_gates)
    app.cleanup_ctx.append(_watch)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    api.add_routes(app)
    signals_api.add_routes(app)
    page.add_routes(app)
    return app


def _seed(watch: Watch, controller: Any, clock: Clock) -> None:
    """The page's last hours from the recorder; a recorder that cannot answer costs the
    chart its history, never the start."""
    from vpp.web.history import seed_watch

    try:
        n = seed_watch(watch, controller.recorder, controller.site, clock.now())
    except Exception as exc:
        controller.event(
            "warning", "web", "history_not_restored", f"page history not read back: {exc}"
        )
        return
    if n:
        log.info("operator page: %d recorded quarter hours read back", n)


class WebServer:
    """Serves ``app`` on ``host``:``port`` (port 0 picks a free one) from a thread of its own;
    start, then stop, both from the control loop.

    allowed_hosts : replaces the ``Host`` names the app was made with (see :func:`make_app`);
        the bind address is always served
    """

    def __init__(
        self,
        app: web.Application,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        allowed_hosts: Iterable[str] | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.allowed_hosts = None if allowed_hosts is None else tuple(allowed_hosts)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stop = threading.Event()
        self._finished: concurrent.futures.Future[None] = concurrent.futures.Future()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9310``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def thread(self) -> threading.Thread | None:
        """The thread the server runs on (None when stopped)."""
        return self._thread

    async def start(self) -> None:
        """Bind and serve; raises OSError naming the address if it is taken."""
        if self._thread is not None:
            return
        control = asyncio.get_running_loop()
        if HOSTS_KEY in self.app:
            policy = self.app[HOSTS_KEY]
            if self.allowed_hosts is not None:
                policy.configure(self.allowed_hosts)
            policy.bind(self.host)
        if api.API_KEY in self.app:
            self.app[api.API_KEY].link.bind(control)
        started: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._stop.clear()
        self._finished = concurrent.futures.Future()
        thread = threading.Thread(
            target=self._run,
            args=(control, started, self._finished),
            name="vpp-web",
        )
        thread.start()
        self._thread = thread
        try:
            self.port = await asyncio.wrap_future(started)
        except BaseException:
            self._thread = None
            self._request_stop()
            await self._join(thread, self._finished)
            raise

    async def stop(self) -> None:
        """Close the listener and connections, wait for requests in flight and the thread
        (idempotent); then call off a re-plan the operator started, if one still runs."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._request_stop()
        await self._join(thread, self._finished)
        if api.API_KEY in self.app:
            await self.app[api.API_KEY].operator.close()

    def _request_stop(self) -> None:
        self._stop.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # its loop has closed already
                loop.call_soon_threadsafe(wake.set)

    async def _join(
        self, thread: threading.Thread, finished: concurrent.futures.Future[None]
    ) -> None:
        limit_s = SHUTDOWN_TIMEOUT_S + JOIN_MARGIN_S
        try:
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(finished)), limit_s)
        except TimeoutError:
            log.error("the HTTP server thread did not stop within %.0f s", limit_s)
            return
        thread.join(JOIN_MARGIN_S)  # it has only to return from its function

    # -- on the server's thread ---------------------------------------------------------------

    def _run(
        self,
        control: asyncio.AbstractEventLoop,
        started: concurrent.futures.Future[int],
        finished: concurrent.futures.Future[None],
    ) -> None:
        loop = asyncio.new_event_loop()
        try:
            try:
                runner = loop.run_until_complete(self._bind())
            except BaseException as exc:
                if started.set_running_or_notify_cancel():
                    started.set_exception(exc)
                return
            try:
                self._wake = asyncio.Event()
                self._loop = loop
                if started.set_running_or_notify_cancel():
                    started.set_result(int(runner.addresses[0][1]))
                    loop.run_until_complete(self._until_stopped(control))
            finally:
                loop.run_until_complete(runner.cleanup())
        except Exception:
            log.exception("the HTTP server failed")
        finally:
            self._loop = self._wake = None
            try:
                _close(loop)
            finally:
                finished.set_result(None)

    async def _bind(self) -> web.AppRunner:
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(
                exc.errno, f"cannot serve on {self.host}:{self.port}: {exc.strerror}"
            ) from exc
        except BaseException:
            await runner.cleanup()
            raise
        return runner

    async def _until_stopped(self, control: asyncio.AbstractEventLoop) -> None:
        # Stop when told to, or when the control loop is gone without telling (a server that
        # outlived it would keep the process from exiting).
        assert self._wake is not None
        while not self._stop.is_set():
            if control.is_closed():
                log.error("the control loop closed without stopping the HTTP server")
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), ORPHAN_CHECK_S)

    async def __aenter__(self) -> WebServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on ``loop``, shut down its generators and executor, close it."""
    try:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


@asynccontextmanager
async def serve(
    app: web.Application,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    *,
    allowed_hosts: Iterable[str] | None = None,
) -> AsyncIterator[WebServer]:
    """Serve ``app`` for the duration of the ``async with`` block, from a thread of its own."""
    server = WebServer(app, host, port, allowed_hosts=allowed_hosts)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
