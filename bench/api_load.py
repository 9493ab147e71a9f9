"""Benchmark: do readers of the operator API slow down the control jobs?

The demo district (``config/demo.toml``, 88 devices, on free loopback ports) runs in this
process as ``vpp run --speed K`` runs it: simulated fleet, bridge, recorder, planner, scheduler
and HTTP server. The run alternates phases without readers and phases with ``--readers``
concurrent API readers (an aiohttp client in a child process on 127.0.0.1, so the readers
share neither the controller's event loop nor its interpreter lock), and records the duration
of every run of the ``poll`` and ``dispatch`` jobs. It prints, for each job, the median and
90th percentile of the durations with and without readers and their ratio (target: within
20 %), how many runs there were (runs the scheduler missed show as fewer), and what the
readers got (requests answered, 503s, latencies).

The reader load is :func:`read_api` (run it on any event loop) and :class:`ReaderLoad` (the
same in a child process), for other benchmarks to reuse.

On a small machine the reader process itself takes CPU time from the controller, which readers
in browsers elsewhere do not: ``--reader-nice`` runs it at a lower priority (the table says
which). ``--cpu-share`` changes the server's CPU budget (``vpp.web.guard.Limits.cpu_share``)
and ``--switch-interval`` the interpreter's (``sys.setswitchinterval``), to see what they do.

Usage: ``python bench/api_load.py [--readers 200] [--phase-s 40] [--rounds 2] [--speed 60]
[--reader-nice 0] [--cpu-share S] [--switch-interval S]``
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import multiprocessing
import os
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.table import Table

try:
    from vpp.app import RunOptions, run  # where the app lives since the controller rewrite
except ImportError:
    from vpp.control.app import RunOptions, run  # type: ignore[no-redef]
from vpp.control.controller import Controller
from vpp.core.site import Site, parse_site

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "demo.toml"
#: What an operator page reads (``/metrics`` is Prometheus's, not a reader's).
API_PATHS = ("/api/status", "/api/plan", "/api/devices", "/api/alerts", "/api/caps")
#: A June morning: PV, batteries and the heat pump all work.
START = datetime(2026, 6, 21, 7, 0, tzinfo=UTC)
#: Job runs that start this soon after a phase begins are left out (readers connecting).
SETTLE_S = 2.0
JOBS = ("poll", "dispatch")


# -- the reader load (reusable) ----------------------------------------------------------------


@dataclass
class ReaderStats:
    """What a reader load got: answers by status, failures, latencies of answers (s)."""

    readers: int
    duration_s: float
    statuses: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def latency(self, q: float) -> float | None:
        if not self.latencies_s:
            return None
        ordered = sorted(self.latencies_s)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> str:
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        fails = ", ".join(f"{kind}: {n}" for kind, n in self.failures.most_common())
        p50, p95 = self.latency(0.5), self.latency(0.95)
        lat = f"p50 {p50:.3f} s, p95 {p95:.3f} s" if p50 is not None and p95 is not None else "-"
        rate = self.answered / self.duration_s if self.duration_s > 0 else 0.0
        return (
            f"{self.readers} readers, {self.duration_s:.0f} s: {self.answered} answers "
            f"({rate:.0f}/s; {codes or 'none'}){'; failed: ' + fails if fails else ''}; {lat}"
        )


async def read_api(
    base_url: str,
    *,
    readers: int = 200,
    duration_s: float = 30.0,
    paths: Sequence[str] = API_PATHS,
    timeout_s: float = 10.0,
    max_requests: int | None = None,
) -> ReaderStats:
    """``readers`` concurrent clients, each reading ``paths`` in turn as fast as it is
    answered, for ``duration_s`` (and at most ``max_requests`` requests in all); every request
    has a ``timeout_s`` deadline. Each client keeps its own connection open (keep-alive)."""
    stats = ReaderStats(readers, duration_s)
    deadline = time.monotonic() + duration_s
    budget = [max_requests if max_requests is not None else float("inf")]
    timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def reader(i: int) -> None:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            n = i
            while time.monotonic() < deadline and budget[0] > 0:
                budget[0] -= 1
                path = paths[n % len(paths)]
                n += 1
                started = time.monotonic()
                try:
                    async with http.get(base_url + path) as resp:
                        await resp.read()
                        stats.statuses[resp.status] += 1
                        if resp.status == 200:
                            stats.latencies_s.append(time.monotonic() - started)
                        elif resp.status == 503:
                            # The server asked us to come back later: do as a browser would.
                            await asyncio.sleep(float(resp.headers.get("Retry-After", "1")))
                except (aiohttp.ClientError, TimeoutError) as exc:
                    stats.failures[type(exc).__name__] += 1
                    await asyncio.sleep(0.1)

    started = time.monotonic()
    await asyncio.gather(*(reader(i) for i in range(readers)))
    stats.duration_s = time.monotonic() - started
    return stats


def _reader_child(
    base_url: str, options: dict[str, Any], nice: int, reading: Any, out: Any
) -> None:
    if nice:
        os.nice(nice)
    reading.set()
    stats = asyncio.run(read_api(base_url, **options))
    out.send(stats)
    out.close()


class ReaderLoad:
    """:func:`read_api` in a spawned child process (at ``nice`` priority): start, do
    something, then :meth:`result`.

    ::

        with ReaderLoad("http://127.0.0.1:9310", readers=200, duration_s=30) as load:
            ...  # measure something while the readers read
        print(load.result().summary())
    """

    def __init__(self, base_url: str, *, nice: int = 0, **options: Any) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._recv, send = ctx.Pipe(duplex=False)
        self._reading = ctx.Event()
        self._process = ctx.Process(
            target=_reader_child,
            args=(base_url, options, nice, self._reading, send),
            name="api-readers",
        )
        self._stats: ReaderStats | None = None
        self._timeout_s = float(options.get("duration_s", 30.0)) + 60.0

    def start(self, timeout_s: float = 60.0) -> ReaderLoad:
        """Start the child; returns once it begins to read (it imports this module first)."""
        self._process.start()
        if not self._reading.wait(timeout_s):
            self.stop()
            raise RuntimeError("the reader process did not start in time")
        return self

    def result(self) -> ReaderStats:
        """The readers' statistics once they are done (waits for the child, bounded)."""
        if self._stats is None:
            if not self._recv.poll(self._timeout_s):
                self.stop()
                raise RuntimeError("the reader process did not report in time")
            self._stats = self._recv.recv()
            self._process.join(10)
        return self._stats

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(10)

    def __enter__(self) -> ReaderLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            self.stop()


