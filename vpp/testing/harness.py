"""A small real plant for controller tests and benchmarks: simulated devices on loopback, the
real bridge, poller, controls, planner, input sources and (optionally) the recorder, on a
manual clock.

:func:`plant` assembles the controller itself (tests choose the recorder and the solver's
options); :func:`app_plant` lets :func:`vpp.app.build_controller` assemble it as ``vpp run``
does (recorder, metrics, HTTP server, signal watch). Both step nothing on their own: the
caller advances the clock and the fleet (``fleet.step()``) and runs the jobs.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from adapters.bridge import ModbusBridge
from adapters.sim.fleet import SimFleet
from optimizer.params import SolveOptions
from optimizer.planner import Planner
from vpp.app import RunOptions, build_controller
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


# -- sites -----------------------------------------------------------------------------------


def demo_data() -> dict[str, Any]:
    """The demo district's site file as a dict."""
    return tomllib.loads(DEMO.read_text())


def cut_down(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (the demo district) with 6 PV inverters (103/113), 4 batteries (two of each
    control model, 124/802), the meter, data centre and heat pump, and the grid connection and
    heat system scaled down to match; changed in place and returned."""
    devices = data["devices"]
    pv = [d for d in devices if d["kind"] == "pv"][:6]
    bats = [d for d in devices if d["kind"] == "battery"]
    bats = bats[:2] + [b for b in bats if b["control"] == "802"][:2]
    rest = [d for d in devices if d["kind"] in ("meter", "datacentre", "heat_pump")]
    for d in rest:
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
    return data


def free_gateways(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with each of its Modbus gateways (the ports of the site file) moved to a free
    loopback port; devices that share a gateway still share it. Changed in place."""
    ports = sorted({d["modbus"]["port"] for d in data["devices"]})
    mapping = dict(zip(ports, free_ports(len(ports)), strict=True))
    for d in data["devices"]:
        d["modbus"]["port"] = mapping[d["modbus"]["port"]]
    return data


def site_data(small: bool = False) -> dict[str, Any]:
    """The demo district as ``vpp run`` reads it, every gateway on a free loopback port;
    ``small``: cut down (:func:`cut_down`)."""
    data = demo_data()
    return free_gateways(cut_down(data) if small else data)


def small_site(**overrides: Any) -> Site:
    """6 PV inverters (103/113), 4 batteries (124/802), the meter, data centre and heat pump
    of the demo district, on free loopback ports, with the demo's heat system scaled down."""
    data = cut_down(demo_data())
    data.pop("signals", None)  # the signal tests give their sites their own sources
    ports = free_ports(3)
    for i, d in enumerate(d for d in data["devices"] if d["kind"] == "pv"):
        d["modbus"] = {"port": ports[0], "unit": i + 1, "timeout_s": 0.5}
    for i, d in enumerate(d for d in data["devices"] if d["kind"] == "battery"):
        d["modbus"] = {"port": ports[1], "unit": i + 1, "timeout_s": 0.5}
    rest = [d for d in data["devices"] if d["kind"] in ("meter", "datacentre", "heat_pump")]
    for i, d in enumerate(rest):
        d["modbus"] = {"port": ports[2], "unit": i + 1, "timeout_s": 0.5}
    data["poll"].update(interval_s=60.0, breaker_reset_s=120.0, revert_s=900)
    data["run"] = {"correction_interval_s": 300.0, "correction_deadband_w": 2000.0}
    data["optimizer"].update(horizon_h=24)
    for key, value in overrides.items():
        data[key].update(value)
    return parse_site(data, "<small>")


def demo_site(
    *,
    n_pv: int | None = None,
    n_battery: int | None = None,
    signals: bool = False,
    timeout_s: float | None = None,
    **overrides: Any,
) -> Site:
    """The demo district on free loopback ports: all 88 devices, or only the first ``n_pv``
    PV inverters and ``n_battery`` batteries with the meter, data centre and heat pump.

    ``signals``: with the demo's grid-operator control box (on a free port too); without it
    the site has no signal sources (the signal tests give their sites their own).
    ``timeout_s``: every device's Modbus timeout, with no retries (a test that stops
    devices sees them offline at once). ``overrides`` update whole sections, e.g.
    ``optimizer={"horizon_h": 12}``; ``[run]`` starts empty."""
    data = demo_data()
    devices = data["devices"]
    if n_pv is not None or n_battery is not None:
        pv = [d for d in devices if d["kind"] == "pv"][:n_pv]
        bats = [d for d in devices if d["kind"] == "battery"][:n_battery]
        data["devices"] = pv + bats + [d for d in devices if d["kind"] not in ("pv", "battery")]
    free_gateways(data)
    if timeout_s is not None:
        for d in data["devices"]:
            d["modbus"].update(timeout_s=timeout_s, retries=0)
    if signals:
        for source in data.get("signals", {}).get("sources", []):
            source["modbus"]["port"] = free_ports(1)[0]
            if timeout_s is not None:
                source["modbus"]["timeout_s"] = timeout_s
    else:
        data.pop("signals", None)
    data["run"] = {}
    for key, value in overrides.items():
        data.setdefault(key, {}).update(value)
    return parse_site(data, "<demo>")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def toml_text(data: dict[str, Any]) -> str:
    """``data`` as a site file (plain values, lists and tables only)."""
    top = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    if "devices" in data:
        top = ["devices = ["] + [f"  {_toml_value(d)}," for d in data["devices"]] + ["]"]
        top += [
            f"{k} = {_toml_value(v)}"
            for k, v in data.items()
            if k != "devices" and not isinstance(v, dict)
        ]
    tables = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append(f"\n[{key}]")
            tables += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
    return "\n".join(top + tables) + "\n"


# -- the controller in front of the simulated fleet --------------------------------------------


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
    """The controller with no input files or sources (the synthetic inputs), ``recorder`` if
    given, and a planner with ``options`` (default: a 20 s time limit)."""
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


@asynccontextmanager
async def app_plant(site: Site, start: datetime, opts: RunOptions) -> AsyncIterator[Plant]:
    """The controller as ``vpp run`` assembles it (:func:`vpp.app.build_controller`, with the
    site's input files and sources, its recorder at ``opts.db_path`` and its HTTP server),
    before its first job. Everything is stopped on the way out, the fleet last."""
    clock = ManualClock(start)
    inputs = InputProvider.for_run(site.run.inputs_file, site.run.sources)
    world = world_from_inputs(site, inputs.sources[0])
    async with AsyncExitStack() as stack:
        fleet = await stack.enter_async_context(
            SimFleet(site, clock=clock, step_interval_s=None, world=world)
        )
        ctl = await build_controller(site, clock, opts, stack, inputs)
        assert isinstance(ctl.plant, ModbusPlant)
        yield Plant(ctl, fleet, clock, ctl.plant.poller.bridge)
