"""Benchmark: a city of district agents and one coordinator over Mosquitto, a simulated day
at speed.

Each agent is the district controller on the replay plant (through the ``Plant`` protocol,
so that one machine can hold a city), with its MQTT link and SQLite outbox; the coordinator
stores everything in a throwaway PostgreSQL and plans the city under a substation limit.
They run quarter hour by quarter hour in lockstep: every agent runs to 20 s before the
quarter hour (it plans 30 s ahead and reports its flexibility), the coordinator plans once
all have reported and sends the targets, and the agents go on once every one acknowledged
holding its targets. Measured per quarter hour: from the coordinator's plan start to every
agent's acknowledgement (p50, p99), the coordinator's plan time, messages and bytes through
the broker. The broker is killed (SIGKILL) in the middle and started again; then the
history is compared with what the agents did: targets lost or applied twice, telemetry rows
lost. A second table plans a city of ``--big-agents`` districts of ``--big-devices`` devices
each (the coordinator sees one battery and one PV unit per district, so its plan time does
not grow with the devices behind them).

``--processes``: every agent in a process of its own (started through a forkserver that
has the modules loaded), driven over a pipe by the main process, which holds the
coordinator; RSS is then reported per process. Without it the agents and the coordinator
share one process and one event loop.

Baseline in the same run: the districts' own plans (median seconds per plan).

Targets (issue 15): every agent holds its targets within 5 s of the plan start at 20 x 5,000
devices; the coordinator plans 100,000 devices in under 10 s.

Usage: ``python bench/city.py [--agents 4] [--devices 200] [--quarters 8] [--processes]``
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optimizer.aggregate import battery_fleet, pv_fleet
from optimizer.inputs import State
from optimizer.synthetic import synthetic_forecast, synthetic_site
from tests.conftest import free_port
from vpp.city import schema as s
from vpp.city.broker import COORDINATOR_USER, Broker, BrokerConfig, rss_bytes
from vpp.city.cityplan import plan_city
from vpp.city.coordinator import Coordinator, CoordinatorConfig
from vpp.city.flex import battery_unit, pv_unit
from vpp.city.history import History
from vpp.city.link import LinkConfig
from vpp.city.pgcluster import PgCluster
from vpp.city.sim import ReplayAgent, replay_agent
from vpp.core.clock import floor_quarter
from vpp.core.memory import return_large_frees
from vpp.core.site import Site
from vpp.replay.data import read_replay_inputs

DAY = date(2018, 5, 16)
START_HOUR = 9.75


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def wait_for(what, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not what():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def _site(n_devices: int) -> Site:
    return synthetic_site(n_devices // 2, n_devices - n_devices // 2, heat=False)


class InProcess:
    """An agent on this process's event loop."""

    def __init__(self, site: Site, raw: object, name: str, folder: Path, link: LinkConfig,
                 stop: asyncio.Event) -> None:  # fmt: skip
        self.ra = replay_agent(site, raw, DAY, name, folder / f"{name}.db", link, START_HOUR)  # type: ignore[arg-type]
        assert self.ra.agent.link is not None
        self.task = asyncio.create_task(self.ra.agent.link.run(stop))

    async def start(self) -> None:
        await self.ra.start()

    async def run_until(self, t: datetime) -> None:
        await self.ra.run_until(t)

    async def pending(self) -> int:
        return self.ra.agent.outbox.pending()

    async def now(self) -> datetime:
        return self.ra.clock.now()

    async def stats(self) -> dict:  # type: ignore[type-arg]
        return _stats(self.ra)

    async def close(self) -> None:
        await self.task
        self.ra.agent.outbox.close()


def _stats(ra: ReplayAgent) -> dict:  # type: ignore[type-arg]
    a = ra.agent
    links = a.link.stats if a.link is not None else None
    return {
        "telemetry_total": a.stats.telemetry_total,
        "applied": a.stats.targets.get("applied", 0),
        "held_seqs": sorted(a.stats.held_at),
        "last_target_seq": a.last_target_seq,
        "local_plan_s": ra.ctl.state.planner_seconds_total / max(1, ra.ctl.state.plans_total),
        "published": (links.published_total, links.published_bytes_total) if links else (0, 0),
        "rss": rss_bytes(os.getpid()),
        **shared_bytes(os.getpid()),
    }


def shared_bytes(pid: int) -> dict[str, int]:
    """PSS (shared pages split among the processes that map them) and USS (pages of this
    process alone) from /proc/<pid>/smaps_rollup: RSS counts the modules an agent shares
    with its forkserver siblings in full in every agent."""
    got = {"pss": 0, "uss": 0}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key == "Pss":
                got["pss"] = int(rest.split()[0]) * 1024
            elif key in ("Private_Clean", "Private_Dirty"):
                got["uss"] += int(rest.split()[0]) * 1024
    return got


