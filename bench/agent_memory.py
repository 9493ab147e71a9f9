"""Benchmark: where one district agent's memory goes (the agent of ``bench/city.py``, on the
replay plant, without a broker).

Stages, each with the process's RSS and what tracemalloc holds (Python allocations only;
numba's compiled code, HiGHS and SQLite allocate outside it):

1. the interpreter alone; 2. the agent's modules imported (which of pandas, pyomo, highspy,
numba, lightgbm, sklearn are loaded then); 3. the site, the replay inputs and the agent built;
4. start-up (poll, plan, dispatch); 5. ``--minutes`` more of control (polls, corrections,
re-plans).

Then the biggest Python allocations alive at the end, grouped by file and line (tracemalloc
is started after the imports, so the imports' own allocations are not in it), and the
biggest objects the agent holds (plant arrays, plans, snapshots). The baseline in the same
run is stage 2: the memory every agent pays before it holds one device.

The agent gives large frees back as ``vpp agent`` does (:mod:`vpp.core.memory`); ``--sliding``
leaves glibc's default, to see what that saves.

Usage: ``python bench/agent_memory.py [--devices 5000] [--minutes 20] [--top 25] [--sliding]``
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: Libraries whose import alone costs tens of MB; the table says which were loaded.
HEAVY = (
    "pandas", "numba", "pyomo", "highspy", "lightgbm", "sklearn", "scipy", "aiomqtt",
    "pydantic", "matplotlib", "pyarrow", "apscheduler", "prometheus_client", "aiohttp",
)  # fmt: skip

DAY = date(2018, 5, 16)
START_HOUR = 9.75


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def traced_mb() -> float:
    return tracemalloc.get_traced_memory()[0] / 1e6 if tracemalloc.is_tracing() else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=5000)
    ap.add_argument("--minutes", type=int, default=20, help="control after start-up")
    ap.add_argument("--top", type=int, default=25, help="lines of the allocation table")
    ap.add_argument("--sliding", action="store_true", help="leave glibc's mmap threshold sliding")
    args = ap.parse_args()
    stages: list[tuple[str, float, float, float]] = []

    def stage(name: str, tic: float) -> None:
        gc.collect()
        stages.append((name, rss_mb(), traced_mb(), time.perf_counter() - tic))

    tic = time.perf_counter()
    stage("interpreter", tic)
    tic = time.perf_counter()
    from optimizer.planner import Planner  # noqa: F401
    from vpp.city.agent import CityAgent  # noqa: F401
    from vpp.city.sim import replay_agent  # the forkserver of bench/city.py preloads these

    stage("modules of the agent imported", tic)
    loaded = [m for m in HEAVY if m in sys.modules]
    if not args.sliding:
        from vpp.core.memory import return_large_frees

        return_large_frees()  # as `vpp agent` and the agents of bench/city.py do

    from optimizer.synthetic import synthetic_site
    from vpp.replay.data import read_replay_inputs

    tracemalloc.start(1)
    tic = time.perf_counter()
    site = synthetic_site(args.devices // 2, args.devices - args.devices // 2, heat=False)
    raw = read_replay_inputs(site, DAY, DAY)
    with tempfile.TemporaryDirectory(prefix="vpp-agent-mem-") as tmp:
        ra = replay_agent(site, raw, DAY, "d00", Path(tmp) / "d00.db", None, START_HOUR)
        del raw
        stage(f"site ({args.devices:,} devices), inputs, agent built", tic)
        tic = time.perf_counter()
        asyncio.run(ra.start())
        stage("start-up: poll, plan, dispatch", tic)
        tic = time.perf_counter()
        until = ra.clock.now() + timedelta(minutes=args.minutes)
        asyncio.run(ra.run_until(until))
        stage(f"{args.minutes} min of control (polls, re-plans)", tic)
        snap = tracemalloc.take_snapshot()
        held = _held(ra)
        ra.agent.outbox.close()
    _print(args, stages, loaded, snap, held)


def _held(ra: object) -> list[tuple[str, float]]:
    """Sizes of the big things the agent holds [MB] (numpy arrays and pandas frames only)."""
    import numpy as np
    import pandas as pd

    def size(x: object) -> float:
        if isinstance(x, np.ndarray):
            return x.nbytes / 1e6
        if isinstance(x, pd.DataFrame | pd.Series):
            return float(x.memory_usage(deep=True).sum() if isinstance(x, pd.DataFrame)
                         else x.memory_usage(deep=True)) / 1e6  # fmt: skip
        return 0.0

    out: list[tuple[str, float]] = []
    plant = ra.plant  # type: ignore[attr-defined]
    for name, value in vars(plant).items():
        if size(value) > 0.5:
            out.append((f"replay plant .{name}", size(value)))
    for name, value in vars(plant.inputs).items():
        if size(value) > 0.5:
            out.append((f"replay plant .inputs.{name}", size(value)))
    trace = plant.trace
    out.append(("replay plant .trace (all arrays)",
                sum(size(v) for v in vars(trace).values())))  # fmt: skip
    st = ra.ctl.state  # type: ignore[attr-defined]
    if st.plan is not None:
        out.append(("controller plan .frame", size(st.plan.frame)))
    local = ra.agent.local_plan  # type: ignore[attr-defined]
    if local is not None and (st.plan is None or local.frame is not st.plan.frame):
        out.append(("agent's local plan .frame (a second frame)", size(local.frame)))
    if st.forecast is not None:
        out.append(("controller forecast", size(st.forecast)))
    return sorted(out, key=lambda x: -x[1])


def _print(args, stages, loaded, snap, held) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    con = Console(width=140)
    load = os.getloadavg()[0]
    t = Table(title=f"one agent, {args.devices:,} devices: memory by stage (load {load:.1f})")
    for c in ("stage", "RSS MB", "RSS added MB", "traced Python MB", "wall s"):
        t.add_column(c)
    before = 0.0
    for name, rss, traced, wall in stages:
        t.add_row(name, f"{rss:.0f}", f"{rss - before:+.0f}", f"{traced:.0f}", f"{wall:.1f}")
        before = rss
    con.print(t)
    con.print(f"heavy libraries loaded by the imports: {', '.join(loaded) or 'none'}")
    base = stages[1][1]
    con.print(f"baseline (modules imported): {base:.0f} MB; "
              f"ratio RSS at the end / baseline: {stages[-1][1] / base:.2f}")  # fmt: skip
    t2 = Table(title=f"Python allocations alive at the end, by line (top {args.top})")
    for c in ("MB", "blocks", "where"):
        t2.add_column(c)
    root = str(Path(__file__).resolve().parents[1]) + os.sep
    for stat in snap.statistics("lineno")[: args.top]:
        frame = stat.traceback[0]
        where = f"{frame.filename.replace(root, '')}:{frame.lineno}"
        t2.add_row(f"{stat.size / 1e6:.1f}", str(stat.count), where)
    con.print(t2)
    t3 = Table(title="arrays and frames the agent holds")
    t3.add_column("what")
    t3.add_column("MB")
    for name, mb in held:
        t3.add_row(name, f"{mb:.1f}")
    con.print(t3)


if __name__ == "__main__":
    main()
