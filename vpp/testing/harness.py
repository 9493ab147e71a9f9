"""A small real plant for controller tests: simulated devices on loopback, the real bridge,
poller, controls, planner, input sources and (optionally) the recorder, on a manual clock."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters.bridge import ModbusBridge
from adapters.sim.fleet import SimFleet
from optimizer.params import SolveOptions
from optimizer.planner import Planner
from vpp.control.controller import Controller
from vpp.control.inputs import InputProvider
from vpp.control.plant import ModbusPlant
from vpp.control.state import ControllerState
from vpp.control.world import world_from_inputs
from vpp.core.clock import ManualClock
from vpp.core.site import Site, parse_site
from vpp.testing.ports import free_ports

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "demo.toml"


def small_site(**overrides: Any) -> Site:
    """6 PV inverters (103/113), 4 batteries (124/802), the meter, data centre and heat pump
    of the demo district, on free loopback ports, with the demo's heat system scaled down."""
    data = tomllib.loads(DEMO.read_text())
    data.pop("signals", None)  # the signal tests give their sites their own sources
    pv = [d for d in data["devices"] if d["kind"] == "pv"][:6]
    bats = [d for d in data["devices"] if d["kind"] == "battery"]
    bats = bats[:2] + [b for b in bats if b["control"] == "802"][:2]
    rest = [d for d in data["devices"] if d["kind"] in ("meter", "datacentre", "heat_pump")]
    ports = free_ports(3)
    for i, d in enumerate(pv):
        d["modbus"] = {"port": ports[0], "unit": i + 1, "timeout_s": 0.5}
    for i, d in enumerate(bats):
        d["modbus"] = {"port": ports[1], "unit": i + 1, "timeout_s": 0.5}
    for i, d in enumerate(rest):
        d["modbus"] = {"port": ports[2], "unit": i + 1, "timeout_s": 0.5}
        if d["kind"] == "datacentre":
            d["it_power_w"] = 60_000
        if d["kind"] == "heat_pump":
            d["max_el_w"] = 20_000
    data["devices"] = pv + bats + rest
    data["grid"].update(
        import_limit_w=120_000,
        export_limit_w=80_000,
        base_load_annual_wh=150_000_000,
        base_load_peak_w=45_000,
    )
    data["heat"].update(
        store_capacity_wh=800_000,
        store_max_charge_th_w=150_000,
        store_max_discharge_th_w=150_000,
        boiler_max_th_w=400_000,
        annual_demand_wh=700_000_000,
    )
    data["poll"].update(interval_s=60.0, breaker_reset_s=120.0, revert_s=900)
    data["run"] = {"correction_interval_s": 300.0, "correction_deadband_w": 2000.0}
    data["optimizer"].update(horizon_h=24)
    for key, value in overrides.items():
        data[key].update(value)
    return parse_site(data, "<small>")


def demo_site(**overrides: Any) -> Site:
    """The whole demo district (88 devices) on free loopback ports."""
    data = tomllib.loads(DEMO.read_text())
    data.pop("signals", None)  # the signal tests give their sites their own sources
    ports = sorted({d["modbus"]["port"] for d in data["devices"]})
    mapping = dict(zip(ports, free_ports(len(ports)), strict=True))
    for d in data["devices"]:
        d["modbus"]["port"] = mapping[d["modbus"]["port"]]
    data["run"] = {}
    for key, value in overrides.items():
        data.setdefault(key, {}).update(value)
    return parse_site(data, "<demo>")


@dataclass
class Plant:
    ctl: Controller
    fleet: SimFleet
    clock: ManualClock
    bridge: ModbusBridge


@asynccontextmanager
async def plant(
    site: Site, start: datetime, *, recorder: Any = None, options: SolveOptions | None = None
) -> AsyncIterator[Plant]:
    clock = ManualClock(start)
    inputs = InputProvider.for_run(None, [])
    world = world_from_inputs(site, inputs.sources[0])
    async with (
        SimFleet(site, clock=clock, step_interval_s=None, world=world) as fleet,
        ModbusBridge(connections_per_endpoint=2, clock=lambda: clock.now().timestamp()) as bridge,
    ):
        ctl = Controller(
            site=site,
            clock=clock,
            plant=ModbusPlant.for_site(site, bridge, clock),
            planner=Planner(site, options=options or SolveOptions(time_limit_s=20)),
            inputs=inputs,
            state=ControllerState(site=site, started_at=clock.now()),
            recorder=recorder,
        )
        yield Plant(ctl, fleet, clock, bridge)