def _agent_process(conn: Connection, n_devices: int, raw: pd.DataFrame, name: str,
                   folder: Path, link: LinkConfig) -> None:  # fmt: skip
    """One agent in a process of its own, driven over ``conn`` by the benchmark. ``raw``:
    the day's inputs, read once by the main process (reading the year file in every agent
    left about 50 MB of Parquet reader and Arrow pool in each)."""
    asyncio.run(_agent_main(conn, n_devices, raw, name, folder, link))


async def _agent_main(conn: Connection, n_devices: int, raw: pd.DataFrame, name: str,
                      folder: Path, link: LinkConfig) -> None:  # fmt: skip
    return_large_frees()  # as `vpp agent` does
    site = _site(n_devices)
    stop = asyncio.Event()
    agent = InProcess(site, raw, name, folder, link, stop)
    try:
        while True:
            cmd, arg = await asyncio.to_thread(conn.recv)
            if cmd == "stop":
                break
            method = getattr(agent, cmd)
            conn.send(await (method(arg) if arg is not None else method()))
    finally:
        stop.set()
        await agent.close()
        conn.send("stopped")
        conn.close()


class InOwnProcess:
    """An agent in a process of its own; the same calls as :class:`InProcess`."""

    def __init__(self, ctx: BaseContext, n_devices: int, raw: pd.DataFrame, name: str,
                 folder: Path, link: LinkConfig) -> None:  # fmt: skip
        self.conn, child = ctx.Pipe()  # type: ignore[attr-defined]
        self.proc = ctx.Process(  # type: ignore[attr-defined]
            target=_agent_process, args=(child, n_devices, raw, name, folder, link), name=name
        )
        self.proc.start()
        child.close()

    async def _call(self, cmd: str, arg: object = None) -> object:
        self.conn.send((cmd, arg))
        return await asyncio.to_thread(self._recv)

    def _recv(self) -> object:
        if not self.conn.poll(600):
            raise TimeoutError(f"agent {self.proc.name} did not answer in 600 s")
        return self.conn.recv()

    async def start(self) -> None:
        await self._call("start")

    async def run_until(self, t: datetime) -> None:
        await self._call("run_until", t)

    async def pending(self) -> int:
        return int(await self._call("pending"))  # type: ignore[call-overload]

    async def now(self) -> datetime:
        return await self._call("now")  # type: ignore[return-value]

    async def stats(self) -> dict:  # type: ignore[type-arg]
        return await self._call("stats")  # type: ignore[return-value]

    async def close(self) -> None:
        try:
            if self.proc.is_alive():
                await self._call("stop")
        finally:
            self.proc.join(30)
            if self.proc.is_alive():
                self.proc.kill()
                self.proc.join(10)
            self.conn.close()


async def _all(calls: list) -> list:  # type: ignore[type-arg]
    """In parallel (processes) or one after the other (one event loop: the same)."""
    return list(await asyncio.gather(*calls))


