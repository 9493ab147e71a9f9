"""Where the CPU of one dispatch goes: the controller and the simulator processes beside it.

The set-up of ``bench/process_limit.py`` (synthetic fleet, half PV half batteries, served by
child processes of about 2,500 devices each, function code 23, ``vpp run`` defaults, manual
clock): discovery poll, poll, plan, then the ``dispatch`` job profiled. The controller is
profiled with cProfile (on CPU time, not wall time) around the job; each simulator process
profiles itself the same way between SIGUSR1 (start) and SIGUSR2 (stop and write its
stats), so both sides cover the same dispatch (the first after the plan, as
``process_limit.py`` measures it: the plan job staged the batteries' rates, so every device
takes one request; before staging, the profiles in docs/dispatch-cpu.md, 1.5). Prints the
top functions by own time and by cumulative time on each side, in us per device (cProfile's
own overhead inflates every figure, roughly alike on both sides, and most where many small
functions are called).

``--sampler py-spy`` samples instead (``py-spy record --nonblocking``, 250 samples per s,
idle threads left out), attached to this process and to every simulator process for the
same dispatch: no function is slowed more than another, at the price of sampling noise.
A thread that waits for a core (a loaded machine) still counts as busy, so each side's
samples are scaled to its measured CPU: a function's figure is its share of the samples
times that side's CPU per device.

Run: ``.venv/bin/python bench/profile_dispatch.py [--devices 3000] [--delay-ms 20] [--top 25]
[--dump controller.prof] [--sampler cprofile|py-spy]``
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import multiprocessing
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from process_limit import DEVICES_PER_SHARD, START, bench_controller, bench_site, cpu_s

from adapters.bridge import ModbusBridge
from adapters.sim.fleet import serve_site
from adapters.sim.sharded import ShardedFleet, shard_site
from vpp.control.controller import Controller
from vpp.control.runner import freeze_heap
from vpp.core.clock import ManualClock
from vpp.core.site import Site


def _profiled_child(site: Site, options: dict[str, Any], ready: Any, out: str) -> None:
    """Serve ``site``; SIGUSR1 starts cProfile, SIGUSR2 stops it and writes ``out``."""
    prof = cProfile.Profile(time.process_time)

    def start(*_: object) -> None:
        prof.enable()

    def stop(*_: object) -> None:
        prof.disable()
        prof.dump_stats(out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    asyncio.run(serve_site(site, on_ready=lambda _fleet: ready.set(), **options))


class ProfiledShards:
    """The shards of ``site`` in child processes that profile themselves on signal."""

    def __init__(self, site: Site, shards: int, delay_s: float | None, folder: str) -> None:
        ctx = multiprocessing.get_context("spawn")
        parts = shard_site(site, shards)
        self.outs = [os.path.join(folder, f"shard{k}.prof") for k in range(len(parts))]
        self.ready = [ctx.Event() for _ in parts]
        options = {"delay_s": delay_s, "server": "light"}
        self.procs = [
            ctx.Process(target=_profiled_child, args=(part, options, ev, out))
            for part, ev, out in zip(parts, self.ready, self.outs, strict=True)
        ]

    def __enter__(self) -> ProfiledShards:
        for proc in self.procs:
            proc.start()
        for ev in self.ready:
            if not ev.wait(180):
                self.__exit__()
                raise RuntimeError("a simulator shard did not come up")
        return self

    def __exit__(self, *_: object) -> None:
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(10)

    @property
    def pids(self) -> list[int | None]:
        return [p.pid for p in self.procs]

    def signal(self, sig: int) -> None:
        for proc in self.procs:
            if proc.pid is not None:
                os.kill(proc.pid, sig)

    def stats(self, deadline_s: float = 30.0) -> pstats.Stats:
        """The merged stats, once every shard has written its file."""
        end = time.monotonic() + deadline_s
        while not all(os.path.exists(o) and os.path.getsize(o) > 0 for o in self.outs):
            if time.monotonic() > end:
                raise RuntimeError("a simulator shard wrote no profile")
            time.sleep(0.1)
        time.sleep(0.2)  # let the last dump finish
        return pstats.Stats(*self.outs, stream=io.StringIO())


def per_device(stats: pstats.Stats, n: int, sort: str, top: int) -> str:
    """Top ``top`` functions by ``sort`` ("tottime" or "cumulative"), in us per device."""
    rows = []
    for (file, line, name), (_cc, calls, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(file).name}:{line}({name})" if line else name
        rows.append((tt if sort == "tottime" else ct, tt, ct, calls, where))
    rows.sort(reverse=True)
    total = sum(r[1] for r in rows)
    out = [f"  total own time {total / n * 1e6:8.1f} us/dev   (sorted by {sort})",
           f"  {'own us/dev':>10} {'cum us/dev':>10} {'calls/dev':>9}  function"]  # fmt: skip
    for _key, tt, ct, calls, where in rows[:top]:
        out.append(f"  {tt / n * 1e6:10.1f} {ct / n * 1e6:10.1f} {calls / n:9.2f}  {where}")
    return "\n".join(out)


async def ready_to_dispatch(site: Site, bridge: ModbusBridge) -> Controller:
    """A controller that has polled twice and planned, a minute before its dispatch."""
    clock = ManualClock(START)
    ctl = bench_controller(site, bridge, clock)
    await ctl.run_job("poll")
    await ctl.run_job("poll")
    ctl.plan_lead_s = 60.0
    await ctl.run_job("plan")
    freeze_heap()  # as `vpp run` does after its start-up
    clock.advance(60)
    return ctl


async def run(site: Site, shards: ProfiledShards, top: int, dump: str | None) -> None:
    n = len(site.devices)
    async with ModbusBridge() as bridge:
        ctl = await ready_to_dispatch(site, bridge)
        shards.signal(signal.SIGUSR1)
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        sim, cpu, wall = cpu_s(shards.pids), time.process_time(), time.perf_counter()
        await ctl.run_job("dispatch")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        prof.disable()
        shards.signal(signal.SIGUSR2)
        sim = cpu_s(shards.pids) - sim
        written = [s for s in ctl.state.setpoints.values() if s.written_w is not None]
        print(f"profiled dispatch of {n:,} devices: {wall:.2f} s wall, controller "
              f"{cpu / n * 1e6:.0f} us/dev, simulators {sim / n * 1e6:.0f} us/dev, "
              f"{len(written):,} written, {sum(s.ok for s in written):,} confirmed, "
              f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    if dump is not None:
        prof.dump_stats(dump)
    mine = pstats.Stats(prof, stream=io.StringIO())
    theirs = shards.stats()
    for side, stats in (("controller", mine), ("simulators", theirs)):
        for sort in ("tottime", "cumulative"):
            print(f"\n{side}, dispatch of {n:,} devices (profiled):")
            print(per_device(stats, n, sort, top))


#: py-spy samples per second (of each process's CPU: idle threads are not sampled).
SPY_RATE = 250


class Spies:
    """``py-spy record`` attached to ``pids`` (raw stacks, one file each) until :meth:`stop`."""

    def __init__(self, pids: list[int], folder: str) -> None:
        exe = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
        if exe is None:
            raise RuntimeError("py-spy is not installed (pip install py-spy)")
        self.outs = [os.path.join(folder, f"spy{pid}.txt") for pid in pids]
        options = ["--rate", str(SPY_RATE), "--format", "raw", "--function", "--nonblocking"]
        self.procs = [
            subprocess.Popen(
                [exe, "record", "--pid", str(pid), *options, "--output", out],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for pid, out in zip(pids, self.outs, strict=True)
        ]

    def stop(self, timeout_s: float = 30.0) -> list[Counter[tuple[str, ...]]]:
        """Stop sampling (SIGINT: py-spy writes its file) and return each process's stacks
        (root first) with their sample counts."""
        for proc in self.procs:
            proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout_s)
        return [_read_stacks(out) for out in self.outs]


def _read_stacks(path: str) -> Counter[tuple[str, ...]]:
    stacks: Counter[tuple[str, ...]] = Counter()
    if not os.path.exists(path):
        return stacks
    with open(path) as raw:
        for line in raw:
            frames, _, count = line.rstrip("\n").rpartition(" ")
            if frames and count.isdigit():
                stacks[tuple(_short(f) for f in frames.split(";"))] += int(count)
    return stacks


def _short(frame: str) -> str:
    """``name (path/file.py:12)`` -> ``file.py:12(name)``, as the cProfile tables name it."""
    name, _, where = frame.partition(" (")
    return f"{Path(where.rstrip(')')).name}({name})" if where else name


def spy_table(stacks: Counter[tuple[str, ...]], cpu_us: float, sort: str, top: int) -> str:
    """Top ``top`` functions by own ("tottime") or inclusive ("cumulative") samples, as
    shares of ``cpu_us`` [us of CPU per device, measured]."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    for stack, count in stacks.items():
        own[stack[-1]] += count
        for frame in set(stack):
            incl[frame] += count
    total = sum(stacks.values())
    us = cpu_us / max(total, 1)
    key = own if sort == "tottime" else incl
    out = [f"  {cpu_us:8.1f} us/dev of CPU measured, {total:,} samples   (sorted by {sort})",
           f"  {'own us/dev':>10} {'incl us/dev':>11}  function"]  # fmt: skip
    for where, _ in key.most_common(top):
        out.append(f"  {own[where] * us:10.1f} {incl[where] * us:11.1f}  {where}")
    return "\n".join(out)


