"""A real controller for the API tests: a simulated demo-like site polled over Modbus on
loopback, planned by the optimizer, recorded to SQLite, on a manual clock, with its web server.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from adapters.bridge import ModbusBridge
from adapters.sim.fleet import SimFleet
from optimizer.planner import Planner
from tests.vpp.web.live import demo_site
from vpp.control.controller import Controller
from vpp.control.inputs import InputProvider
from vpp.control.plant import ModbusPlant
from vpp.control.state import ControllerState
from vpp.core.clock import ManualClock
from vpp.metrics import Metrics
from vpp.recorder import Recorder
from vpp.web import make_app, serve
from vpp.web.api import API_KEY

TOKEN = "api-test-token"
NOON = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)


@dataclass
class Plant:
    """A controller with its simulated fleet and the URL of its web server."""

    ctl: Controller
    clock: ManualClock
    fleet: SimFleet
    url: str
    app: Any

    @property
    def state(self) -> ControllerState:
        return self.ctl.state

    async def replans_done(self) -> None:
        await self.app[API_KEY].operator.wait_idle()


@asynccontextmanager
async def start_plant(tmp_path: Path, token: str | None) -> AsyncIterator[Plant]:
    site = demo_site(token=token, n_pv=3, n_battery=2, horizon_h=6)
    clock = ManualClock(NOON)
    recorder = Recorder(tmp_path / "vpp.sqlite", clock=clock)
    try:
        async with (
            SimFleet(site, clock=clock, step_interval_s=None) as fleet,
            ModbusBridge() as bridge,
        ):
            state = ControllerState(site=site, started_at=clock.now())
            registry = CollectorRegistry()
            ctl = Controller(
                site=site,
                clock=clock,
                plant=ModbusPlant.for_site(site, bridge, clock),
                planner=Planner(site),
                inputs=InputProvider.for_run(None, []),
                state=state,
                recorder=recorder,
                metrics=Metrics(state, registry, clock),
            )
            for job in ("poll", "plan", "dispatch"):
                assert await ctl.run_job(job), state.jobs[job].last_error
            app = make_app(state, registry, controller=ctl)
            async with serve(app, port=0) as server:
                yield Plant(ctl, clock, fleet, server.url, app)
    finally:
        recorder.close()


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    body: Any = None,
    token: str | None = TOKEN,
    raw: bytes | None = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    async with http.request(method, url, data=data, headers=headers) as resp:
        return resp.status, await resp.json()


def cap_body(now: datetime, **changes: Any) -> dict[str, Any]:
    body = {
        "direction": "import",
        "limit_w": 100_000.0,
        "start": now.isoformat(),
        "end": (now + timedelta(hours=2)).isoformat(),
        "reason": "feeder F2 maintenance",
    }
    body.update(changes)
    return body


def operator_events(state: ControllerState) -> list[str]:
    return [e.kind for e in state.events if e.source == "operator"]