async def city_run(n_agents: int, n_devices: int, quarters: int, folder: Path,
                   processes: bool = False) -> dict:  # type: ignore[type-arg]  # fmt: skip
    names = [f"d{i:02d}" for i in range(n_agents)]
    site = _site(n_devices)
    broker = Broker(BrokerConfig(folder / "broker", free_port(), names))
    broker.start()
    pw = broker.config.passwords

    def link(user: str) -> LinkConfig:
        return LinkConfig("127.0.0.1", broker.config.port, user, pw[user], user)

    stop = asyncio.Event()
    agents: list[InProcess | InOwnProcess] = []
    raw = read_replay_inputs(site, DAY, DAY)
    if processes:
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(["vpp.city.sim", "vpp.city.agent", "optimizer.planner"])
        agents = [InOwnProcess(ctx, n_devices, raw, a, folder, link(a)) for a in names]
    else:
        agents = [InProcess(site, raw, a, folder, link(a), stop) for a in names]
    export_limit = 0.5 * n_agents * site.grid.export_limit_w
    out: dict = {"processes": processes}  # type: ignore[type-arg]
    with PgCluster(free_port()) as pg:
        history = await History.open(pg.dsn)
        coord = Coordinator(
            CoordinatorConfig(names, n_agents * site.grid.import_limit_w, export_limit, 600.0,
                              clock="agents"),
            link(COORDINATOR_USER), history,
        )  # fmt: skip
        tasks = [asyncio.create_task(coord.run(stop))]
        per_quarter: list[dict] = []  # type: ignore[type-arg]
        try:
            if not await wait_for(lambda: coord.link.stats.connected, 20):
                raise RuntimeError("the coordinator did not connect to the broker")
            t0 = time.monotonic()
            await _all([a.start() for a in agents])
            out["start_s"] = time.monotonic() - t0
            q0 = floor_quarter(await agents[0].now()) + timedelta(minutes=15)
            kill_at = quarters // 2
            for k in range(quarters):
                q = q0 + timedelta(minutes=15 * k)
                before = await _traffic(coord, agents)
                if k == kill_at:
                    broker.kill()
                await _all([a.run_until(q - timedelta(seconds=20)) for a in agents])
                if k == kill_at:
                    broker.start()
                held = await wait_for(
                    lambda q=q: any(p.start == q and len(p.acked) == n_agents for p in coord.plans),
                    120,
                )
                rec = next((p for p in coord.plans if p.start == q), None)
                await _all([a.run_until(q + timedelta(minutes=1)) for a in agents])
                after = await _traffic(coord, agents)
                per_quarter.append({
                    "quarter": q, "held": held, "broker_killed": k == kill_at,
                    "latency_s": [t - rec.began for t in rec.acked.values()] if rec else [],
                    "solve_s": rec.solve_s if rec else float("nan"),
                    "messages": after[0] - before[0], "bytes": after[1] - before[1],
                })  # fmt: skip
            await coord.flush()
            deadline = time.monotonic() + 120
            while sum(await _all([a.pending() for a in agents])):
                if time.monotonic() > deadline:
                    raise RuntimeError("outboxes not confirmed within 120 s")
                await asyncio.sleep(0.1)
            stats = await _all([a.stats() for a in agents])
            if processes:
                out["rss"] = {"coordinator (main process)": rss_bytes(os.getpid()),
                              "agent processes, max": max(st["rss"] for st in stats),
                              "agent processes, sum": sum(st["rss"] for st in stats),
                              "PSS agent processes, max": max(st["pss"] for st in stats),
                              "USS (private) agent processes, max":
                                  max(st["uss"] for st in stats)}  # fmt: skip
            else:
                out["rss"] = {"agents + coordinator (one process)": rss_bytes(os.getpid())}
            out["rss"]["mosquitto"] = rss_bytes(broker.pid or 0)
            out["per_quarter"] = per_quarter
            out["telemetry_sent"] = sum(st["telemetry_total"] for st in stats)
            out["telemetry_rows"] = await history.count("telemetry")
            sent = sum(coord.target_seq.values())
            applied = sum(st["applied"] for st in stats)
            acked = await history.pool.fetchval(
                "SELECT count(*) FROM targets WHERE ack_status = 'applied'"
            )
            out["targets_sent"], out["targets_applied"], out["targets_acked"] = sent, applied, acked
            out["not_acked"] = [
                (r["agent"], r["seq"], r["ack_status"], r["ack_reason"])
                for r in await history.pool.fetch(
                    "SELECT agent, seq, ack_status, ack_reason FROM targets "
                    "WHERE ack_status IS DISTINCT FROM 'applied' ORDER BY agent, seq"
                )
            ]
            # Lost: sent, but the agent never applied it.
            out["never_applied"] = sum(
                len(set(range(1, coord.target_seq.get(name, 0) + 1)) - set(st["held_seqs"]))
                for name, st in zip(names, stats, strict=True)
            )  # fmt: skip
            out["applied_twice"] = sum(
                max(0, st["applied"] - coord.target_seq[name])
                for name, st in zip(names, stats, strict=True)
            )  # fmt: skip
            out["local_plan_s"] = statistics.median(st["local_plan_s"] for st in stats)
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await history.close()
            await asyncio.gather(*(a.close() for a in agents), return_exceptions=True)
            broker.stop()
    return out


async def _traffic(coord: Coordinator, agents: list[InProcess | InOwnProcess]) -> tuple[int, int]:
    """Messages and payload bytes published so far by the coordinator and every agent."""
    pub = [st["published"] for st in await _all([a.stats() for a in agents])]
    return (coord.link.stats.published_total + sum(p[0] for p in pub),
            coord.link.stats.published_bytes_total + sum(p[1] for p in pub))  # fmt: skip


