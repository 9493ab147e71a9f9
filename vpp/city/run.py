"""Composition of the city commands: ``vpp agent``, ``vpp coordinator`` and the loopback
demo behind ``make run-city`` (broker, database, coordinator and a few agents)."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AsyncExitStack, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from vpp.city.agent import CityAgent
from vpp.city.broker import COORDINATOR_USER, Broker, BrokerConfig
from vpp.city.coordinator import Coordinator, CoordinatorConfig
from vpp.city.history import History
from vpp.city.link import LinkConfig
from vpp.city.metrics import AgentCollector, CoordinatorCollector
from vpp.city.outbox import Outbox
from vpp.city.pgcluster import PgCluster
from vpp.control.controller import Controller
from vpp.control.runner import install_signal_handlers
from vpp.core.memory import return_large_frees
from vpp.core.site import Site

log = logging.getLogger("vpp.city")


def shift_ports(site: Site, offset: int) -> Site:
    """The same site with every Modbus port moved by ``offset`` (several simulated districts
    on one machine)."""
    if offset == 0:
        return site
    doc = site.model_dump(mode="json")
    for d in doc["devices"]:
        d["modbus"]["port"] += offset
    for src in doc.get("signals", {}).get("sources", []):
        if "modbus" in src:
            src["modbus"]["port"] += offset
    return Site.model_validate(doc)


async def run_agent(
    site: Site,
    opts: Any,
    agent_id: str,
    link: LinkConfig,
    outbox_path: Path,
    outbox_max_bytes: int | None = None,
) -> None:
    """``vpp run`` with the city link (see :mod:`vpp.city.agent`)."""
    from vpp.app import run

    return_large_frees()  # the planner's per-device temporaries go back after each plan
    stop = asyncio.Event()
    outbox = Outbox(outbox_path, outbox_max_bytes)
    tasks: list[asyncio.Task[None]] = []

    def ready(ctl: Controller) -> None:
        agent = CityAgent(ctl, agent_id, outbox, link)
        if ctl.metrics is not None:
            ctl.metrics.registry.register(AgentCollector(agent))
        assert agent.link is not None
        tasks.append(asyncio.get_running_loop().create_task(agent.link.run(stop)))

    try:
        await run(site, opts, stop, on_ready=ready)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        outbox.close()


def city_app(
    coord: Coordinator, registry: CollectorRegistry, token: str | None = None
) -> web.Application:
    """/metrics, /api/city (agents, health, targets against what they deliver), a page, and
    the operator's city signals and substation caps (:mod:`vpp.city.api`, writes need
    ``token``)."""
    from vpp.city.api import add_routes

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def city(_: web.Request) -> web.Response:
        return web.json_response(city_view(coord))

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.add_routes([web.get("/metrics", metrics), web.get("/api/city", city),
                    web.get("/", page)])  # fmt: skip
    add_routes(app, coord, token)
    return app


def city_view(coord: Coordinator) -> dict[str, Any]:
    now = coord.now()
    agents = []
    for agent in coord.config.agents:
        tele = coord.telemetry.get(agent)
        t = coord.latest.get(agent)
        target = None
        if t is not None and t.start <= now < t.expires_at:
            step = int((now - t.start).total_seconds() // t.step_s)
            target = t.battery_w[step] if step < len(t.battery_w) else None
        agents.append({
            "agent": agent, "status": coord.status.get(agent, "unknown"),
            "stored_seq": coord.stored.get(agent, 0),
            "last_telemetry": tele.time.isoformat() if tele else None,
            "battery_w": tele.battery_w if tele else None,
            "grid_w": tele.grid_w if tele else None,
            "plan_source": tele.plan_source if tele else None,
            "target_seq": t.seq if t else None, "target_battery_w": target,
            "acked_seq": coord.acked.get(agent),
        })  # fmt: skip
    last = coord.plans[-1] if coord.plans else None
    imp, exp = coord.limits_now()
    return {
        "now": now.isoformat(),
        "agents": agents,
        "substation": {"import_limit_w": imp, "export_limit_w": exp},
        "signals_active": len(coord.signals_now()),
        "caps_active": len(coord.caps_now()),
        "events": list(coord.events)[-20:],
        "last_plan": None if last is None else {
            "start": last.start.isoformat(), "status": last.status, "solve_s": last.solve_s,
            "agents": last.agents, "acked": len(last.acked),
        },
    }  # fmt: skip


PAGE = """<!doctype html><meta charset="utf-8"><title>vpp city</title>
<style>body{font:14px sans-serif;margin:2em}td,th{padding:2px 10px;text-align:right}</style>
<h1>City</h1><p id="plan"></p><p id="limits"></p><table id="t"></table>
<h2>Grid signals and substation caps</h2><table id="s"></table><h2>Events</h2><ul id="e"></ul>
<script>
async function tick(){const r=await fetch('api/city');const c=await r.json();
const p=c.last_plan;document.getElementById('plan').textContent=p?
`last plan from ${p.start}: ${p.status}, ${p.solve_s.toFixed(2)} s, `+
`${p.acked}/${p.agents} agents hold it`:'no plan yet';
const cols=['agent','status','plan_source','battery_w','target_battery_w','grid_w',
'target_seq','acked_seq'];
const f=v=>typeof v==='number'?Math.round(v).toLocaleString():(v??'-');
document.getElementById('t').innerHTML='<tr>'+cols.map(c=>`<th>${c}</th>`).join('')+'</tr>'+
c.agents.map(a=>'<tr>'+cols.map(k=>`<td>${f(a[k])}</td>`).join('')+'</tr>').join('');
const l=c.substation;document.getElementById('limits').textContent=
`substation now: import ${f(l.import_limit_w)} W, export ${f(l.export_limit_w)} W; `+
`${c.signals_active} signals and ${c.caps_active} caps in force`;
const g=await (await fetch('api/city/signals')).json();
const sc=['id','source','kind','direction','feed_in_pct','limit_w','agents','start','end',
'active','reason'];const esc=v=>String(v??'-').replace(/[&<>"]/g,x=>`&#${x.charCodeAt(0)};`);
document.getElementById('s').innerHTML='<tr>'+sc.map(k=>`<th>${k}</th>`).join('')+'</tr>'+
[...g.signals,...g.caps].map(x=>'<tr>'+sc.map(k=>`<td>${esc(x[k])}</td>`).join('')+
'</tr>').join('');
document.getElementById('e').innerHTML=c.events.slice().reverse().map(
x=>`<li>${esc(x.at)} ${esc(x.kind)}: ${esc(x.detail)}</li>`).join('');}
tick();setInterval(tick,5000);
</script>"""


async def run_coordinator(
    config: CoordinatorConfig,
    link: LinkConfig,
    dsn: str | None,
    host: str,
    port: int,
    api_token: str | None = None,
    now: Callable[[], datetime] | None = None,
) -> None:
    stop = asyncio.Event()
    remove = install_signal_handlers(stop)
    try:
        async with AsyncExitStack() as stack:
            history = await History.open(dsn) if dsn else None
            if history is not None:
                stack.push_async_callback(history.close)
            coord = Coordinator(config, link, history, now)
            await coord.restore()
            registry = CollectorRegistry()
            registry.register(CoordinatorCollector(coord))
            runner = web.AppRunner(city_app(coord, registry, api_token))
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            await web.TCPSite(runner, host, port).start()
            log.info("city page and metrics on http://%s:%d/", host, port)
            await coord.run(stop)
    finally:
        remove()


def shared_clock_args(speed: float, origin: float) -> list[str]:
    """Options that give every process one clock at ``speed``: it reads the wall time of
    ``origin`` (Unix s) at ``origin`` and runs ``speed`` times faster from there, whenever
    each process starts (none at speed 1: the wall clock is shared)."""
    if speed == 1.0:
        return []
    start = datetime.fromtimestamp(origin, UTC).isoformat()
    return ["--speed", repr(speed), "--start", start, "--clock-origin", repr(origin)]


def _password_file(folder: Path, user: str, password: str) -> Path:
    path = folder / f"{user}.password"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


def demo(agents: int, speed: float, mqtt_port: int, pg_port: int, http_port: int,
         config: Path) -> None:  # fmt: skip
    """``make run-city``: broker, database, coordinator and ``agents`` districts (the demo
    site, simulated) on loopback, until Ctrl-C; every process it starts is stopped."""
    names = [f"district-{i + 1}" for i in range(agents)]
    folder = Path(tempfile.mkdtemp(prefix="vpp-city-"))
    broker = Broker(BrokerConfig(folder / "broker", mqtt_port, names))
    procs: list[subprocess.Popen[bytes]] = []
    with PgCluster(pg_port) as pg:
        broker.start()
        try:
            pw = broker.config.passwords
            vpp = [sys.executable, "-m", "vpp"]
            clock = shared_clock_args(speed, time.time())
            procs.append(subprocess.Popen([
                *vpp, "coordinator", "--agents", ",".join(names),
                "--broker", f"127.0.0.1:{mqtt_port}",
                "--password-file", str(_password_file(folder, COORDINATOR_USER,
                                                      pw[COORDINATOR_USER])),
                "--db", pg.dsn, "--http-port", str(http_port),
                *clock,
            ]))  # fmt: skip
            for i, name in enumerate(names):
                procs.append(subprocess.Popen([
                    *vpp, "agent", "--config", str(config), "--id", name,
                    "--broker", f"127.0.0.1:{mqtt_port}",
                    "--password-file", str(_password_file(folder, name, pw[name])),
                    "--port-offset", str(100 * (i + 1)), *clock,
                    "--db", str(folder / f"{name}.db"), "--outbox", str(folder / f"{name}.outbox"),
                    "--http-port", str(http_port + 1 + i),
                ]))  # fmt: skip
            print(json.dumps({
                "city page": f"http://127.0.0.1:{http_port}/",
                "agents": {
                    n: f"http://127.0.0.1:{http_port + 1 + i}/" for i, n in enumerate(names)
                },
                "broker": f"127.0.0.1:{mqtt_port}", "database": pg.dsn, "files": str(folder),
            }, indent=2), flush=True)  # fmt: skip
            try:
                while all(p.poll() is None for p in procs):
                    with suppress(subprocess.TimeoutExpired):
                        procs[0].wait(1.0)
            except KeyboardInterrupt:
                pass
        finally:
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            for p in procs:
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
            broker.stop()
