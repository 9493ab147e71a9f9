"""A small aiohttp server inside the controller: ``/metrics``, ``/healthz``, the operator page
(``/``) and its JSON API (``/api/...``, see :mod:`vpp.web.api`).

:func:`make_app` builds the application around the controller's state and metrics registry;
more routes can be added to it before it is served::

    app = make_app(state, registry, controller=ctl)
    app.router.add_get("/api/site", site_handler)   # handlers find the state at
                                                     # request.app[STATE_KEY]
    async with serve(app, port=9310) as server:
        ...  # server.url, server.port (the bound port, also when 0 was asked for)

The server binds to loopback unless told otherwise: the metrics show the plant's state, and
the API accepts operator actions (with a token).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry

from vpp.control.state import ControllerState
from vpp.core.clock import Clock, SystemClock
from vpp.web import api, page
from vpp.web.actions import Operator
from vpp.web.watch import Watch

log = logging.getLogger("vpp.web")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9310
#: The classic text format: every Prometheus reads it, and it formats about twice as fast
#: as OpenMetrics in prometheus_client, which matters with thousands of devices.
METRICS_CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: Seconds a stopping server waits for requests in flight.
SHUTDOWN_TIMEOUT_S = 2.0
#: Wall seconds between samples of the state for the operator page (see vpp.web.watch).
WATCH_INTERVAL_S = 1.0

STATE_KEY = web.AppKey("state", ControllerState)
REGISTRY_KEY = web.AppKey("registry", CollectorRegistry)
_EXECUTOR_KEY = web.AppKey("metrics_executor", ThreadPoolExecutor)


class _Collected:
    """Families already collected, in the shape the exposition encoder reads."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


async def metrics(request: web.Request) -> web.Response:
    """The registry in Prometheus text format.

    Collecting runs on the event loop, where the jobs change the state, so a scrape sees one
    consistent state; formatting (the larger part for big fleets) runs in a worker thread so
    polls and dispatch are not held up meanwhile.
    """
    families = list(request.app[REGISTRY_KEY].collect())
    loop = asyncio.get_running_loop()
    body = await loop.run_in_executor(
        request.app[_EXECUTOR_KEY], generate_latest, _Collected(families)
    )
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


async def healthz(request: web.Request) -> web.Response:
    """200 while the server answers (liveness); health of the plant is in the metrics."""
    return web.Response(text="ok\n")


async def _metrics_executor(app: web.Application) -> AsyncIterator[None]:
    # One worker per app, shut down with the app, so no thread outlives the server.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vpp-metrics")
    app[_EXECUTOR_KEY] = executor
    yield
    executor.shutdown(wait=True, cancel_futures=True)


async def _watch_and_operator(app: web.Application) -> AsyncIterator[None]:
    # Samples the state between page requests (measured means need every few polls), and on
    # the way out stops a re-plan still running, so no task outlives the server.
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
    await shared.operator.close()


def make_app(
    state: ControllerState,
    registry: CollectorRegistry,
    controller: Any = None,
    *,
    clock: Clock | None = None,
    api_token: str | None = None,
) -> web.Application:
    """The controller's web application: ``/metrics``, ``/healthz``, the page and the API.

    controller : the :class:`~vpp.control.controller.Controller` that operator actions act
        through (events, re-plans); without one, actions only change ``state``
    clock : "now" for ages and caps; default the controller's clock, else the system clock
    api_token : the write token; default ``VPP_API_TOKEN`` or the site's ``[run] api_token``

    Handlers added later read ``request.app[STATE_KEY]`` and ``request.app[REGISTRY_KEY]``.
    """
    app = web.Application(client_max_size=api.MAX_BODY)
    app[STATE_KEY] = state
    app[REGISTRY_KEY] = registry
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
    )
    app.cleanup_ctx.append(_metrics_executor)
    app.cleanup_ctx.append(_watch_and_operator)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    api.add_routes(app)
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
    """Serves ``app`` on ``host``:``port`` (port 0 picks a free one); start, then stop."""

    def __init__(
        self, app: web.Application, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9310``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve; raises OSError naming the address if it is taken."""
        if self._runner is not None:
            return
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
        self.port = int(runner.addresses[0][1])
        self._runner = runner

    async def stop(self) -> None:
        """Close the listener and connections, wait for requests in flight (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

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


@asynccontextmanager
async def serve(
    app: web.Application, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
) -> AsyncIterator[WebServer]:
    """Serve ``app`` for the duration of the ``async with`` block."""
    server = WebServer(app, host, port)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
