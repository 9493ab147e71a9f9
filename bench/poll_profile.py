"""Where the poll job's CPU goes, per device, split by layer (sampled with py-spy).

The fleet is set up as ``bench/process_limit.py`` does it (synthetic PV inverters and
batteries, 100 units per gateway port, served from child processes, ``vpp run`` defaults, a
manual clock). After the first poll (discovery) the heap is frozen out of the garbage
collector's reach, as ``vpp run`` does after start-up; then py-spy attaches and samples
``--polls`` further poll jobs; each sample is charged to the innermost frame that belongs to
one of the layers below (so a ``struct`` or ``asyncio`` call is charged to the layer that
made it):

- pymodbus: client, framer, transaction manager, its protocol callbacks;
- bridge: ``adapters/bridge`` and the circuit breaker (pool, timers, retries);
- decode: ``adapters/sunspec`` (read plan, register decode);
- driver: ``adapters/devices`` (normalise to a reading, range checks);
- poller: ``adapters/poll.py`` and ``adapters/snapshot.py`` (per-device state, snapshot);
- controller: ``vpp/`` (the poll job after the read: plausibility, quarantine, online
  tracking, accounting, events, recorder, metrics);
- event loop: samples with none of the above on the stack (selector, task stepping).

The CPU per device is measured without the sampler first (``time.process_time`` over the
same number of polls), then shared out in the proportions of the samples.

Run: ``.venv/bin/python bench/poll_profile.py [--sizes 3000 10000] [--delay-ms 20]``
(needs ``py-spy``, a dev dependency, and the right to trace this process).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from process_limit import DEVICES_PER_SHARD, START, UNITS_PER_PORT, bench_controller
from rich.console import Console
from rich.table import Table

from adapters.bridge import ModbusBridge
from adapters.sim.sharded import ShardedFleet
from adapters.sim.synthetic import synthetic_site
from vpp.control.controller import Controller
from vpp.control.runner import freeze_heap
from vpp.core.clock import ManualClock
from vpp.core.site import Site, parse_site

#: (layer, path fragment); the first fragment found in a frame's file names its layer.
LAYERS = (
    ("pymodbus", "/pymodbus/"),
    ("bridge", "/adapters/bridge/"),
    ("bridge", "/adapters/breaker.py"),
    ("decode", "/adapters/sunspec/"),
    ("driver", "/adapters/devices/"),
    ("poller", "/adapters/poll.py"),
    ("poller", "/adapters/snapshot.py"),
    ("controller", "/vpp/"),
)
ORDER = ("pymodbus", "bridge", "decode", "driver", "poller", "controller", "event loop")
#: Seconds py-spy may take to attach and report that it samples.
ATTACH_S = 30.0


def free_base_port(span: int) -> int:
    """A base port with ``span`` free ports above it (checked by binding), from a random
    start: other benchmarks on the machine start their search at the same place."""
    start = random.randrange(21_000, 50_000, 50)
    bases: list[int] = [*range(start, 60_000, 50), *range(21_000, start, 50)]
    for base in bases:
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
    """``bench/process_limit.py``'s fleet of ``n`` devices, on free ports."""
    ports = (n + UNITS_PER_PORT - 1) // UNITS_PER_PORT
    site = synthetic_site(n // 2, n - n // 2, free_base_port(ports), UNITS_PER_PORT)
    data = site.model_dump(mode="json")
    data["optimizer"]["horizon_h"] = 24
    return parse_site(data, "<poll profile>")


def layer_of(frame: str) -> str | None:
    """The layer of a py-spy frame ``function (path:line)``; paths may be relative."""
    path = "/" + frame.rpartition(" (")[2]
    for name, fragment in LAYERS:
        if fragment in path:
            return name
    return None


def charge(raw: str) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """Samples per layer and, per layer, per innermost frame of that layer, from py-spy's
    ``raw`` output (one ``frame;frame;...;leaf count`` line per stack)."""
    per_layer: Counter[str] = Counter()
    per_frame: dict[str, Counter[str]] = defaultdict(Counter)
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        found, where = "event loop", frames[-1]
        for frame in reversed(frames):
            name = layer_of(frame)
            if name is not None:
                found, where = name, frame
                break
        per_layer[found] += int(count)
        per_frame[found][where] += int(count)
    return per_layer, per_frame


def controller_for(site: Site, bridge: ModbusBridge) -> Controller:
    return bench_controller(site, bridge, ManualClock(START))


def start_sampler(out: Path, rate: int) -> subprocess.Popen[str]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    cmd = [spy, "record", "--pid", str(os.getpid()), "--format", "raw", "--nonblocking"]
    cmd += ["--rate", str(rate), "--output", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + ATTACH_S
    assert proc.stdout is not None
    while time.monotonic() < deadline:  # the line is printed once sampling has begun
        line = proc.stdout.readline()
        if "Sampling process" in line:
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    proc.wait(5)
    raise RuntimeError(f"py-spy did not start sampling within {ATTACH_S:g} s: {cmd}")


def stop_sampler(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def profile(site: Site, polls: int, rate: int, out: Path) -> tuple[float, float]:
    """(CPU s per poll without the sampler, wall s per poll); py-spy's samples to ``out``."""
    async with ModbusBridge() as bridge:
        ctl = controller_for(site, bridge)
        await ctl.run_job("poll")  # discovery, as at start
        freeze_heap()  # as `vpp run` does after start-up
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(polls):
            await ctl.run_job("poll")
        cpu_s = (time.process_time() - cpu) / polls
        wall_s = (time.perf_counter() - wall) / polls
        sampler = start_sampler(out, rate)
        try:
            for _ in range(polls):
                await ctl.run_job("poll")
        finally:
            stop_sampler(sampler)
    return cpu_s, wall_s


def table(n: int, delay: int, cpu_s: float, wall_s: float, raw: str) -> tuple[Table, Table]:
    per_layer, per_frame = charge(raw)
    total = sum(per_layer.values()) or 1
    title = (
        f"{n:,} devices, {delay} ms delay: poll {wall_s:.2f} s, CPU {cpu_s / n * 1e6:.0f} us "
        f"per device (load {os.getloadavg()[0]:.1f}, {total:,} samples)"
    )
    layers = Table(title=title, title_justify="left")
    for name in ("layer", "share", "us/device"):
        layers.add_column(name, justify="right")
    for name in ORDER:
        share = per_layer[name] / total
        layers.add_row(name, f"{share:.1%}", f"{share * cpu_s / n * 1e6:.0f}")
    top = Table(title="innermost frames of each layer, most sampled first")
    for name in ("layer", "frame", "share"):
        top.add_column(name, justify="left" if name == "frame" else "right")
    for name in ORDER:
        for frame, count in per_frame[name].most_common(6):
            top.add_row(name, frame[:110], f"{count / total:.1%}")
    return layers, top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3_000, 10_000])
    parser.add_argument("--delay-ms", type=int, default=20)
    parser.add_argument("--polls", type=int, default=3)
    parser.add_argument("--rate", type=int, default=250, help="samples per second")
    parser.add_argument("--raw", type=Path, help="keep py-spy's samples in RAW-<size>.txt")
    args = parser.parse_args()
    console = Console(width=200)
    for n in args.sizes:
        site = bench_site(n)
        shards = max(1, round(n / DEVICES_PER_SHARD))
        delay_s = args.delay_ms / 1000 if args.delay_ms else None
        light = ShardedFleet(site, shards, delay_s=delay_s, server="light")
        with tempfile.TemporaryDirectory() as tmp, light:
            out = Path(tmp) / "samples.txt"
            cpu_s, wall_s = asyncio.run(profile(site, args.polls, args.rate, out))
            raw = out.read_text() if out.exists() else ""
        if args.raw is not None:
            Path(f"{args.raw}-{n}.txt").write_text(raw)
        for part in table(n, args.delay_ms, cpu_s, wall_s, raw):
            console.print(part)


if __name__ == "__main__":
    main()
