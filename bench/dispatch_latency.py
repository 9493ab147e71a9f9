"""Benchmark: from the quarter-hour boundary until every setpoint is written and read back.

The simulated fleet (half PV inverters, half batteries; ``adapters.sim.synthetic``) runs in a
child process; the controller runs here with the real bridge, poller, controls and planner on a
manual clock. The plan for the next quarter hour is made before the boundary (as ``vpp run``
does), so the dispatch at the boundary only checks, writes and reads back. For each fleet size
it prints the dispatch time (median of several quarter hours) with all devices written
concurrently, and in the same run the same dispatch one device after another as the baseline.

Then the memory part: the controller for the largest fleet runs a simulated day (poll, plan,
dispatch, correct, keepalive, watchdog in controller time; polls every ``--day-poll-s`` to keep
the run short) and the resident set size is printed at the start, every few hours and at the
end. Target: dispatch of 1,000 devices under 2 s; RSS under 500 MB over the day.

Usage: ``python bench/dispatch_latency.py [--sizes 100 1000] [--quarters 3] [--day-poll-s 300]``
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from process_limit import bench_controller
from rich.console import Console
from rich.table import Table

from adapters.bridge import ModbusBridge
from adapters.sim.fleet import run_fleet_process
from adapters.sim.synthetic import synthetic_site
from vpp.control.runner import step
from vpp.core.clock import ManualClock
from vpp.core.site import Site, parse_site

START = datetime(2026, 6, 21, 9, 59, tzinfo=UTC)
UNITS_PER_PORT = 100


def rss_mb() -> float:
    """Resident set size now [MB] (from /proc; falls back to the peak)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def free_base_port(span: int) -> int:
    """A base port with ``span`` free ports above it (checked by binding)."""
    for base in range(21000, 60000, 50):
        try:
            socks = []
            for p in range(base, base + span):
                s = socket.socket()
                s.bind(("127.0.0.1", p))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def bench_site(n: int, concurrency: int, poll_s: float = 10.0) -> Site:
    ports = (n + UNITS_PER_PORT - 1) // UNITS_PER_PORT
    site = synthetic_site(n // 2, n - n // 2, free_base_port(ports), UNITS_PER_PORT)
    data: dict[str, Any] = site.model_dump(mode="json")
    data["run"] = {"dispatch_concurrency": concurrency}
    data["poll"]["interval_s"] = poll_s
    data["optimizer"]["horizon_h"] = 24
    return parse_site(data, "<bench>")


async def dispatch_times(site: Site, quarters: int) -> tuple[list[float], int, int]:
    """Seconds of each boundary dispatch, setpoints written, read-backs that matched."""
    clock = ManualClock(START)
    async with ModbusBridge(connections_per_endpoint=8) as bridge:
        ctl = bench_controller(site, bridge, clock)
        times: list[float] = []
        for _ in range(quarters):
            await ctl.run_job("poll")
            ctl.plan_lead_s = 60.0
            await ctl.run_job("plan")  # one minute before the boundary
            clock.advance(60)
            started = time.perf_counter()
            await ctl.run_job("dispatch")
            times.append(time.perf_counter() - started)
            clock.advance(14 * 60)
        written = [s for s in ctl.state.setpoints.values() if s.written_w is not None]
        return times, len(written), sum(s.ok for s in written)


async def day_memory(site: Site) -> list[tuple[str, float]]:
    clock = ManualClock(START)
    samples = [("start", rss_mb())]
    async with ModbusBridge(connections_per_endpoint=8) as bridge:
        ctl = bench_controller(site, bridge, clock)
        for job in ("poll", "plan", "dispatch"):
            await ctl.run_job(job)
        samples.append(("after first plan", rss_mb()))
        for hours in range(6, 25, 6):
            await step(ctl, clock, START + timedelta(hours=hours))
            samples.append((f"+{hours} h ({ctl.state.plans_total} plans)", rss_mb()))
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--quarters", type=int, default=3)
    parser.add_argument("--day-poll-s", type=float, default=300.0)
    parser.add_argument("--skip-day", action="store_true")
    parser.add_argument("--day-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.day_only:
        day_table(args)
        return
    console = Console()
    table = Table(title="Dispatch at the quarter hour: write + read back every setpoint")
    for col in ("devices", "setpoints ok", "concurrent s", "sequential s", "speed-up"):
        table.add_column(col, justify="right")
    for n in args.sizes:
        site = bench_site(n, concurrency=n)
        with run_fleet_process(site):
            conc, written, ok = asyncio.run(dispatch_times(site, args.quarters))
            seq_site = parse_site(
                {**site.model_dump(mode="json"), "run": {"dispatch_concurrency": 1}}, "<bench>"
            )
            seq, _, _ = asyncio.run(dispatch_times(seq_site, 1))
        c, s = statistics.median(conc), statistics.median(seq)
        table.add_row(f"{n:,}", f"{ok}/{written}", f"{c:.3f}", f"{s:.3f}", f"{s / c:.1f}x")
        console.print(f"  {n} devices: concurrent runs {[round(t, 3) for t in conc]}")
    console.print(table)
    if not args.skip_day:
        # A fresh process, so the figures are the controller's own and not the dispatch runs'.
        cmd = [
            sys.executable,
            __file__,
            "--day-only",
            "--day-poll-s",
            str(args.day_poll_s),
            "--sizes",
            str(max(args.sizes)),
        ]
        subprocess.run(cmd, check=True)


def day_table(args: argparse.Namespace) -> None:
    console = Console()
    n = max(args.sizes)
    site = bench_site(n, concurrency=n, poll_s=args.day_poll_s)
    started = time.perf_counter()
    with run_fleet_process(site):
        samples = asyncio.run(day_memory(site))
    mem = Table(
        title=f"Controller memory over a simulated day, {n:,} devices "
        f"(poll every {args.day_poll_s:.0f} s, {time.perf_counter() - started:.0f} s wall)"
    )
    mem.add_column("when")
    mem.add_column("RSS MB", justify="right")
    for when, mb in samples:
        mem.add_row(when, f"{mb:.0f}")
    console.print(mem)


if __name__ == "__main__":
    main()
