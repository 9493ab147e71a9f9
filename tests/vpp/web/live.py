"""A demo-like controller running in-process for the web and dashboard tests.

The site is the shipped demo (``config/demo.toml``) cut down to a few PV inverters and
batteries, with the grid meter, the data centre and the heat pump, on free loopback ports and a
shorter horizon, so a plan takes a fraction of a second. :func:`running_controller` runs it as
``vpp run`` does (simulated fleet, recorder, scheduler, HTTP server) until the block ends.
"""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.conftest import LOOPBACK, free_port, free_ports
from vpp.app import RunOptions, run
from vpp.control.controller import Controller
from vpp.core.site import Site, parse_site

DEMO = Path(__file__).resolve().parents[3] / "config" / "demo.toml"
#: Bounded waits, wall seconds.
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0


def demo_site(
    *,
    token: str | None = None,
    n_pv: int = 6,
    n_battery: int = 4,
    horizon_h: int = 12,
    name: str = "Leipzig demo district",
) -> Site:
    """The demo site with ``n_pv`` inverters and ``n_battery`` batteries on free ports."""
    data: dict[str, Any] = tomllib.loads(DEMO.read_text(encoding="utf-8"))
    devices = data["devices"]
    chosen = [d for d in devices if d["kind"] == "pv"][:n_pv]
    chosen += [d for d in devices if d["kind"] == "battery"][:n_battery]
    chosen += [d for d in devices if d["kind"] not in ("pv", "battery")]
    old = sorted({d["modbus"]["port"] for d in chosen})
    new = dict(zip(old, free_ports(len(old)), strict=True))
    for d in chosen:
        d["modbus"] = {
            **d["modbus"],
            "port": new[d["modbus"]["port"]],
            "timeout_s": 0.5,
            "retries": 0,
        }
    data["devices"] = chosen
    for source in data.get("signals", {}).get("sources", []):
        source["modbus"] = {**source["modbus"], "port": free_ports(1)[0], "timeout_s": 0.5}
    data["site"]["name"] = name
    data["optimizer"]["horizon_h"] = horizon_h
    data["run"] = {**data.get("run", {}), "api_token": token}
    return parse_site(data, "demo (test)")


async def wait_until(
    check: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.2
) -> None:
    """Poll ``check`` until it is true; TimeoutError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout_s} s")
        await asyncio.sleep(poll_s)


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
