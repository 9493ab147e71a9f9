"""How many devices one controller process polls and dispatches, with `vpp run` defaults.

The simulated fleet (half PV inverters, half batteries, ``adapters.sim.synthetic``, 100 units
per gateway port) is served from child processes (``adapters.sim.sharded.ShardedFleet``, about
2,500 devices per process) with a response delay of 0 and 20 ms. The devices serve function
code 23 (``modbus.read_write``), so a setpoint's read-back travels with its last write. The
controller runs here with the bridge, poller, controls and planner of ``vpp run`` and its
defaults (4 connections per gateway, ``run.dispatch_concurrency`` 200) on a manual clock; after
the first poll (discovery) the heap is frozen out of the garbage collector's reach, as
``vpp run`` does after start-up (``vpp.control.runner.freeze_heap``).
For each size and delay:

- poll: the ``poll`` job (every device read and decoded into one snapshot), wall time and
  this process's CPU per device;
- take-over: ``vpp run``'s start-up, a plan for the quarter hour now and at once its
  dispatch (every setpoint checked, written and read back): every 124 battery, in its own
  mode, takes its rates and then its mode, two requests; wall time, this process's CPU per
  device, setpoints written and confirmed;
- dispatch: the batteries put back in their own mode as after a restart (``StorCtl_Mod``
  and the revert timer 0, written to each), a poll, the plan a minute ahead of the quarter
  hour (the ``plan`` job, which then stages each battery's rates: wall time, the part of it
  outside the forecast and the planner, and setpoints staged), and the ``dispatch`` job at
  the quarter hour, with the heap frozen after the plan as ``vpp run`` freezes it after its
  start-up (``runner.freeze_heap``: a full collection would otherwise scan the site,
  drivers and plan model): wall time, this process's CPU per device, the simulator
  processes' CPU per device over the same time (they share the 2 cores), setpoints written
  and confirmed, and the ratio to the take-over (the same batteries in their own mode,
  unstaged);
- next dispatch: the ``dispatch`` job a quarter hour later (after a poll), as every
  dispatch after the take-over finds the devices: under control, so a 124 battery
  whose direction stays takes one request, not two (its ``StorCtl_Mod`` is set already);
  wall time and both sides' CPU per device;
- turn: a quarter hour later, every battery turned round (the last setpoint with its sign
  reversed, at least a quarter of its discharge rating; the PV limits as before), written
  through the controller's write path (``Controller.apply``: invariants, plant, read-back):
  a 124 battery under control takes one request for it, its mode being set already (before
  the window write of DEVICES.md it took two); wall time, both sides' CPU per device,
  setpoints confirmed;
- RSS of this process after all three;
- the floor for the same reads: each device's poll requests (its cached read plan) sent with
  bare pymodbus clients (4 per gateway, one ``asyncio.gather``), wall time and CPU per device.

Each size and delay is measured on every event loop of ``--event-loops`` (``vpp run``'s
default, uvloop, and asyncio's own), each with a fresh simulator, and the ratios printed.

Targets (issue 17, 2 cores): poll 10,000 devices at 20 ms in < 2 s, dispatch < 2 s,
controller CPU <= 150 us per device per poll. The dispatches at a quarter hour are the ones the
target is about; the take-over happens once, at start-up, whenever ``vpp run`` starts.

Run: ``.venv/bin/python bench/process_limit.py [--sizes 1000 3000 10000] [--delays-ms 0 20]
[--event-loops uvloop asyncio]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
from rich.console import Console
from rich.table import Table

from adapters.bridge import ModbusBridge
from adapters.devices.sunspec import SunSpecDriver
from adapters.sim.sharded import ShardedFleet
from adapters.sim.synthetic import synthetic_site
from adapters.sunspec.decode import point_address
from adapters.sunspec.discovery import plan_reads
from adapters.sunspec.models import load_model
from optimizer.planner import Planner
from vpp.control.controller import Controller
from vpp.control.inputs import InputProvider
from vpp.control.plant import ModbusPlant
from vpp.control.runner import freeze_heap
from vpp.control.safety import Setpoint
from vpp.control.state import ControllerState, SetpointStatus
from vpp.core.clock import ManualClock
from vpp.core.loop import LOOPS
from vpp.core.loop import run as run_on_loop
from vpp.core.site import DeviceKind, Site, parse_site

START = datetime(2026, 6, 21, 9, 59, tzinfo=UTC)
UNITS_PER_PORT = 100
DEVICES_PER_SHARD = 2_500
CONNECTIONS = 4  # ModbusBridge's default connections per gateway, as `vpp run` uses it


@dataclass
class Row:
    devices: int
    delay_ms: int
    loop: str = LOOPS[0]
    poll_s: float = 0.0
    poll_cpu_us: float = 0.0
    online: int = 0
    takeover_s: float = 0.0
    takeover_cpu_us: float = 0.0
    takeover_confirmed: int = 0
    plan_s: float = 0.0
    stage_s: float = 0.0
    staged: int = 0
    dispatch_s: float = 0.0
    dispatch_cpu_us: float = 0.0
    sim_cpu_us: float = 0.0
    next_s: float = 0.0
    next_cpu_us: float = 0.0
    next_sim_cpu_us: float = 0.0
    next_confirmed: int = 0
    turn_s: float = 0.0
    turn_cpu_us: float = 0.0
    turn_sim_cpu_us: float = 0.0
    turn_confirmed: int = 0
    written: int = 0
    confirmed: int = 0
    rss_mb: float = 0.0
    floor_s: float = 0.0
    floor_cpu_us: float = 0.0


def rss_mb() -> float:
    """Resident set size of this process now [MB]."""
    with open("/proc/self/status") as status:
        lines = status.read().splitlines()
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pids: list[int | None]) -> float:
    """CPU time used so far by the processes ``pids`` [s] (user + system, from /proc)."""
    total = 0.0
    for pid in pids:
        if pid is None:
            continue
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def free_base_port(span: int) -> int:
    """A base port with ``span`` free ports above it (checked by binding)."""
    for base in range(21_000, 60_000, 50):
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + span):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free port range")


def bench_site(n: int) -> Site:
    ports = (n + UNITS_PER_PORT - 1) // UNITS_PER_PORT
    site = synthetic_site(n // 2, n - n // 2, free_base_port(ports), UNITS_PER_PORT)
    data: dict[str, Any] = site.model_dump(mode="json")
    data["optimizer"]["horizon_h"] = 24
    return parse_site(data, "<process limit>")


def reads_of(plant: ModbusPlant) -> dict[tuple[int, int], list[tuple[int, int]]]:
    """(port, unit) -> the (address, count) requests of one poll of that device."""
    out = {}
    for device in plant.poller.site.devices:
        driver = plant.poller.driver(device.id)
        if isinstance(driver, SunSpecDriver) and driver.layout is not None:
            layout = driver.layout
            out[(device.modbus.port, device.modbus.unit)] = plan_reads(
                layout.dynamic, within=layout.chain, unreadable=layout.unreadable
            )
    return out


async def floor(reads: dict[tuple[int, int], list[tuple[int, int]]]) -> tuple[float, float]:
    """The same reads with bare pymodbus: wall s and CPU s."""
    ports = sorted({port for port, _ in reads})
    clients = {
        port: [AsyncModbusTcpClient("127.0.0.1", port=port) for _ in range(CONNECTIONS)]
        for port in ports
    }
    for group in clients.values():
        for client in group:
            await client.connect()
    turn: dict[int, int] = {}

    async def device(port: int, unit: int, requests: list[tuple[int, int]]) -> None:
        i = turn[port] = turn.get(port, -1) + 1
        client = clients[port][i % CONNECTIONS]
        for address, count in requests:
            await client.read_holding_registers(address, count=count, device_id=unit)

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(device(p, u, r) for (p, u), r in reads.items()))
    result = time.perf_counter() - wall, time.process_time() - cpu
    for group in clients.values():
        for client in group:
            client.close()
    return result


async def own_mode(plant: ModbusPlant) -> None:
    """Every 124 battery back in its own mode as after a restart: ``StorCtl_Mod`` = 0 and no
    revert timer (``InOutWRte_RvrtTms`` = 0), written through each device's link, not the
    controls. Its rates then differ from any setpoint's (which sets the timer), so the next
    setpoint needs rates and mode, as at the take-over."""
    model = load_model(124)
    gate = asyncio.Semaphore(200)

    async def one(driver: SunSpecDriver) -> None:
        assert driver.layout is not None
        loc = driver.layout.location(124)
        assert loc is not None
        async with gate:
            for point in ("StorCtl_Mod", "InOutWRte_RvrtTms"):
                await driver.link.write(point_address(model, loc.address, point)[0], [0])

    drivers = [plant.poller.driver(d.id) for d in plant.poller.site.batteries]
    await asyncio.gather(*(one(d) for d in drivers if isinstance(d, SunSpecDriver)))


def turned_round(site: Site, last: dict[str, SetpointStatus]) -> list[Setpoint]:
    """The last setpoints with every battery's direction reversed (at least a quarter of its
    discharge rating; a battery at 0 W is sent to charge)."""
    batch = []
    for device in site.devices:
        status = last[device.id]
        power = status.requested_w
        if device.kind is DeviceKind.BATTERY:
            size = max(abs(power), 0.25 * device.max_discharge_w)
            power = -size if power >= 0 else size
        batch.append(Setpoint(device.id, device.kind, power, power))
    return batch


def bench_controller(site: Site, bridge: ModbusBridge, clock: ManualClock) -> Controller:
    """A controller of ``site`` with ``vpp run``'s defaults on ``bridge`` and ``clock``."""
    return Controller(
        site=site,
        clock=clock,
        plant=ModbusPlant.for_site(site, bridge, clock),
        planner=Planner(site),
        inputs=InputProvider.for_run(None, []),
        state=ControllerState(site=site, started_at=clock.now()),
    )