def big_city(n_agents: int, n_devices: int) -> tuple[float, str]:
    """Plan ``n_agents`` districts of ``n_devices`` each, as the coordinator sees them."""
    start = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    flex = {}
    for i in range(n_agents):
        site = synthetic_site(n_devices // 2, n_devices - n_devices // 2, heat=False, seed=i)
        fc = synthetic_forecast(site, start, 144, seed=i)
        state = State.from_site(site)
        bats, _ = battery_fleet(site, state)
        pvs = pv_fleet(site, state)
        avail = np.minimum(fc["pv_w_per_kwp"].to_numpy() * pvs.peak_wp.sum() / 1000,
                           pvs.rated_w.sum())  # fmt: skip
        flex[f"d{i:02d}"] = s.Flexibility(
            agent=f"d{i:02d}", seq=1, sent_at=start, start=start,
            pv_available_w=[float(v) for v in avail], load_w=[float(v) for v in fc["load_w"]],
            price_import_eur_per_mwh=[float(v) for v in fc["price_import_eur_per_mwh"]],
            price_export_eur_per_mwh=[float(v) for v in fc["price_export_eur_per_mwh"]],
            battery=battery_unit(bats), pv=pv_unit(pvs),
            import_limit_w=site.grid.import_limit_w, export_limit_w=site.grid.export_limit_w,
        )  # fmt: skip
    imp = sum(f.import_limit_w for f in flex.values()) * 0.6
    exp = sum(f.export_limit_w for f in flex.values()) * 0.6
    plan = plan_city(flex, imp, exp, start)
    return plan.solve_s, plan.status


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=4)
    ap.add_argument("--devices", type=int, default=200, help="per agent")
    ap.add_argument("--quarters", type=int, default=8)
    ap.add_argument("--big-agents", type=int, default=20)
    ap.add_argument("--big-devices", type=int, default=5000)
    ap.add_argument("--processes", action="store_true", help="each agent in its own process")
    args = ap.parse_args()
    con = Console()
    with tempfile.TemporaryDirectory(prefix="vpp-city-bench-") as tmp:
        r = asyncio.run(
            city_run(args.agents, args.devices, args.quarters, Path(tmp), args.processes)
        )
    t = Table(title=f"city: {args.agents} agents x {args.devices} devices, "
                    f"{args.quarters} quarter hours, broker killed once, "
                    f"{'one process per agent' if r['processes'] else 'one process'} "
                    f"(load {os.getloadavg()[0]:.1f})")  # fmt: skip
    for c in ("quarter", "all held", "held p50 s", "held p99 s", "city plan s", "messages",
              "kB", "note"):  # fmt: skip
        t.add_column(c)
    lat_all: list[float] = []
    for q in r["per_quarter"]:
        lat_all += q["latency_s"]
        t.add_row(q["quarter"].strftime("%H:%M"), str(q["held"]),
                  f"{pct(q['latency_s'], 50):.2f}", f"{pct(q['latency_s'], 99):.2f}",
                  f"{q['solve_s']:.2f}", str(q["messages"]), f"{q['bytes'] / 1000:.0f}",
                  "broker killed and restarted" if q["broker_killed"] else "")  # fmt: skip
    con.print(t)
    solves = [q["solve_s"] for q in r["per_quarter"] if q["solve_s"] == q["solve_s"]]
    s2 = Table(title="summary")
    s2.add_column("what")
    s2.add_column("value")
    s2.add_row("held after plan start p50 / p99 (all quarters)",
               f"{pct(lat_all, 50):.2f} s / {pct(lat_all, 99):.2f} s")  # fmt: skip
    s2.add_row("city plan median", f"{statistics.median(solves):.2f} s")
    s2.add_row("baseline: a district's own plan, median", f"{r['local_plan_s']:.2f} s")
    s2.add_row("ratio city plan / district plan",
               f"{statistics.median(solves) / r['local_plan_s']:.2f}")  # fmt: skip
    s2.add_row("targets sent / applied / acknowledged in history",
               f"{r['targets_sent']} / {r['targets_applied']} / {r['targets_acked']}")  # fmt: skip
    s2.add_row("targets lost (sent, never applied)", str(r["never_applied"]))
    if r["not_acked"]:
        s2.add_row("history rows without 'applied'", str(r["not_acked"]))
    s2.add_row("targets applied twice", str(r["applied_twice"]))
    s2.add_row("telemetry sent / rows in history / lost",
               f"{r['telemetry_sent']} / {r['telemetry_rows']} / "
               f"{r['telemetry_sent'] - r['telemetry_rows']}")  # fmt: skip
    s2.add_row("agents' start (first poll, own plan, dispatch), wall",
               f"{r['start_s']:.1f} s")  # fmt: skip
    for name, rss in r["rss"].items():
        s2.add_row(
            name if name.startswith(("PSS", "USS")) else f"RSS {name}", f"{rss / 1e6:.0f} MB"
        )
    solve, status = big_city(args.big_agents, args.big_devices)
    s2.add_row(f"city plan, {args.big_agents} x {args.big_devices:,} devices (units only)",
               f"{solve:.2f} s ({status})")  # fmt: skip
    con.print(s2)


if __name__ == "__main__":
    main()
