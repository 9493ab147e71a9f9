"""Fault 8 of the fault benchmark: concurrent readers of the operator API in another process,
each fetching what the operator page fetches as often as the page does, and the controller's
poll and dispatch durations without and with them."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import multiprocessing
import os
import resource
import statistics
import time
import urllib.request
from collections import Counter
from datetime import timedelta
from typing import Any

from faultbench.harness import Rig
from faultbench.report import Row, window_row

#: Fault 8: the operator page's refresh (vpp/web/static/app.js REFRESH_MS) and what it fetches.
PAGE_REFRESH_S = 5.0
PAGE_PATHS = ("/api/status", "/api/plan", "/api/devices?limit=200", "/api/alerts")


# -- fault 8: concurrent readers of the API ----------------------------------------------------


def _readers_main(
    url: str, n: int, period_s: float, max_s: float, ready: Any, active: Any, stop: Any, out: Any
) -> None:
    # Browsers run on other machines: here they yield the CPU to the controller.
    with contextlib.suppress(OSError):
        os.nice(10)
    out.put(asyncio.run(_readers(url, n, period_s, max_s, ready, active, stop)))


async def _readers(
    url: str, n: int, period_s: float, max_s: float, ready: Any, active: Any, stop: Any
) -> dict[str, Any]:
    """``n`` operator pages, each fetching PAGE_PATHS at once every ``period_s`` (spread
    evenly over the period) while ``active`` is set, until ``stop`` is set or ``max_s``."""
    import aiohttp  # only in the child

    latencies: list[float] = []
    by_path: dict[str, list[float]] = {p: [] for p in PAGE_PATHS}
    errors: Counter[str] = Counter()
    began = time.monotonic()
    deadline = began + max_s
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def get(path: str) -> None:
            started = time.monotonic()
            try:
                async with session.get(url + path) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors[f"HTTP {resp.status}"] += 1
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[type(exc).__name__] += 1
                return
            latencies.append(time.monotonic() - started)
            by_path[path].append(latencies[-1])

        async def reader(i: int) -> None:
            # Each page keeps its own phase, so switching the load on needs no ramp.
            for k in range(int(max_s / period_s) + 1):
                due = began + period_s * (k + i / n)
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if time.monotonic() >= deadline:
                    return
                if active.is_set():
                    await asyncio.gather(*(get(p) for p in PAGE_PATHS))

        tasks = [asyncio.create_task(reader(i)) for i in range(n)]
        ready.set()
        # A multiprocessing Event: waited for in a thread, the readers go on meanwhile.
        await asyncio.to_thread(stop.wait, max(0.0, deadline - time.monotonic()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    q = lambda p: latencies[int(p * (len(latencies) - 1))] if latencies else math.nan  # noqa: E731
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "requests": len(latencies),
        "errors": dict(errors),
        "p50_s": q(0.5),
        "p95_s": q(0.95),
        "max_s": latencies[-1] if latencies else math.nan,
        "path_p50_s": {p: statistics.median(v) if v else math.nan for p, v in by_path.items()},
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


class Readers:
    """The readers in a child process (a browser is not in the controller's process),
    switched on and off with :meth:`load`."""

    def __init__(self, url: str, n: int, period_s: float, max_s: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._ready = ctx.Event()
        self._active = ctx.Event()
        self._stop = ctx.Event()
        self._out: Any = ctx.Queue()
        self._proc = ctx.Process(
            target=_readers_main,
            args=(url, n, period_s, max_s, self._ready, self._active, self._stop, self._out),
            name="bench-api-readers",
        )
        self.result: dict[str, Any] = {}

    def load(self, on: bool) -> None:
        if on:
            self._active.set()
        else:
            self._active.clear()

    async def __aenter__(self) -> Readers:
        self._proc.start()
        for _ in range(300):  # 30 s at most
            if self._ready.is_set() or not self._proc.is_alive():
                break
            await asyncio.sleep(0.1)
        if not self._ready.is_set():
            self._kill()
            raise RuntimeError("the API readers did not start")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._active.clear()
        self._stop.set()
        for _ in range(200):  # 20 s at most
            with contextlib.suppress(Exception):
                self.result = self._out.get_nowait()
                break
            await asyncio.sleep(0.1)
        self._kill()

    def _kill(self) -> None:
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)


async def timed_ticks(rig: Rig, ticks: int, pace_s: float) -> dict[str, list[float]]:
    """``ticks`` poll intervals, each with the jobs that are due (a poll every tick) and one
    more dispatch of the current quarter, at most one tick per ``pace_s`` of wall time, so
    the event loop is idle between jobs as in a live run and answers requests then."""
    out: dict[str, list[float]] = {"poll": [], "dispatch": []}
    for _ in range(ticks):
        started = time.perf_counter()
        n = len(rig.audit.jobs)
        await rig.tick()
        await rig._run("dispatch")
        for j in rig.audit.jobs[n:]:
            if j.name in out:
                out[j.name].append(j.wall_s)
        await asyncio.sleep(max(0.0, pace_s - (time.perf_counter() - started)))
    return out


def request_times(url: str, repeat: int) -> dict[str, float]:
    """Median wall time of each page request, one at a time (no other load): what one
    request costs the controller's event loop, give or take the client."""
    out = {}
    for path in PAGE_PATHS:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            with urllib.request.urlopen(url + path, timeout=10) as resp:
                resp.read()
            times.append(time.perf_counter() - started)
        out[path] = statistics.median(times)
    return out


async def readers_phase(rig: Rig, args: argparse.Namespace) -> Row:
    """Blocks of ticks without and with readers, alternating (off first and last), so a
    change in the machine's load meets both alike."""
    row = Row(8, f"{args.readers} concurrent API readers")
    blocks, ticks, pace = (5, 6, 0.5) if args.quick else (7, 10, 0.5)
    await rig.run_until(rig.now + timedelta(minutes=1))
    began = rig.now
    url = f"http://127.0.0.1:{rig.http_port}"
    max_s = blocks * ticks * (pace + 2.0) + 60
    times: dict[bool, dict[str, list[float]]] = {False: {}, True: {}}
    loaded_s = 0.0
    alone = await asyncio.to_thread(request_times, url, 5)
    async with Readers(url, args.readers, args.reader_period_s, max_s) as readers:
        for block in range(blocks):
            on = block % 2 == 1
            readers.load(on)
            started = time.perf_counter()
            for job, values in (await timed_ticks(rig, ticks, pace)).items():
                times[on].setdefault(job, []).extend(values)
            if on:
                loaded_s += time.perf_counter() - started
    row = window_row(rig, row, began, rig.now)
    row.notes.append(
        "load average (1 min) of the machine at the end: "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    row.ratios = {}
    for job in ("poll", "dispatch"):
        base, with_ = statistics.median(times[False][job]), statistics.median(times[True][job])
        row.ratios[job] = with_ / base
        row.notes.append(
            f"{job}: median {base * 1e3:.0f} ms without readers ({len(times[False][job])} runs), "
            f"{with_ * 1e3:.0f} ms with them ({len(times[True][job])} runs): x{with_ / base:.2f}"
        )
    per_page = sum(alone.values())
    row.notes.append(
        "one request at a time, no readers: "
        + ", ".join(f"{p} {t * 1e3:.0f} ms" for p, t in alone.items())
        + f"; {per_page * 1e3:.0f} ms per page refresh, so {args.readers} pages every "
        f"{args.reader_period_s:g} s ask for about "
        f"{per_page * args.readers / args.reader_period_s:.0%} of the event loop"
    )
    res = readers.result
    if res:
        rate = res["requests"] / loaded_s if loaded_s else math.nan
        row.notes.append(
            f"readers: {args.readers} pages every {args.reader_period_s:g} s, "
            f"{res['requests']} requests answered ({rate:.0f}/s while on), "
            f"p50 {res['p50_s'] * 1e3:.0f} ms, p95 {res['p95_s'] * 1e3:.0f} ms, "
            f"max {res['max_s'] * 1e3:.0f} ms, errors {res['errors'] or 0}; the reader process "
            f"used {res['cpu_s']:.1f} s of CPU (nice 10)"
        )
        row.notes.append(
            "median latency by path: "
            + ", ".join(f"{p} {t * 1e3:.0f} ms" for p, t in res["path_p50_s"].items())
        )
    else:
        row.notes.append("readers: no result from the reader process")
    return row