# -- the controller under test -----------------------------------------------------------------


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def demo_site() -> Site:
    """The whole demo district with every Modbus port moved to a free one."""
    text = DEMO.read_text(encoding="utf-8")
    old = sorted({int(p) for p in re.findall(r"port = (\d+),", text)})
    for before, after in zip(old, free_ports(len(old)), strict=True):
        text = text.replace(f"port = {before},", f"port = {after},")
    return parse_site(tomllib.loads(text), "demo (bench)")


@dataclass
class JobRun:
    name: str
    ended: float  # time.monotonic()
    seconds: float


def record_jobs(ctl: Controller, runs: list[JobRun]) -> None:
    """Record every job run's duration as the controller reports it to its metrics."""
    observe = ctl.metrics.observe_job

    def observe_and_keep(name: str, seconds: float) -> None:
        runs.append(JobRun(name, time.monotonic(), seconds))
        observe(name, seconds)

    ctl.metrics.observe_job = observe_and_keep


@dataclass
class Phase:
    readers: int
    start: float
    end: float
    stats: ReaderStats | None = None
    server_cpu_s: float | None = None  # CPU time of the HTTP server's thread in the phase


def server_cpu_clock() -> int | None:
    """The CPU-time clock of the HTTP server's thread (None where it has none of its own)."""
    for thread in threading.enumerate():
        if thread.name == "vpp-web" and thread.ident is not None:
            return time.pthread_getcpuclockid(thread.ident)
    return None


