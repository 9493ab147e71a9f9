"""Benchmark: fleet polls of 100 and 1,000 simulated devices, concurrent versus one by one.

The simulated plant runs in a separate process (``adapters.sim.fleet.run_fleet_process``) so
that client and servers do not share an event loop. Every device presents the common, the
inverter or storage, and the nameplate models (``adapters.sim.synthetic``: PV 1/103/120/123,
batteries 1/103/120/124), gateway style with 100 unit ids per port.

For each fleet size and response delay it measures, with the same FleetPoller:

* first poll: discovery of every device (marker, chain walk, nameplate) plus the first read;
* repeated polls: the steady state that runs every 10 s, the median of several polls;

each concurrently (``max_concurrency``, ``--connections`` per port) and one device after the
other (the baseline), and prints devices per second and the ratio. A sequential first poll of
1,000 devices at 20 ms would take minutes, so there it is measured on the first 100 devices
and scaled (marked "est.").

Usage: ``python bench/poll_fleet.py [--sizes 100 1000] [--delays-ms 0 20] [--polls 5]``
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from adapters.bridge import ModbusBridge
from adapters.poll import FleetPoller
from adapters.sim.fleet import run_fleet_process
from adapters.sim.synthetic import synthetic_site
from vpp.core.site import Site

UNITS_PER_PORT = 100
#: Sequential runs longer than this are measured on a sample and scaled [s].
SEQUENTIAL_BUDGET_S = 25.0


@dataclass(frozen=True, slots=True)
class Row:
    devices: int
    delay_ms: float
    phase: str
    concurrent_s: float
    sequential_s: float
    estimated: bool

    def cells(self) -> list[str]:
        seq = f"{self.sequential_s:.2f}" + (" est." if self.estimated else "")
        return [
            f"{self.devices:,}",
            f"{self.delay_ms:g}",
            self.phase,
            f"{self.concurrent_s:.3f}",
            f"{self.devices / self.concurrent_s:,.0f}",
            seq,
            f"{self.devices / self.sequential_s:,.0f}",
            f"{self.sequential_s / self.concurrent_s:,.1f}x",
        ]


def free_port_range(n: int, start: int = 20000) -> int:
    """First port of ``n`` consecutive ports on loopback that nothing listens on."""
    base = start
    while base + n < 65000:
        socks: list[socket.socket] = []
        try:
            for port in range(base, base + n):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            base = port + 1
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {n} consecutive free ports")


def subset(site: Site, n: int) -> Site:
    """The same site with only its first ``n`` devices."""
    return site.model_copy(update={"devices": site.devices[:n]})


async def timed_poll(poller: FleetPoller) -> float:
    """Wall time of one poll [s]; RuntimeError if a device failed (the figures would lie)."""
    t0 = time.perf_counter()
    snap = await poller.poll()
    elapsed = time.perf_counter() - t0
    failed = snap.offline()
    if failed:
        examples = [d.health.last_error for d in failed[:3]]
        raise RuntimeError(f"{len(failed)} devices failed, e.g. {examples}")
    return elapsed


async def bench_fleet(
    site: Site, delay_ms: float, polls: int, connections: int, concurrency: int
) -> list[Row]:
    """Concurrent first and repeated polls, then the same one device after the other."""
    n = len(site.devices)
    async with ModbusBridge(connections_per_endpoint=connections) as bridge:
        poller = FleetPoller(site, bridge, max_concurrency=concurrency)
        first_c = await timed_poll(poller)
        steady_c = statistics.median([await timed_poll(poller) for _ in range(polls)])
        poller.max_concurrency = 1  # baseline: same devices, discovery done, one at a time
        seq_polls = 1 if n * (delay_ms / 1000 + 0.002) > SEQUENTIAL_BUDGET_S / 2 else 2
        steady_s = statistics.median([await timed_poll(poller) for _ in range(seq_polls)])
    # A sequential first poll costs ~8 requests per device: measure a sample when too long.
    sample = site
    if n * 8 * (delay_ms / 1000 + 0.002) > SEQUENTIAL_BUDGET_S:
        sample = subset(site, min(n, 100))
    async with ModbusBridge(connections_per_endpoint=1) as bridge:
        first_s = await timed_poll(FleetPoller(sample, bridge, max_concurrency=1))
    first_s *= n / len(sample.devices)
    estimated = len(sample.devices) < n
    return [
        Row(n, delay_ms, "first poll (discovery)", first_c, first_s, estimated),
        Row(n, delay_ms, f"repeated (median of {polls})", steady_c, steady_s, False),
    ]


async def run(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    for size in args.sizes:
        n_bat = size // 5
        base = free_port_range(-(-size // UNITS_PER_PORT))
        site = synthetic_site(size - n_bat, n_bat, base, UNITS_PER_PORT)
        for delay_ms in args.delays_ms:
            with run_fleet_process(site, delay_s=delay_ms / 1000.0, timeout_s=120.0):
                rows += await bench_fleet(
                    site, delay_ms, args.polls, args.connections, args.concurrency
                )
            print(f"  done: {size} devices at {delay_ms:g} ms", flush=True)
    return rows


def table(rows: Sequence[Row], args: argparse.Namespace) -> Table:
    out = Table(
        title=f"Fleet poll: concurrent (max_concurrency {args.concurrency}, "
        f"{args.connections} connections per port) vs one device after another"
    )
    for name in (
        "devices",
        "delay ms",
        "poll",
        "concurrent s",
        "dev/s",
        "sequential s",
        "dev/s",
        "speed-up",
    ):
        out.add_column(name, justify="left" if name == "poll" else "right")
    for row in rows:
        out.add_row(*row.cells())
    out.caption = (
        f"{UNITS_PER_PORT} unit ids per port; 80 % PV (1/103|113/120/123), 20 % batteries "
        "(1/103/120/124); simulators in a separate process"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--delays-ms", type=float, nargs="+", default=[0.0, 20.0])
    parser.add_argument("--polls", type=int, default=5, help="repeated polls per case")
    parser.add_argument("--connections", type=int, default=8, help="connections per port")
    parser.add_argument("--concurrency", type=int, default=200, help="devices in flight")
    args = parser.parse_args()
    t0 = time.perf_counter()
    rows = asyncio.run(run(args))
    Console(width=132).print(table(rows, args))
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
