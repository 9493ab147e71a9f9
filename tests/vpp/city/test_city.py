"""A city on loopback: Mosquitto, a throwaway PostgreSQL, the coordinator and two district
agents on the replay plant, quarter hour by quarter hour; the broker is killed and started
again in the middle. Nothing is lost, nothing is applied twice, the substation holds."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tests.conftest import free_port
from tests.vpp.city.conftest import AGENTS, _need, coordinator_link, link_for
from tests.vpp.replay.conftest import small_site
from tests.waiting import until
from vpp.city.broker import Broker
from vpp.city.coordinator import Coordinator, CoordinatorConfig
from vpp.city.history import History
from vpp.city.metrics import AgentCollector, CoordinatorCollector
from vpp.city.pgcluster import PgCluster
from vpp.city.run import city_view
from vpp.city.sim import ReplayAgent, replay_agent
from vpp.core.clock import floor_quarter
from vpp.replay.data import read_replay_inputs

DAY = date(2018, 5, 16)
#: The substation limits the two districts together (each may export 200 kW on its own).
EXPORT_LIMIT_W = 60_000.0
IMPORT_LIMIT_W = 400_000.0


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_a_city_over_mqtt_survives_a_broker_crash(broker: Broker, tmp_path: Path) -> None:
    _need("/usr/lib/postgresql/15/bin/initdb", "postgresql")
    site = small_site()
    raw = read_replay_inputs(site, DAY, DAY)
    agents: list[ReplayAgent] = [
        replay_agent(site, raw, DAY, a, tmp_path / f"{a}.db", link_for(broker, a), 11.75)
        for a in AGENTS
    ]
    stop = asyncio.Event()
    with PgCluster(free_port()) as pg:
        history = await History.open(pg.dsn)
        coord = Coordinator(
            CoordinatorConfig(list(AGENTS), IMPORT_LIMIT_W, EXPORT_LIMIT_W, grace_s=120.0),
            coordinator_link(broker),
            history,
            now=lambda: max(ra.clock.now() for ra in agents),
        )

        def state() -> str:
            return (
                f"coordinator {coord.stats}, plans {coord.plans}, flex "
                f"{ {a: f.start for a, f in coord.flex.items()} }, link {coord.link.stats}; "
                f"agents {[(ra.agent.stats.targets, ra.agent.link.stats) for ra in agents]}"
            )

        tasks = [asyncio.create_task(coord.run(stop))]
        tasks += [asyncio.create_task(ra.agent.link.run(stop)) for ra in agents]  # type: ignore[union-attr]
        try:
            await until(lambda: coord.link.stats.connected, 20, "coordinator connected", state)
            for ra in agents:
                await ra.start()

            async def quarter(q: datetime, with_broker: bool = True) -> None:
                for ra in agents:  # each plans 30 s ahead and reports its flexibility
                    await ra.run_until(q - timedelta(seconds=20))
                if with_broker:
                    await until(
                        lambda: any(p.start == q and len(p.acked) == len(AGENTS)
                                    for p in coord.plans),
                        60, f"every agent holding its targets for {q}", state,
                    )  # fmt: skip
                for ra in agents:
                    await ra.run_until(q + timedelta(minutes=1))

            q0 = floor_quarter(agents[0].clock.now()) + timedelta(minutes=15)
            await quarter(q0)
            await quarter(q0 + timedelta(minutes=15))
            broker.kill()
            await quarter(q0 + timedelta(minutes=30), with_broker=False)
            for ra in agents:  # control went on without the broker
                assert ra.ctl.state.job("poll").failures == 0
                assert ra.agent.outbox.pending() > 0
            broker.start()
            # Resynced: the coordinator stored and confirmed everything buffered meanwhile.
            await until(
                lambda: all(ra.agent.outbox.pending() == 0 for ra in agents),
                60, "agents resynced and their outboxes confirmed", state,
            )  # fmt: skip
            await quarter(q0 + timedelta(minutes=45))
            await coord.flush()
            await until(lambda: all(ra.agent.outbox.pending() == 0 for ra in agents), 30,
                        "outboxes confirmed", state)  # fmt: skip

            # Telemetry: every poll of every agent is a row, once.
            rows = await history.count("telemetry")
            assert rows == sum(ra.agent.stats.telemetry_total for ra in agents)
            # Targets: every one sent was applied once, none twice.
            for ra in agents:
                sent = coord.target_seq[ra.agent.id]
                assert sent >= 3
                assert ra.agent.stats.targets.get("applied", 0) == sent
                assert ra.agent.last_target_seq == sent
            statuses = await history.pool.fetch(
                "SELECT ack_status, count(*) AS n FROM targets GROUP BY ack_status"
            )
            assert {r["ack_status"]: r["n"] for r in statuses} == {
                "applied": sum(coord.target_seq.values())
            }
            # The substation's export limit held in every city plan (without it the two
            # districts export more at noon).
            plans = await history.pool.fetch("SELECT max_export_w, status FROM city_plans")
            assert len(plans) >= 3
            assert all(p["max_export_w"] <= EXPORT_LIMIT_W + 1.0 for p in plans)
            assert coord.status == {a: "online" for a in AGENTS}
            # Both levels say so on /metrics and on the city page.
            reg = CollectorRegistry()
            reg.register(CoordinatorCollector(coord))
            reg.register(AgentCollector(agents[0].agent))
            text = generate_latest(reg).decode()
            applied = sum(coord.target_seq.values())
            assert f'vpp_city_target_acks_total{{status="applied"}} {float(applied)}' in text
            assert 'vpp_city_agent_online{agent="north"} 1.0' in text
            assert "vpp_city_outbox_messages 0.0" in text
            north = coord.target_seq["north"]
            assert f'vpp_city_targets_total{{status="applied"}} {float(north)}' in text
            view = city_view(coord)
            assert [(a["status"], a["acked_seq"]) for a in view["agents"]] == [
                ("online", coord.target_seq[a]) for a in AGENTS
            ]
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await history.close()
            for ra in agents:
                ra.agent.outbox.close()
