"""SimFleet: every device of a site simulated and served over Modbus TCP on loopback.

One :class:`~adapters.sim.server.GatewayServer` per configured port serves all unit ids of
that port. A background task steps the physics every ``step_interval_s`` of wall time to the
injected clock's "now" (a ScaledClock makes the plant run faster; with a ManualClock tests
call :meth:`SimFleet.step` themselves). Usage::

    async with SimFleet(site, clock=ManualClock(t0)) as fleet:
        fleet.device("pv-001").fault = "silent"
        fleet.step(60)            # one simulated minute
        await fleet.stop_port(15100)

:func:`run_fleet_process` serves a fleet from a child process instead (benchmarks), as
``python -m vpp simulate --config FILE`` does from a shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import multiprocessing
import signal
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

from adapters.sim.controlbox import SimControlBox
from adapters.sim.create import create_device
from adapters.sim.device import Environment, SimulatedDevice
from adapters.sim.profiles import (
    IrradianceProfile,
    SimWorld,
    cloudy_profile,
    household_load_ratio,
)
from adapters.sim.server import (
    SILENT_HOLD_S,
    ControlBoxServer,
    GatewayServer,
    LightGatewayServer,
)
from vpp.core.clock import Clock, ManualClock, ScaledClock, SystemClock
from vpp.core.site import Site, read_site

log = logging.getLogger(__name__)

#: Longest physics sub-step [s of simulated time]; longer steps are split.
MAX_SUBSTEP_S = 60.0
DEFAULT_BASE = 40000


#: The gateways' Modbus servers by name (``SimFleet(server=...)``).
SERVERS: dict[str, type[GatewayServer] | type[LightGatewayServer]] = {
    "pymodbus": GatewayServer,
    "light": LightGatewayServer,
}


class SimFleet:
    """Simulated devices of ``site`` on pymodbus servers at ``host``, one per configured port.

    clock : time source of the physics (default: wall clock).
    delay_s : response delay for every device [s], overriding ``sim.response_delay_s``.
    irradiance : plane irradiance profile (default: clear sky at the site times clouds).
    world : irradiance, base load, IT load and waste-heat temperature from data (overrides
        ``irradiance`` and the built-in load profiles).
    bases : SunSpec base address per device id (default ``modbus.base`` or 40000).
    step_interval_s : wall time between background physics steps [s]; None: no task.
    serve_boxes : serve the site's control boxes too (``vpp run --simulate``, ``vpp sim``);
        tests that drive their own boxes leave it off.
    server : the gateways' Modbus server: ``"pymodbus"`` (the default) or ``"light"``
        (:class:`~adapters.sim.server.LightGatewayServer`, a third of the CPU per request;
        the benchmarks' sharded fleets use it so that they measure the controller).
    """

    def __init__(
        self,
        site: Site,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        delay_s: float | None = None,
        *,
        irradiance: IrradianceProfile | None = None,
        world: SimWorld | None = None,
        bases: Mapping[str, int] | None = None,
        step_interval_s: float | None = 0.5,
        silent_hold_s: float = SILENT_HOLD_S,
        serve_boxes: bool = False,
        server: str = "pymodbus",
    ) -> None:
        if server not in SERVERS:
            raise ValueError(f"server {server!r}: one of {', '.join(SERVERS)}")
        self.site = site
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.host = host
        self.step_interval_s = step_interval_s
        info = site.site
        self.world = world
        if world is not None:
            irradiance = world.irradiance
        self.irradiance = irradiance or cloudy_profile(info.latitude_deg, info.longitude_deg)
        self._tz = ZoneInfo(info.timezone)
        bases = bases or {}
        self._devices: dict[str, SimulatedDevice] = {}
        for cfg in site.devices:
            base = bases.get(cfg.id, cfg.modbus.base if cfg.modbus.base is not None else None)
            dev = create_device(cfg, site, self.clock, DEFAULT_BASE if base is None else base)
            if delay_s is not None:
                dev.response_delay_s = delay_s
            self._devices[cfg.id] = dev
        self._ordered = sorted(self._devices.values(), key=lambda d: d.order)
        by_port: dict[int, list[SimulatedDevice]] = {}
        for dev in self._devices.values():
            by_port.setdefault(dev.port, []).append(dev)
        self._servers = {
            port: SERVERS[server](host, port, devs, silent_hold_s)
            for port, devs in sorted(by_port.items())
        }
        #: The grid operator's control boxes of ``site.signals.sources`` (relays at 100 %,
        #: heartbeat running), served on their own ports when ``serve_boxes``.
        self.boxes = {cfg.id: SimControlBox(cfg, self.clock) for cfg in site.signals.sources}
        self._box_servers = (
            [ControlBoxServer(host, b.config.modbus.port, b) for b in self.boxes.values()]
            if serve_boxes
            else []
        )
        self._last = self.clock.now()
        self._task: asyncio.Task[None] | None = None
        #: The environment of the last physics step (site-wide terms, for tests and status).
        self.environment = self._environment(self._last, 0.0)
        self._step_to(self._last)

    # -- lookup --------------------------------------------------------------------------------

    @property
    def ports(self) -> list[int]:
        """Configured ports, ascending."""
        return list(self._servers)

    @property
    def devices(self) -> list[SimulatedDevice]:
        """Every simulated device, in config order."""
        return list(self._devices.values())

    def device(self, device_id: str) -> SimulatedDevice:
        """The simulated device ``device_id`` (KeyError naming it if unknown)."""
        try:
            return self._devices[device_id]
        except KeyError:
            raise KeyError(f"no simulated device {device_id!r}") from None

    def devices_on(self, port: int) -> list[SimulatedDevice]:
        """Devices served on ``port``, by unit id."""
        return sorted(self._server(port).devices, key=lambda d: d.unit)

    def is_serving(self, port: int) -> bool:
        return self._server(port).running

    def _server(self, port: int) -> GatewayServer | LightGatewayServer:
        try:
            return self._servers[port]
        except KeyError:
            raise KeyError(f"no simulated devices on port {port}") from None

    # -- physics -------------------------------------------------------------------------------

    def _environment(self, now: datetime, dt_s: float) -> Environment:
        local = now.astimezone(self._tz)
        hour = local.hour + local.minute / 60.0 + local.second / 3600.0
        world = self.world
        base_w = world.base_load_w(now) if world is not None else None
        if base_w is None:
            base_w = self.site.grid.base_load_peak_w * household_load_ratio(hour)
        return Environment(
            now,
            dt_s,
            hour,
            self.irradiance,
            base_load_w=base_w,
            it_power_w=world.it_power_w(now) if world is not None else None,
            world_waste_heat_temp_c=world.waste_heat_temp_c(now) if world is not None else None,
            heat_demand_th_w=world.heat_demand_th_w(now) if world is not None else None,
        )

    def step(self, seconds: float | None = None) -> float:
        """Advance the physics to the clock's now; returns the simulated seconds stepped.

        With ``seconds``, a ManualClock is first advanced by that much (TypeError for other
        clocks, which move on their own). Long steps are split into sub-steps of at most
        MAX_SUBSTEP_S so timers and ramps act at the right moment.
        """
        if seconds is not None:
            if not isinstance(self.clock, ManualClock):
                raise TypeError(
                    "step(seconds) needs a ManualClock; other clocks move by themselves"
                )
            self.clock.advance(seconds)
        return self._step_to(self.clock.now())

    def _step_to(self, now: datetime) -> float:
        total_s = max(0.0, (now - self._last).total_seconds())
        parts = max(1, math.ceil(total_s / MAX_SUBSTEP_S))
        start = self._last
        for i in range(1, parts + 1):
            at = start + timedelta(seconds=total_s * i / parts)
            env = self._environment(at, total_s / parts)
            for dev in self._ordered:
                dev.step(env)
            self.environment = env
        self._last = max(now, self._last)
        return total_s

    async def _run_steps(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                self.step()
            except Exception:  # one bad step must not stop the plant
                log.exception("simulated plant step failed")

    # -- serving -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every server and the physics task; on a failure stop what started."""
        try:
            for server in self._servers.values():
                await server.start()
            for box in self._box_servers:
                await box.start()
        except BaseException:
            await self.stop()
            raise
        if self.step_interval_s is not None and self._task is None:
            self._task = asyncio.create_task(self._run_steps(self.step_interval_s))

    async def stop(self) -> None:
        """Stop the physics task and every server (idempotent)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for server in self._servers.values():
            await server.stop()
        for box in self._box_servers:
            await box.stop()

    async def stop_port(self, port: int) -> None:
        """Take a gateway offline: its listener and connections close, physics runs on."""
        await self._server(port).stop()

    async def start_port(self, port: int) -> None:
        """Bring a gateway back (a fresh server with the devices' current registers)."""
        await self._server(port).start()

    async def __aenter__(self) -> SimFleet:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def make_clock(speed: float = 1.0, start: datetime | None = None) -> Clock:
    """Wall clock at speed 1 with no start given, else a ScaledClock from ``start`` (or now)."""
    if speed == 1.0 and start is None:
        return SystemClock()
    return ScaledClock(start or SystemClock().now(), speed)


async def serve_site(
    site: Site,
    *,
    speed: float = 1.0,
    start: datetime | None = None,
    delay_s: float | None = None,
    host: str = "127.0.0.1",
    on_ready: Callable[[SimFleet], None] | None = None,
    server: str = "pymodbus",
) -> None:
    """Serve ``site`` until SIGINT or SIGTERM, then stop every server cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        fleet = SimFleet(
            site, make_clock(speed, start), host=host, delay_s=delay_s, serve_boxes=True,
            server=server,
        )  # fmt: skip
        async with fleet:
            if on_ready is not None:
                on_ready(fleet)
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _child_main(site: Site | str, options: dict[str, Any], ready: Any) -> None:
    loaded = read_site(site) if isinstance(site, str) else site
    asyncio.run(serve_site(loaded, on_ready=lambda _fleet: ready.set(), **options))


class FleetProcess:
    """A SimFleet serving from a child process; ``stop()`` sends SIGTERM and waits."""

    def __init__(self, site: Site | str | Path, **options: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._ready = ctx.Event()
        source = str(site) if isinstance(site, str | Path) else site
        self._process = ctx.Process(
            target=_child_main, args=(source, options, self._ready), name="vpp-sim-fleet"
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the child and wait until every server listens (RuntimeError if it does not)."""
        self._process.start()
        deadline_s = timeout_s
        while not self._ready.wait(min(0.2, deadline_s)):
            deadline_s -= 0.2
            if not self._process.is_alive() or deadline_s <= 0:
                self.stop()
                raise RuntimeError("simulated fleet process did not come up (see its stderr)")

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, wait up to ``timeout_s``, then kill."""
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout_s)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout_s)

    def __enter__(self) -> FleetProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_fleet_process(
    site: Site | str | Path,
    *,
    speed: float = 1.0,
    delay_s: float | None = None,
    host: str = "127.0.0.1",
    timeout_s: float = 60.0,
) -> FleetProcess:
    """Serve ``site`` (a Site or a TOML path) from a child process; returns it started.

    The caller must ``stop()`` it (or use it as a context manager). The child stops its
    servers cleanly on SIGTERM. Scripts that call this need the usual
    ``if __name__ == "__main__":`` guard (the child is spawned, not forked).
    """
    proc = FleetProcess(site, speed=speed, delay_s=delay_s, host=host)
    proc.start(timeout_s)
    return proc