async def run_sampled(site: Site, fleet: ShardedFleet, top: int, folder: str) -> None:
    """The dispatch of :func:`run` sampled with py-spy on both sides."""
    n = len(site.devices)
    async with ModbusBridge() as bridge:
        ctl = await ready_to_dispatch(site, bridge)
        pids = [p for p in fleet.pids if p is not None]
        spies = Spies([os.getpid(), *pids], folder)
        await asyncio.sleep(1.0)  # py-spy attaches (nothing else runs meanwhile)
        sim, cpu, wall = cpu_s(fleet.pids), time.process_time(), time.perf_counter()
        await ctl.run_job("dispatch")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        sim = cpu_s(fleet.pids) - sim
        stacks = spies.stop()
        written = [s for s in ctl.state.setpoints.values() if s.written_w is not None]
        print(f"sampled dispatch of {n:,} devices: {wall:.2f} s wall, controller "
              f"{cpu / n * 1e6:.0f} us/dev, simulators {sim / n * 1e6:.0f} us/dev, "
              f"{len(written):,} written, {sum(s.ok for s in written):,} confirmed, "
              f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    theirs: Counter[tuple[str, ...]] = Counter()
    for part in stacks[1:]:
        theirs.update(part)
    sides = (("controller", stacks[0], cpu), ("simulators", theirs, sim))
    for side, found, used in sides:
        for sort in ("tottime", "cumulative"):
            print(f"\n{side}, dispatch of {n:,} devices (py-spy):")
            print(spy_table(found, used / n * 1e6, sort, top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=3_000)
    parser.add_argument("--delay-ms", type=int, default=20)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--dump", help="also write the controller's stats to this file")
    parser.add_argument("--sampler", choices=("cprofile", "py-spy"), default="cprofile")
    args = parser.parse_args()
    site = bench_site(args.devices)
    n_shards = max(1, round(args.devices / DEVICES_PER_SHARD))
    delay_s = args.delay_ms / 1000 if args.delay_ms else None
    if args.sampler == "py-spy":
        with (
            tempfile.TemporaryDirectory() as folder,
            ShardedFleet(site, n_shards, delay_s=delay_s, server="light") as fleet,
        ):
            asyncio.run(run_sampled(site, fleet, args.top, folder))
        return
    with (
        tempfile.TemporaryDirectory() as folder,
        ProfiledShards(site, n_shards, delay_s, folder) as shards,
    ):
        asyncio.run(run(site, shards, args.top, args.dump))


if __name__ == "__main__":
    main()
