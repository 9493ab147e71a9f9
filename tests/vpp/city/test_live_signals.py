"""The coordinator's operator API while the city runs (Mosquitto, a throwaway PostgreSQL, the
coordinator with its HTTP server, two agents on the replay plant): a signal posted mid-run
is held by every agent within one poll, a bad body changes nothing and is refused in the
words a signal file gets, a substation cap is held by the next city plan, a restarted
coordinator holds both again, and a cancel ends them."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from tests.conftest import free_port
from tests.vpp.city.conftest import AGENTS, Districts, _need, coordinator_link, link_for
from tests.waiting import until
from vpp.city.broker import Broker
from vpp.city.cityplan import plan_city
from vpp.city.coordinator import Coordinator, CoordinatorConfig
from vpp.city.history import History
from vpp.city.metrics import CoordinatorCollector
from vpp.city.pgcluster import PgCluster
from vpp.city.run import city_app
from vpp.city.signals import read_city_signals
from vpp.city.sim import ReplayAgent
from vpp.core.clock import floor_quarter
from vpp.core.site import Site

DAY = date(2018, 5, 16)
TOKEN = "operator-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
IMPORT_LIMIT_W = 400_000.0
EXPORT_LIMIT_W = 300_000.0
#: The operator's substation import cap for an hour: below what the districts import then.
#: Long enough to reach the evening, when the districts import most.
CAP_FOR = timedelta(hours=12)


def pv_capped(site: Site, ra: ReplayAgent, pct: float) -> bool:
    """Every inverter's limit at most ``pct`` of its rating (what the plant was told)."""
    rated = np.array([pv.rated_w for pv in site.pv])
    return bool((ra.plant.pv_limit_w <= pct / 100 * rated + 1.0).all())


def city_signals(ra: ReplayAgent) -> set[str]:
    watch = ra.ctl.signal_watch
    assert watch is not None
    return {x.source for x in watch.extra if x.source.startswith("city:")}


