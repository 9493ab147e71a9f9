"""Measure how many device polls per second the simulated servers answer.

    python -m adapters.sim.loadtest --pv 800 --batteries 200 --seconds 10 --connections 1

Serves a synthetic site from a child process (so the servers do not share a CPU core with
the client) and polls it with plain pymodbus clients: ``--connections`` per port, each
walking its share of the unit ids. One device poll reads the device's whole register image
(marker to end marker) in requests of at most 125 registers, as a poller that has already
discovered the device would.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass

from pymodbus.client import AsyncModbusTcpClient

from adapters.sim.fleet import SimFleet, run_fleet_process
from adapters.sim.synthetic import synthetic_site
from vpp.core.site import Site

MAX_READ = 125


@dataclass
class Tally:
    """Polls and requests done, errors seen."""

    polls: int = 0
    requests: int = 0
    errors: int = 0


def poll_plan(site: Site) -> dict[int, list[tuple[int, list[tuple[int, int]]]]]:
    """Per port: (unit, [(address, count), ...]) covering each device's whole image."""
    fleet = SimFleet(site, step_interval_s=None)
    plan: dict[int, list[tuple[int, list[tuple[int, int]]]]] = {}
    for dev in fleet.devices:
        image = dev.image
        reads = [(a, min(MAX_READ, image.end - a)) for a in range(image.base, image.end, MAX_READ)]
        plan.setdefault(dev.port, []).append((dev.unit, reads))
    return plan


async def _poll_loop(
    host: str,
    port: int,
    devices: list[tuple[int, list[tuple[int, int]]]],
    until: float,
    tally: Tally,
) -> None:
    client = AsyncModbusTcpClient(host, port=port, timeout=5, retries=0, reconnect_delay=0)
    await client.connect()
    try:
        while time.perf_counter() < until:
            for unit, reads in devices:
                for address, count in reads:
                    reply = await client.read_holding_registers(
                        address, count=count, device_id=unit
                    )
                    tally.requests += 1
                    tally.errors += int(reply.isError())
                tally.polls += 1
                if time.perf_counter() >= until:
                    break
    finally:
        client.close()


async def measure(site: Site, host: str, seconds: float, connections: int) -> tuple[Tally, float]:
    """Poll every device of ``site`` for ``seconds``; returns the tally and the elapsed time."""
    plan = poll_plan(site)
    tally = Tally()
    started = time.perf_counter()
    until = started + seconds
    loops = [
        _poll_loop(host, port, devices[k::connections], until, tally)
        for port, devices in plan.items()
        for k in range(connections)
        if devices[k::connections]
    ]
    await asyncio.gather(*loops)
    return tally, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pv", type=int, default=800)
    parser.add_argument("--batteries", type=int, default=200)
    parser.add_argument("--base-port", type=int, default=16000)
    parser.add_argument("--units-per-port", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=1, help="clients per port")
    parser.add_argument("--delay-ms", type=float, default=None, help="response delay")
    args = parser.parse_args()
    site = synthetic_site(args.pv, args.batteries, args.base_port, args.units_per_port)
    delay_s = None if args.delay_ms is None else args.delay_ms / 1000.0
    with run_fleet_process(site, delay_s=delay_s):
        tally, elapsed = asyncio.run(measure(site, "127.0.0.1", args.seconds, args.connections))
    print(
        f"{len(site.devices)} devices, {args.connections} connection(s) per port: "
        f"{tally.polls / elapsed:,.0f} device polls/s, {tally.requests / elapsed:,.0f} "
        f"requests/s, {tally.errors} errors in {elapsed:.1f} s"
    )


if __name__ == "__main__":
    main()