async def measure(args: argparse.Namespace, db: Path) -> tuple[list[Phase], list[JobRun]]:
    site = demo_site()
    port = free_ports(1)[0]
    opts = RunOptions(speed=args.speed, start=START, simulate=True, db_path=str(db), http_port=port)
    stop = asyncio.Event()
    ready: asyncio.Future[Controller] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(run(site, opts, stop, on_ready=ready.set_result))
    runs: list[JobRun] = []
    phases: list[Phase] = []
    url = f"http://127.0.0.1:{port}"
    try:
        ctl = await asyncio.wait_for(ready, 120)
        record_jobs(ctl, runs)
        cpu = server_cpu_clock()
        await asyncio.sleep(args.warmup_s)
        for _ in range(args.rounds):
            for readers in (0, args.readers):
                if readers:
                    load = ReaderLoad(
                        url, readers=readers, duration_s=args.phase_s, nice=args.reader_nice
                    )
                    await asyncio.to_thread(load.start)
                    phase = Phase(readers, time.monotonic(), 0.0)
                    cpu0 = time.clock_gettime(cpu) if cpu is not None else 0.0
                    phase.stats = await asyncio.to_thread(load.result)
                else:
                    phase = Phase(readers, time.monotonic(), 0.0)
                    cpu0 = time.clock_gettime(cpu) if cpu is not None else 0.0
                    await asyncio.sleep(args.phase_s)
                phase.end = time.monotonic()
                if cpu is not None:
                    phase.server_cpu_s = time.clock_gettime(cpu) - cpu0
                phases.append(phase)
                share = (
                    f"; server thread used {phase.server_cpu_s / (phase.end - phase.start):.1%}"
                    f" of a core"
                    if phase.server_cpu_s is not None
                    else ""
                )
                print(
                    f"  phase with {readers} readers done"
                    + (f": {phase.stats.summary()}" if phase.stats else "")
                    + share,
                    flush=True,
                )
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    return phases, runs


def durations(runs: list[JobRun], phases: list[Phase], name: str, readers: int) -> list[float]:
    out = []
    for p in phases:
        if p.readers != readers:
            continue
        out += [
            r.seconds
            for r in runs
            if r.name == name and p.start + SETTLE_S <= r.ended - r.seconds and r.ended <= p.end
        ]
    return out


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--phase-s", type=float, default=40.0, help="wall seconds per phase")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of phases (none, readers)")
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--warmup-s", type=float, default=10.0)
    parser.add_argument("--reader-nice", type=int, default=0, help="nice value of the readers")
    parser.add_argument("--cpu-share", type=float, default=None, help="the server's CPU budget")
    parser.add_argument("--switch-interval", type=float, default=None, help="seconds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("apscheduler", "pymodbus"):  # as vpp run does
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    if args.cpu_share is not None:
        import vpp.web.server
        from vpp.web.guard import Limits

        # make_app builds Limits() from this name when vpp run passes none.
        vpp.web.server.Limits = functools.partial(Limits, cpu_share=args.cpu_share)  # type: ignore[misc]
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    with tempfile.TemporaryDirectory() as tmp:
        phases, runs = asyncio.run(measure(args, Path(tmp) / "vpp.sqlite"))
    console = Console()
    try:
        from vpp.web.guard import Limits

        share = f"{args.cpu_share if args.cpu_share is not None else Limits().cpu_share:g}"
    except ImportError:  # a tree from before the server had a CPU budget
        share = "unlimited"
    table = Table(
        title=f"Control jobs with 0 and {args.readers} API readers "
        f"(demo district, 88 devices, --speed {args.speed:g}, "
        f"{args.rounds} x {args.phase_s:.0f} s per condition; readers at nice "
        f"{args.reader_nice}; server CPU share {share}; switch interval "
        f"{sys.getswitchinterval() * 1e3:g} ms)"
    )
    for col in ("job", "readers", "runs", "median s", "p90 s", "median ratio", "p90 ratio"):
        table.add_column(col, justify="right")
    for name in JOBS:
        base = durations(runs, phases, name, 0)
        loaded = durations(runs, phases, name, args.readers)
        if not base or not loaded:
            table.add_row(name, "-", f"{len(base)}/{len(loaded)}", "-", "-", "-", "-")
            continue
        b50, b90 = statistics.median(base), p90(base)
        table.add_row(name, "0", str(len(base)), f"{b50:.4f}", f"{b90:.4f}", "1.00", "1.00")
        l50, l90 = statistics.median(loaded), p90(loaded)
        table.add_row(
            name,
            str(args.readers),
            str(len(loaded)),
            f"{l50:.4f}",
            f"{l90:.4f}",
            f"{l50 / b50:.2f}",
            f"{l90 / b90:.2f}",
        )
    console.print(table)
    for p in phases:
        if p.stats is not None:
            cpu = (
                f"; server thread {p.server_cpu_s / (p.end - p.start):.1%} of a core, "
                f"{p.server_cpu_s / max(p.stats.answered, 1) * 1e3:.2f} ms per answer"
                if p.server_cpu_s is not None
                else ""
            )
            console.print(f"  readers: {p.stats.summary()}{cpu}")


if __name__ == "__main__":
    main()