class Centre:
    """One coordinator with its history and HTTP server on loopback; ``stop`` ends both."""

    def __init__(self, broker: Broker, history: History, agents: list[ReplayAgent]) -> None:
        self.coord = Coordinator(
            CoordinatorConfig(list(AGENTS), IMPORT_LIMIT_W, EXPORT_LIMIT_W, grace_s=120.0),
            coordinator_link(broker),
            history,
            now=lambda: max(ra.clock.now() for ra in agents),
        )
        self.stopping = asyncio.Event()
        self.url = f"http://127.0.0.1:{free_port()}"
        self.task: asyncio.Task[None] | None = None
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        await self.coord.restore()
        registry = CollectorRegistry()
        registry.register(CoordinatorCollector(self.coord))
        self.runner = web.AppRunner(city_app(self.coord, registry, TOKEN))
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", int(self.url.rsplit(":", 1)[1])).start()
        self.task = asyncio.create_task(self.coord.run(self.stopping))
        await until(lambda: self.coord.link.stats.connected, 20, "coordinator connected")

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        if self.runner is not None:
            await self.runner.cleanup()


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, auth: bool = True
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body, default=str)
    async with http.request(method, url, data=data, headers=AUTH if auth else {}) as r:
        return r.status, await r.json(content_type=None)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_operator_signals_and_caps_while_the_city_runs(
    broker: Broker, districts: Districts, tmp_path: Path
) -> None:
    _need("/usr/lib/postgresql/15/bin/initdb", "postgresql")
    site = districts.site
    agents = [districts.make(a, link_for(broker, a)) for a in AGENTS]
    agents_stop = asyncio.Event()
    links = [asyncio.create_task(ra.agent.link.run(agents_stop)) for ra in agents]  # type: ignore[union-attr]
    with PgCluster(free_port()) as pg:
        history = await History.open(pg.dsn)
        centre = Centre(broker, history, agents)
        try:
            await centre.start()
            for ra in agents:
                await ra.start()
            now = agents[0].clock.now()
            assert not any(pv_capped(site, ra, 30.0) for ra in agents)  # noon: free PV
            async with aiohttp.ClientSession() as http:
                await _bad_bodies_change_nothing(http, centre, agents, tmp_path, now)
                q = floor_quarter(now) + timedelta(minutes=15)
                window = int(CAP_FOR / timedelta(minutes=15))
                # The cap: 90 % of the most the districts would import in its window without it.
                # (Each agent's flexibility reaches the coordinator over the broker after its
                # start's plan: wait for both, as a busy machine may not have delivered them.)
                await until(lambda: set(centre.coord.flex) == set(AGENTS), 30,
                            "every agent's flexibility at the coordinator")  # fmt: skip
                free = plan_city(dict(centre.coord.flex), IMPORT_LIMIT_W, EXPORT_LIMIT_W, q)
                cap_w = round(0.9 * max(free.import_w[:window]))
                assert cap_w > 1_000.0, free.import_w[:window]
                cap = {"id": "sub-1", "direction": "import", "limit_w": cap_w,
                       "start": q.isoformat(), "end": (q + CAP_FOR).isoformat(),
                       "reason": "transformer 2 out"}  # fmt: skip
                status, body = await call(http, "POST", f"{centre.url}/api/city/caps", cap)
                assert status == 201, body
                # The next city plan holds the cap in its window (without it the districts
                # import more there).
                await _next_quarter(centre, agents, q)
                plan = centre.coord.last_plan
                assert plan is not None and plan.start == q and plan.status == "optimal"
                assert max(plan.import_w[:window]) <= cap_w + 1.0, plan.import_w[:window]
                free = plan_city(dict(centre.coord.flex), IMPORT_LIMIT_W, EXPORT_LIMIT_W, q)
                assert max(free.import_w[:window]) > cap_w + 1.0, free.import_w[:window]
                # A signal posted mid-run (the cap in force), for every agent.
                for ra in agents:
                    await ra.run_until(q + timedelta(minutes=1))
                now = agents[0].clock.now()
                signal = {"id": "dso-7", "kind": "feed_in_pct", "feed_in_pct": 30,
                          "start": now.isoformat(), "reason": "feeder 7"}  # fmt: skip
                status, body = await call(http, "POST", f"{centre.url}/api/city/signals", signal)
                assert status == 201, body
                assert body["signal"]["agents"] is None and body["signal"]["active"]
                # Held by every agent at once: no agent clock moved, the inverters are capped.
                await until(lambda: all(city_signals(ra) == {"city:dso-7"} for ra in agents),
                            30, "every agent holding dso-7")  # fmt: skip
                for ra in agents:
                    assert ra.clock.now() == now
                    assert pv_capped(site, ra, 30.0)
                    await ra.run_until(now + timedelta(seconds=site.poll.interval_s))
                    assert pv_capped(site, ra, 30.0)
                    assert {x.source for x in ra.ctl.state.grid_signals.active} == {"city:dso-7"}
                first_seq = {ra.agent.id: ra.agent._signals_seq for ra in agents}

                status, listed = await call(http, "GET", f"{centre.url}/api/city/signals")
                assert [s["id"] for s in listed["signals"]] == ["dso-7"]
                assert [c["id"] for c in listed["caps"]] == ["sub-1"]
                assert listed["substation"]["import_limit_w"] == cap_w
                async with http.get(f"{centre.url}/metrics") as r:
                    text = await r.text()
                assert "vpp_city_caps_active 1.0" in text
                limit = f'vpp_city_substation_limit_watts{{direction="import"}} {float(cap_w)}'
                assert limit in text
                assert 'vpp_city_signal_changes_total{action="added"} 2.0' in text
                assert 'vpp_city_signal_changes_total{action="refused"} 3.0' in text
                assert f"vpp_city_signals_active {float(len(AGENTS))}" in text

                # A restart keeps both: restored from the history, sent again, numbered on.
                await centre.stop()
                centre = Centre(broker, history, agents)
                await centre.start()
                assert list(centre.coord.live_signals) == ["dso-7"]
                assert list(centre.coord.caps) == ["sub-1"]
                await until(
                    lambda: all(ra.agent._signals_seq > first_seq[ra.agent.id] for ra in agents),
                    30, "every agent hearing the restarted coordinator's signals",
                )  # fmt: skip
                for ra in agents:
                    assert city_signals(ra) == {"city:dso-7"}
                    assert pv_capped(site, ra, 30.0)
                assert centre.coord.limits_now() == (cap_w, EXPORT_LIMIT_W)

                # Cancel ends them: every agent drops the signal at once, the cap is gone.
                held = {ra.agent.id: ra.agent._signals_seq for ra in agents}
                status, body = await call(http, "DELETE", f"{centre.url}/api/city/signals/dso-7")
                assert status == 200 and body["cancelled"]["id"] == "dso-7", body
                await until(
                    lambda: all(ra.agent._signals_seq > held[ra.agent.id] for ra in agents),
                    30, "every agent hearing the cancel",
                )  # fmt: skip
                for ra in agents:
                    assert city_signals(ra) == set()
                    t = ra.clock.now() + timedelta(seconds=site.poll.interval_s)
                    await ra.run_until(t)
                    assert not [x for x in ra.ctl.state.grid_signals.active
                                if x.source.startswith("city:")]  # fmt: skip
                status, body = await call(http, "DELETE", f"{centre.url}/api/city/caps/sub-1")
                assert status == 200, body
                assert centre.coord.limits_now() == (IMPORT_LIMIT_W, EXPORT_LIMIT_W)
                status, body = await call(http, "DELETE", f"{centre.url}/api/city/caps/sub-1")
                assert (status, body["field"]) == (404, "id")
                # A cancelled id is not used again (the history keeps what it was).
                status, body = await call(http, "POST", f"{centre.url}/api/city/signals", signal)
                assert (status, body["field"]) == (409, "id"), body
            rows = await history.pool.fetch(
                "SELECT id, cancelled_at IS NOT NULL AS gone FROM city_signals ORDER BY id"
            )
            assert [(r["id"], r["gone"]) for r in rows] == [("dso-7", True), ("sub-1", True)]
            # ... and a coordinator started now holds neither.
            again = Coordinator(centre.coord.config, coordinator_link(broker), history)
            await again.restore()
            assert not again.live_signals and not again.caps
            # A history that cannot store it: 503, and nothing changes.
            await history.pool.close()
            async with aiohttp.ClientSession() as http:
                fresh = {**signal, "id": "dso-8"}
                status, body = await call(http, "POST", f"{centre.url}/api/city/signals", fresh)
            assert status == 503, body
            assert not centre.coord.live_signals
            assert all(city_signals(ra) == set() for ra in agents)
        finally:
            await centre.stop()
            agents_stop.set()
            await asyncio.gather(*links, return_exceptions=True)
            await history.close()


