"""The city dashboard against a real Prometheus scraping a real coordinator.

Two district agents on the replay plant hand their messages to a coordinator (no broker: the
messages go through :meth:`Coordinator.receive` and :meth:`CityAgent.on_targets`, as the
link would deliver them); the coordinator plans the city with HiGHS, the agents apply and
acknowledge their targets, and Prometheus scrapes the coordinator's ``/metrics`` (the
server of ``vpp coordinator``). Every expression of ``vpp-city.json`` and its variables must
return data.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry

from tests.conftest import free_port
from tests.dashboards.promql import dashboards, panel_exprs, substitute
from tests.dashboards.test_live import CITY, SITE_LABEL, evaluate, prometheus_config
from tests.prometheus import PrometheusServer, require_prometheus
from tests.vpp.replay.conftest import small_site
from tests.vpp.web.live import wait_until
from vpp.city import schema as s
from vpp.city.coordinator import Coordinator, CoordinatorConfig
from vpp.city.link import LinkConfig
from vpp.city.metrics import CoordinatorCollector
from vpp.city.run import city_app
from vpp.city.sim import ReplayAgent, replay_agent
from vpp.replay.data import read_replay_inputs

DAY = date(2018, 5, 16)
AGENTS = ("north", "south")


def deliver(ra: ReplayAgent, coord: Coordinator, after: int) -> int:
    """What the agent's outbox holds above ``after``, to the coordinator; the last seq."""
    for seq, stream, payload in ra.agent.outbox.after(after, 100_000):
        coord.receive(s.topic(ra.agent.id, stream), payload)
        after = seq
    return after


async def a_city(tmp_path: Path) -> tuple[Coordinator, list[ReplayAgent]]:
    site = small_site()
    raw = read_replay_inputs(site, DAY, DAY)
    agents = [
        replay_agent(site, raw, DAY, a, tmp_path / f"{a}.db", None, start_hour=11.5) for a in AGENTS
    ]
    clock = agents[0].clock
    coord = Coordinator(
        CoordinatorConfig(list(AGENTS), import_limit_w=2e6, export_limit_w=1e6),
        LinkConfig("127.0.0.1", 1, "coordinator", "-", "coordinator"),
        None,
        now=clock.now,
    )
    sent = dict.fromkeys(AGENTS, 0)
    for ra in agents:
        await ra.start()
        coord.receive(s.topic(ra.agent.id, "up/status"), ra.agent._status("online"))
        sent[ra.agent.id] = deliver(ra, coord, 0)
    plan = coord._plan_task
    assert plan is not None, "both flexibilities in: the city plans"
    await asyncio.wait_for(plan, 60)
    for ra in agents:
        t = coord.latest[ra.agent.id]
        assert ra.agent.on_targets(s.encode(t)) == "applied"
    start = coord.latest[AGENTS[0]].start
    for ra in agents:  # into the quarter hour the targets cover
        await ra.run_until(start + timedelta(minutes=2))
        sent[ra.agent.id] = deliver(ra, coord, sent[ra.agent.id])
    assert coord.last_held_s() is not None
    return coord, agents


async def test_every_city_panel_returns_data(tmp_path: Path) -> None:
    require_prometheus()
    started = time.monotonic()
    coord, agents = await a_city(tmp_path)
    registry = CollectorRegistry()
    registry.register(CoordinatorCollector(coord))
    runner = web.AppRunner(city_app(coord, registry))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        prom = PrometheusServer([], tmp_path)
        prom.config = prometheus_config(f"127.0.0.1:{port}")
        with prom:
            await prom.wait_for_async(f'vpp_city_plans_total{{site="{SITE_LABEL}"}} == 1', 20)
            settle_until = time.monotonic() + 4.0
            await wait_until(lambda: time.monotonic() > settle_until, 5.0, "settle")
            board = dashboards()[CITY]
            for var in board["templating"]["list"]:
                if var["type"] == "query":
                    metric = var["definition"].split("(", 1)[1].rsplit(",", 1)[0]
                    values = await prom.query_async(substitute(metric, SITE_LABEL))
                    found = {v["metric"].get(var["name"]) for v in values} - {None}
                    want = {SITE_LABEL} if var["name"] == "site" else set(AGENTS)
                    assert found == want, var["name"]
            exprs = [e for e in panel_exprs() if e.where.startswith(CITY)]
            assert len(exprs) > 20
            problems = await evaluate(prom, exprs)
            # Targets against delivered: the values Prometheus holds are the agents' own.
            for ra in agents:
                a = ra.agent.id
                [got] = await prom.query_async(
                    f'vpp_city_agent_target_battery_watts{{agent="{a}"}}'
                )
                t = coord.latest[a]
                step = int((coord.now() - t.start).total_seconds() // 900)
                assert float(got["value"][1]) == t.battery_w[step]
    finally:
        await runner.cleanup()
        for ra in agents:
            ra.agent.outbox.close()
    assert not problems, "\n".join(problems)
    assert time.monotonic() - started < 120