async def measure(site: Site, delay_ms: int, sim_pids: list[int | None]) -> Row:
    n = len(site.devices)
    row = Row(n, delay_ms)
    clock = ManualClock(START)
    async with ModbusBridge() as bridge:
        ctl = bench_controller(site, bridge, clock)
        plant = ctl.plant
        assert isinstance(plant, ModbusPlant)
        await ctl.run_job("poll")  # discovery, as at start
        freeze_heap()  # as `vpp run` does after start-up
        cpu, wall = time.process_time(), time.perf_counter()
        await ctl.run_job("poll")
        row.poll_s = time.perf_counter() - wall
        row.poll_cpu_us = (time.process_time() - cpu) / n * 1e6
        snapshot = ctl.state.snapshot
        row.online = 0 if snapshot is None else len(snapshot.online())
        ctl.plan_lead_s = 0.0  # `vpp run`'s start-up: the plan for now, then its dispatch
        await ctl.run_job("plan")
        freeze_heap()
        cpu, wall = time.process_time(), time.perf_counter()
        await ctl.run_job("dispatch")
        row.takeover_s = time.perf_counter() - wall
        row.takeover_cpu_us = (time.process_time() - cpu) / n * 1e6
        row.takeover_confirmed = sum(s.ok for s in ctl.state.setpoints.values())
        await own_mode(plant)  # as after a restart
        await ctl.run_job("poll")
        ctl.plan_lead_s = 60.0
        st = ctl.state
        staged, wall = st.setpoints_staged_total, time.perf_counter()
        solving = st.forecast_seconds_total + st.planner_seconds_total
        await ctl.run_job("plan")
        row.plan_s = time.perf_counter() - wall
        row.stage_s = row.plan_s - (st.forecast_seconds_total + st.planner_seconds_total - solving)
        row.staged = ctl.state.setpoints_staged_total - staged
        freeze_heap()  # as `vpp run` does after its start-up
        clock.advance(60)
        sim, cpu, wall = cpu_s(sim_pids), time.process_time(), time.perf_counter()
        await ctl.run_job("dispatch")
        row.dispatch_s = time.perf_counter() - wall
        row.dispatch_cpu_us = (time.process_time() - cpu) / n * 1e6
        row.sim_cpu_us = (cpu_s(sim_pids) - sim) / n * 1e6
        written = [s for s in ctl.state.setpoints.values() if s.written_w is not None]
        row.written, row.confirmed = len(written), sum(s.ok for s in written)
        clock.advance(15 * 60)  # the next quarter hour: devices under control
        await ctl.run_job("poll")
        sim, cpu, wall = cpu_s(sim_pids), time.process_time(), time.perf_counter()
        await ctl.run_job("dispatch")
        row.next_s = time.perf_counter() - wall
        row.next_cpu_us = (time.process_time() - cpu) / n * 1e6
        row.next_sim_cpu_us = (cpu_s(sim_pids) - sim) / n * 1e6
        now = clock.now()
        row.next_confirmed = sum(s.ok and s.time == now for s in ctl.state.setpoints.values())
        clock.advance(15 * 60)
        await ctl.run_job("poll")
        batch = turned_round(site, ctl.state.setpoints)
        sim, cpu, wall = cpu_s(sim_pids), time.process_time(), time.perf_counter()
        statuses = await ctl.apply(batch, "dispatch")
        row.turn_s = time.perf_counter() - wall
        row.turn_cpu_us = (time.process_time() - cpu) / n * 1e6
        row.turn_sim_cpu_us = (cpu_s(sim_pids) - sim) / n * 1e6
        row.turn_confirmed = sum(s.ok for s in statuses)
        row.rss_mb = rss_mb()
        reads = reads_of(plant)
    row.floor_s, floor_cpu = await floor(reads)
    row.floor_cpu_us = floor_cpu / max(len(reads), 1) * 1e6
    return row