async def _bad_bodies_change_nothing(
    http: aiohttp.ClientSession,
    centre: Centre,
    agents: list[ReplayAgent],
    tmp_path: Path,
    now: datetime,
) -> None:
    url = f"{centre.url}/api/city/signals"
    good = {"id": "dso-1", "kind": "feed_in_pct", "feed_in_pct": 60, "start": now.isoformat()}
    status, body = await call(http, "POST", url, good, auth=False)
    assert status == 401, body
    bad = {**good, "feed_in_pct": 120}
    status, body = await call(http, "POST", url, bad)
    assert (status, body["field"]) == (400, "feed_in_pct"), body
    # The words a signal file gets, there after "signals.0.".
    path = tmp_path / "signals.json"
    path.write_text(json.dumps({"signals": [bad]}))
    with pytest.raises(ValueError) as file_error:
        read_city_signals(path, list(AGENTS))
    assert str(file_error.value) == f"{path}: signals.0.{body['error']}"
    status, body = await call(http, "POST", url, {**good, "agents": ["east"]})
    assert (status, body["error"]) == (400, "agents: 'east' is not one of this city's")
    status, body = await call(http, "POST", f"{centre.url}/api/city/caps",
                              {"id": "c", "direction": "sideways", "limit_w": 1})  # fmt: skip
    assert (status, body["field"]) == (400, "direction"), body
    assert await centre.coord.history.count("city_signals") == 0  # type: ignore[union-attr]
    assert not centre.coord.live_signals and not centre.coord.caps
    assert centre.coord.limits_now() == (IMPORT_LIMIT_W, EXPORT_LIMIT_W)
    assert all(ra.agent._signals_seq == 0 and not city_signals(ra) for ra in agents)


async def _next_quarter(centre: Centre, agents: list[ReplayAgent], q: datetime) -> None:
    """The agents report their flexibility for ``q``; every one holds the city plan's targets."""
    for ra in agents:
        await ra.run_until(q - timedelta(seconds=20))
    await until(
        lambda: any(p.start == q and len(p.acked) == len(AGENTS) for p in centre.coord.plans),
        90, f"every agent holding its targets for {q}",
    )  # fmt: skip
