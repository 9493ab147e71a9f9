"""The coordinator killed (SIGKILL) in the middle of a run.

Mosquitto, a throwaway PostgreSQL, two district agents on the replay plant in this process
and ``vpp coordinator`` as a process of its own (``--clock agents``: it keeps the agents'
simulated time). After one quarter hour under the city's targets the coordinator is killed:
the agents go on controlling their plants within every device's limits, take their own plan
when the targets expire, and when the coordinator is started again they hold its new
targets (numbered after the old ones, from the history), and everything they buffered
meanwhile reaches the history, once.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import aiohttp
import numpy as np
import pandas as pd
import pytest

from tests.conftest import free_port
from tests.vpp.city.conftest import AGENTS, _need, link_for
from tests.vpp.replay.conftest import small_site
from tests.waiting import until, within
from vpp.city import schema as s
from vpp.city.broker import COORDINATOR_USER, Broker
from vpp.city.history import History
from vpp.city.pgcluster import PgCluster
from vpp.city.sim import ReplayAgent, replay_agent
from vpp.core.clock import floor_quarter
from vpp.core.site import Site
from vpp.replay.data import read_replay_inputs

DAY = date(2018, 5, 16)


#: The most one agent's step of a few minutes of controller time may take (a few seconds
#: alone): past it the test fails and says where the step was waiting.
STEP_S = 120.0


async def run_until(ra: ReplayAgent, t: datetime) -> None:
    await within(ra.run_until(t), STEP_S, f"{ra.agent.id} controlling until {t}")


class CoordinatorProcess:
    """``vpp coordinator`` on the test's broker and database; stopped by the test."""

    def __init__(self, broker: Broker, dsn: str, folder: Path) -> None:
        pw = folder / "coordinator.password"
        pw.write_text(broker.config.passwords[COORDINATOR_USER])
        self.port = free_port()
        self.log = folder / "coordinator.log"
        self.args = [
            sys.executable, "-m", "vpp", "coordinator", "--agents", ",".join(AGENTS),
            "--broker", f"127.0.0.1:{broker.config.port}", "--password-file", str(pw),
            "--db", dsn, "--clock", "agents", "--grace-s", "300",
            "--http-port", str(self.port), "--import-limit-w", "4e5", "--export-limit-w", "6e4",
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)

    async def connected(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"coordinator exited: {self.log.read_text()[-2000:]}")
        url = f"http://127.0.0.1:{self.port}/metrics"
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as resp:
                return "vpp_city_link_connected 1.0" in await resp.text()
        except (aiohttp.ClientError, TimeoutError):
            return False

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL: nothing is flushed, nothing said goodbye
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def coordinators() -> Iterator[list[CoordinatorProcess]]:
    """The coordinator processes a test starts, stopped at its teardown whatever happened:
    a test stopped by its timeout never reaches its own ``finally``."""
    started: list[CoordinatorProcess] = []
    yield started
    for coord in started:
        coord.stop()


def within_limits(site: Site, ra: ReplayAgent) -> None:
    """Every battery within its power rating and energy window, every inverter limit within
    its rating: what the safety layer holds, whoever plans."""
    p = ra.plant
    for i, b in enumerate(site.batteries):
        assert -b.max_charge_w - 1.0 <= p.bat_set[i] <= b.max_discharge_w + 1.0, b.id
        assert -1.0 <= p.soc[i] <= b.capacity_wh + 1.0, b.id
    rated = np.array([pv.rated_w for pv in site.pv])
    assert (p.pv_limit_w <= rated + 1.0).all()
    assert ra.ctl.state.job("poll").failures == 0
    assert ra.ctl.state.job("dispatch").failures == 0


def last_telemetry(ra: ReplayAgent) -> s.Telemetry:
    rows = [p for _, st, p in ra.agent.outbox.after(0, 100_000) if st == "up/telemetry"]
    return s.decode(s.Telemetry, rows[-1], ra.agent.id)


