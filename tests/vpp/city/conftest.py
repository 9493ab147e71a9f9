"""A broker and a database of the tests' own: Mosquitto with per-agent users and ACLs on a
loopback port, a throwaway PostgreSQL cluster; both stopped by the fixtures. District agents
on the replay plant of one shipped day (``districts``), their outboxes closed after the test.
The tests wait with :func:`tests.waiting.until` and :func:`tests.waiting.within`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import free_port
from tests.vpp.replay.conftest import small_site
from vpp.city.broker import COORDINATOR_USER, Broker, BrokerConfig
from vpp.city.link import LinkConfig
from vpp.city.sim import ReplayAgent, replay_agent
from vpp.core.site import Site
from vpp.replay.data import read_replay_inputs

AGENTS = ["north", "south"]
#: The shipped day the districts replay (a sunny noon in May).
DAY = date(2018, 5, 16)


def _need(binary: str, package: str) -> None:
    if shutil.which(binary) is None and not Path(binary).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{binary} missing: install the Debian package {package}")
        pytest.skip(f"{binary} missing (Debian package {package})")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    _need("/usr/sbin/mosquitto", "mosquitto")
    b = Broker(BrokerConfig(tmp_path / "broker", free_port(), list(AGENTS)))
    b.start()
    try:
        yield b
    finally:
        b.stop()


def link_for(broker: Broker, user: str, client_id: str | None = None) -> LinkConfig:
    cfg = broker.config
    return LinkConfig(cfg.host, cfg.port, user, cfg.passwords[user], client_id or user)


def coordinator_link(broker: Broker) -> LinkConfig:
    return link_for(broker, COORDINATOR_USER)


@pytest.fixture(scope="module")
def world() -> tuple[Site, pd.DataFrame]:
    """The cut-down district and its inputs of :data:`DAY`."""
    site = small_site()
    return site, read_replay_inputs(site, DAY, DAY)


class Districts:
    """Makes district agents on the replay plant of ``world``, each with its outbox in the
    test's folder (the same agent id again: the same outbox, as after a restart)."""

    def __init__(self, world: tuple[Site, pd.DataFrame], folder: Path) -> None:
        self.site, self.raw = world
        self.folder = folder
        self.made: list[ReplayAgent] = []

    def make(
        self, agent: str = "north", link: LinkConfig | None = None, hour: float = 11.5
    ) -> ReplayAgent:
        """An agent whose clock stands at ``hour`` of :data:`DAY` (not started)."""
        outbox = self.folder / f"{agent}.outbox.db"
        ra = replay_agent(self.site, self.raw, DAY, agent, outbox, link, start_hour=hour)
        self.made.append(ra)
        return ra

    async def started(
        self, agent: str = "north", link: LinkConfig | None = None, hour: float = 11.5
    ) -> ReplayAgent:
        """As :meth:`make`, then started as ``vpp run`` starts (poll, plan, dispatch)."""
        ra = self.make(agent, link, hour)
        await ra.start()
        return ra

    def close(self) -> None:
        for ra in self.made:
            ra.agent.outbox.close()


@pytest.fixture
def districts(world: tuple[Site, pd.DataFrame], tmp_path: Path) -> Iterator[Districts]:
    made = Districts(world, tmp_path)
    try:
        yield made
    finally:
        made.close()
