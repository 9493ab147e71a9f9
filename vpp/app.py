"""The composition root: a controller assembled from a site file and run, as ``vpp run`` does.

This is the one place that wires the pieces together: the Modbus fleet as the controller's
plant, the recorder, the Prometheus metrics and the operator page's HTTP server. Everything it
imports stands below it; nothing imports it but the CLI and the tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from adapters.bridge import ModbusBridge
from adapters.controlbox import ControlBoxReader
from adapters.openadr import OpenAdrVen
from optimizer.planner import Planner
from vpp.control.controller import Controller
from vpp.control.inputs import InputProvider
from vpp.control.plant import ModbusPlant
from vpp.control.restore import restore
from vpp.control.runner import install_signal_handlers, run_until_stopped
from vpp.control.schedule import PLAN_LEAD_S
from vpp.control.state import ControllerState
from vpp.control.world import world_from_inputs
from vpp.core.clock import Clock, ScaledClock, SystemClock
from vpp.core.site import OpenAdrSource, Site
from vpp.logs import install_repeat_filter, remove_repeat_filter
from vpp.metrics import Metrics
from vpp.recorder import Recorder
from vpp.signals.metrics import GridSignalCollector
from vpp.signals.watch import SignalWatch
from vpp.web.server import make_app, serve

log = logging.getLogger("vpp.run")


@dataclass(frozen=True)
class RunOptions:
    speed: float = 1.0
    start: datetime | None = None
    dry_run: bool = False
    simulate: bool | None = None  # None = the site's [run] simulate
    db_path: str | None = None
    http_host: str | None = None
    http_port: int | None = None
    #: Seconds of wall time by which a plan precedes its quarter hour.
    plan_lead_wall_s: float = PLAN_LEAD_S
    #: Unix time at which the clock reads ``start`` (processes sharing one clock).
    clock_origin: float | None = None


def make_clock(opts: RunOptions) -> Clock:
    if opts.speed == 1.0 and opts.start is None and opts.clock_origin is None:
        return SystemClock()
    return ScaledClock(opts.start or SystemClock().now(), opts.speed, opts.clock_origin)


def _ven(stack: AsyncExitStack, config: OpenAdrSource, check: Any) -> OpenAdrVen:
    """An OpenADR VEN for one VTN, closed with the stack; it registers at its first read."""
    ven = OpenAdrVen(config, check)
    stack.push_async_callback(ven.close)
    return ven


async def build_controller(
    site: Site,
    clock: Clock,
    opts: RunOptions,
    stack: AsyncExitStack,
    inputs: InputProvider | None = None,
) -> Controller:
    """Bridge, poller, controls, planner, inputs, recorder, metrics and HTTP server."""
    # Breakers wait in controller time, so a fast demo retries dead devices as often as live.
    bridge = await stack.enter_async_context(ModbusBridge(clock=lambda: clock.now().timestamp()))
    state = ControllerState(site=site, started_at=clock.now(), dry_run=opts.dry_run)
    db_path = Path(opts.db_path or site.run.db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(
        db_path,
        retention_days=site.run.retention_days,
        snapshot_retention_days=site.run.snapshot_retention_days,
    )
    stack.callback(recorder.close)
    registry = CollectorRegistry()
    metrics = Metrics(state, registry, clock)
    registry.register(GridSignalCollector(state, clock))  # vpp_grid_signal_*
    ctl = Controller(
        site=site,
        clock=clock,
        plant=ModbusPlant.for_site(site, bridge, clock),
        planner=Planner(site),
        inputs=inputs or InputProvider.for_run(site.run.inputs_file, site.run.sources),
        state=state,
        recorder=recorder,
        metrics=metrics,
    )
    if site.forecast.weather == "synthetic":
        # No source of issued temperature forecasts is read yet: the synthetic issues are
        # made from what the inputs hold ahead (the demo's historic file), else persistence
        # (docs/forecasts.md).
        log.info(
            "temperature forecast: synthetic issues where the inputs hold the temperature "
            "ahead (historic files), else persistence"
        )
    # Every site gets a watch (and the signals job): the operator may set signals through
    # the API on any site; control boxes and VTNs are read by the same job.
    ctl.signal_watch = SignalWatch.for_site(
        site,
        lambda cfg: ControlBoxReader(bridge, cfg, site.poll).read,
        clock.now(),
        lambda cfg, check: _ven(stack, cfg, check).read,
    )
    restore(ctl)
    app = make_app(state, registry, controller=ctl)
    host = opts.http_host or site.run.http_host
    port = opts.http_port if opts.http_port is not None else site.run.http_port
    server = await stack.enter_async_context(serve(app, host, port))
    log.info("operator page and metrics on %s/", server.url)
    return ctl


async def run(
    site: Site,
    opts: RunOptions,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Controller], Any] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM (or ``stop``); stops everything it started."""
    stop = stop or asyncio.Event()
    clock = make_clock(opts)
    simulate = site.run.simulate if opts.simulate is None else opts.simulate
    remove_handlers = install_signal_handlers(stop)
    # Repeated warnings are counted on the controller's clock, not printed each time.
    repeat = install_repeat_filter(clock.now)
    try:
        async with AsyncExitStack() as stack:
            inputs = InputProvider.for_run(site.run.inputs_file, site.run.sources)
            if simulate:
                from adapters.sim.fleet import SimFleet

                world = world_from_inputs(site, inputs.sources[0])
                await stack.enter_async_context(
                    SimFleet(site, clock=clock, world=world, serve_boxes=True)
                )
                log.info("simulated fleet of %d devices on 127.0.0.1", len(site.devices))
            ctl = await build_controller(site, clock, opts, stack, inputs)
            if on_ready is not None:
                on_ready(ctl)
            await run_until_stopped(ctl, stop, opts.plan_lead_wall_s)
    finally:
        remove_repeat_filter(repeat)
        remove_handlers()