@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_agents_hold_on_while_the_coordinator_is_killed(
    broker: Broker, tmp_path: Path, coordinators: list[CoordinatorProcess]
) -> None:
    _need("/usr/lib/postgresql/15/bin/initdb", "postgresql")
    site = small_site()
    raw = read_replay_inputs(site, DAY, DAY)
    agents = [
        replay_agent(site, raw, DAY, a, tmp_path / f"{a}.db", link_for(broker, a), 11.75)
        for a in AGENTS
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(ra.agent.link.run(stop)) for ra in agents]  # type: ignore[union-attr]
    with PgCluster(free_port()) as pg:
        coord = CoordinatorProcess(broker, pg.dsn, tmp_path)
        coordinators.append(coord)
        try:
            coord.start()
            await until(coord.connected, 60, "coordinator connected")
            for ra in agents:
                await ra.start()

            async def quarter(q: datetime) -> None:
                """Plan for ``q`` (each agent reports 30 s ahead); every agent holds targets
                for it; into the quarter hour."""
                for ra in agents:
                    await run_until(ra, q - timedelta(seconds=20))

                async def held() -> bool:
                    return all(
                        ra.agent.target is not None and ra.agent.target.start == q for ra in agents
                    )

                await until(held, 90, f"every agent holding targets for {q}")
                for ra in agents:
                    await run_until(ra, q + timedelta(minutes=1))

            q0 = floor_quarter(agents[0].clock.now()) + timedelta(minutes=15)
            await quarter(q0)
            before = {ra.agent.id: ra.agent.last_target_seq for ra in agents}
            assert all(n >= 1 for n in before.values())
            for ra in agents:
                assert last_telemetry(ra).plan_source == "target"

            coord.kill()
            expires = max(ra.agent.target.expires_at for ra in agents)  # type: ignore[union-attr]
            # Minute by minute to past the expiry and one more plan: control goes on alone.
            t = q0 + timedelta(minutes=1)
            while t < expires + timedelta(minutes=16):
                t += timedelta(minutes=1)
                for ra in agents:
                    await run_until(ra, t)
                    within_limits(site, ra)
            for ra in agents:
                a = ra.agent
                assert a.target is None and a.stats.fallbacks_total == 1
                assert last_telemetry(ra).plan_source == "local"
                assert "target_expired" in [e.kind for e in ra.ctl.state.events]
                # The devices follow the district's own plan now.
                now = pd.Timestamp(floor_quarter(ra.clock.now()))
                assert a.local_plan is not None
                devices = [c for c in a.local_plan.frame.columns if "." in c]
                pd.testing.assert_series_equal(
                    ra.ctl.state.plan.frame.loc[now, devices], a.local_plan.frame.loc[now, devices]
                )
                assert a.outbox.pending() > 0  # buffered for the coordinator

            coord.start()
            await until(coord.connected, 60, "coordinator connected again")
            q1 = floor_quarter(agents[0].clock.now()) + timedelta(minutes=15)
            await quarter(q1)
            for ra in agents:
                a = ra.agent
                # Numbered after the targets before the crash (the history keeps the
                # numbers): each applied once, none refused as a duplicate or out of order.
                assert a.last_target_seq > before[a.id]
                city = [e.message for e in ra.ctl.state.events if e.source == "city"]
                assert a.stats.targets == {"applied": a.last_target_seq}, (a.id, city[-6:])
                assert last_telemetry(ra).plan_source == "target"
                within_limits(site, ra)

            async def confirmed() -> bool:
                return all(ra.agent.outbox.pending() == 0 for ra in agents)

            await until(confirmed, 60, "outboxes confirmed: the coordinator resynced")
            history = await History.open(pg.dsn)
            try:
                rows = await history.count("telemetry")
                assert rows == sum(ra.agent.stats.telemetry_total for ra in agents)
            finally:
                await history.close()
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            coord.stop()
            for ra in agents:
                ra.agent.outbox.close()
