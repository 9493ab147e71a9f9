"""A demo-like controller running in-process for the web and dashboard tests.

The site is the shipped demo (``config/demo.toml``) cut down to a few PV inverters and
batteries, with the grid meter, the data centre and the heat pump, on free loopback ports and a
shorter horizon, so a plan takes a fraction of a second. :func:`running_controller` runs it as
``vpp run`` does (simulated fleet, recorder, scheduler, HTTP server) until the block ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from tests.conftest import LOOPBACK, free_port
from tests.waiting import until
from vpp.app import RunOptions, run
from vpp.control.controller import Controller
from vpp.core.site import Site
from vpp.testing import harness

#: Bounded waits, wall seconds.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def demo_site(
    *, token: str | None = None, n_pv: int = 6, n_battery: int = 4, horizon_h: int = 12
) -> Site:
    """The web tests' site: the demo (:func:`vpp.testing.harness.demo_site`) with ``n_pv``
    inverters, ``n_battery`` batteries and its control box, devices failing fast, a shorter
    horizon, the fleet simulated (as ``vpp run`` runs the demo) and the API token ``token``."""
    return harness.demo_site(
        n_pv=n_pv,
        n_battery=n_battery,
        signals=True,
        timeout_s=0.5,
        optimizer={"horizon_h": horizon_h},
        run={"simulate": True, "api_token": token},
    )


async def wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.2
) -> None:
    """Poll ``check`` until it is true (:func:`tests.waiting.until`)."""
    await until(check, timeout_s, what, poll_s=poll_s)


@asynccontextmanager
async def running_controller(
    site: Site,
    db_path: Path,
    *,
    speed: float = 60.0,
    start: datetime | None = None,
    simulate: bool = True,
) -> AsyncIterator[tuple[Controller, str]]:
    """Run ``site`` simulated at ``speed`` (``simulate=False``: with no device answering);
    yields the controller (once it has a plan) and the base URL of its HTTP server. Stops
    everything on the way out."""
    port = free_port()
    stop = asyncio.Event()
    ready: asyncio.Future[Controller] = asyncio.get_running_loop().create_future()
    opts = RunOptions(
        speed=speed,
        start=start,
        simulate=simulate,
        db_path=str(db_path),
        http_port=port,
        plan_lead_wall_s=2.0,
    )
    task = asyncio.create_task(run(site, opts, stop, on_ready=ready.set_result))
    try:
        done, _ = await asyncio.wait(
            {ready, task}, timeout=START_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            why = task.exception() if done else f"timeout after {START_TIMEOUT_S} s"
            raise RuntimeError(f"controller did not start: {why}")
        ctl = ready.result()
        await wait_until(lambda: ctl.state.plan is not None, START_TIMEOUT_S, "no first plan")
        yield ctl, f"http://{LOOPBACK}:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, STOP_TIMEOUT_S)