def table(rows: list[Row]) -> Table:
    out = Table(title=f"one controller process, `vpp run` defaults (load {os.getloadavg()[0]:.1f})")
    for name in (
        "devices",
        "delay ms",
        "event loop",
        "poll s",
        "online",
        "poll CPU us/dev",
        "floor s",
        "floor CPU us/dev",
        "CPU / floor",
        "take-over s",
        "take-over CPU us/dev",
        "take-over confirmed",
        "plan s",
        "of it staging s",
        "staged",
        "dispatch s",
        "dispatch / take-over",
        "dispatch CPU us/dev",
        "sim CPU us/dev",
        "written/confirmed",
        "next dispatch s",
        "next CPU us/dev",
        "next sim CPU us/dev",
        "next confirmed",
        "turn s",
        "turn CPU us/dev",
        "turn sim CPU us/dev",
        "turn confirmed",
        "RSS MB",
    ):
        out.add_column(name, justify="right")
    for r in rows:
        out.add_row(
            f"{r.devices:,}",
            str(r.delay_ms),
            r.loop,
            f"{r.poll_s:.2f}",
            f"{r.online:,}",
            f"{r.poll_cpu_us:.0f}",
            f"{r.floor_s:.2f}",
            f"{r.floor_cpu_us:.0f}",
            f"{r.poll_cpu_us / max(r.floor_cpu_us, 1e-9):.2f}",
            f"{r.takeover_s:.2f}",
            f"{r.takeover_cpu_us:.0f}",
            f"{r.takeover_confirmed:,}",
            f"{r.plan_s:.2f}",
            f"{r.stage_s:.2f}",
            f"{r.staged:,}",
            f"{r.dispatch_s:.2f}",
            f"{r.dispatch_s / max(r.takeover_s, 1e-9):.2f}",
            f"{r.dispatch_cpu_us:.0f}",
            f"{r.sim_cpu_us:.0f}",
            f"{r.written:,}/{r.confirmed:,}",
            f"{r.next_s:.2f}",
            f"{r.next_cpu_us:.0f}",
            f"{r.next_sim_cpu_us:.0f}",
            f"{r.next_confirmed:,}",
            f"{r.turn_s:.2f}",
            f"{r.turn_cpu_us:.0f}",
            f"{r.turn_sim_cpu_us:.0f}",
            f"{r.turn_confirmed:,}",
            f"{r.rss_mb:.0f}",
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 3_000, 10_000])
    parser.add_argument("--delays-ms", type=int, nargs="+", default=[0, 20])
    parser.add_argument(
        "--event-loops", nargs="+", choices=LOOPS, default=list(LOOPS),
        help="event loops to measure (the first is the one the ratio is taken against)",
    )  # fmt: skip
    args = parser.parse_args()
    console = Console(width=400)
    rows = []
    for n in args.sizes:
        site = bench_site(n)
        for delay in args.delays_ms:
            shards = max(1, round(n / DEVICES_PER_SHARD))
            for loop in args.event_loops:
                with ShardedFleet(
                    site, shards, delay_s=delay / 1000 if delay else None, server="light"
                ) as fleet:
                    row = run_on_loop(measure(site, delay, fleet.pids), loop)
                row.loop = loop
                rows.append(row)
                console.print(table(rows[-1:]))
    console.print(table(rows))
    by = {(r.devices, r.delay_ms, r.loop): r for r in rows}
    for r in rows:
        base = by.get((r.devices, r.delay_ms, args.event_loops[0]))
        if base is None or r is base or not base.poll_cpu_us or not base.dispatch_cpu_us:
            continue
        console.print(
            f"{r.devices:,} devices, {r.delay_ms} ms, {r.loop} / {base.loop}: poll CPU "
            f"{r.poll_cpu_us / base.poll_cpu_us:.2f}x, dispatch CPU "
            f"{r.dispatch_cpu_us / base.dispatch_cpu_us:.2f}x, poll "
            f"{r.poll_s / base.poll_s:.2f}x, dispatch {r.dispatch_s / base.dispatch_s:.2f}x"
        )


if __name__ == "__main__":
    main()
