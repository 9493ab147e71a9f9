"""A broker and a database of the tests' own: Mosquitto with per-agent users and ACLs on a
loopback port, a throwaway PostgreSQL cluster; both stopped by the fixtures. District agents
on the replay plant of one shipped day (``districts``), their outboxes closed after the test.
The tests wait with :func:`until` and :func:`within`: bounded in time, also where a check or
a step does not return, and a step that does not finish says where it waited."""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pytest

from tests.conftest import free_port
from tests.vpp.replay.conftest import small_site
from vpp.city.broker import COORDINATOR_USER, Broker, BrokerConfig
from vpp.city.link import LinkConfig
from vpp.city.sim import ReplayAgent, replay_agent
from vpp.core.site import Site
from vpp.replay.data import read_replay_inputs

T = TypeVar("T")

AGENTS = ["north", "south"]
#: The shipped day the districts replay (a sunny noon in May).
DAY = date(2018, 5, 16)


def await_chain(aw: Any) -> str:
    """Where a suspended coroutine waits, outermost first: each coroutine it awaits, down to
    the future at the end (a task's own stack shows only its outermost frame)."""
    lines = []
    for _ in range(100):  # bounded: a chain is a few dozen deep at most
        frame = getattr(aw, "cr_frame", None) or getattr(aw, "ag_frame", None)
        if frame is None:
            lines.append(f"  awaiting {aw!r}")
            break
        code = frame.f_code
        lines.append(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}")
        aw = getattr(aw, "cr_await", None) or getattr(aw, "ag_await", None)
        if aw is None:
            break
    return "\n".join(lines)


async def within(aw: Awaitable[T], timeout_s: float, why: str) -> T:
    """``await aw``, failing the test after ``timeout_s`` with where it was waiting."""
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait([task], timeout=timeout_s)
    if not done:
        where = await_chain(task.get_coro())
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        pytest.fail(f"not within {timeout_s} s: {why}; it waited at\n{where}")
    return task.result()


async def until(
    what: Callable[[], bool | Awaitable[bool]],
    timeout_s: float,
    why: str,
    state: Callable[[], str] | None = None,
) -> None:
    """Until ``what()`` is true (it may be a coroutine function), checked every 50 ms; the
    test fails after ``timeout_s``, also when one check itself does not return."""
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / 0.05) + 2):  # bounded in count and, below, in time
        left = deadline - time.monotonic()
        result = what()
        if inspect.isawaitable(result):
            result = await within(result, max(left, 0.05), f"{why} (one check)")
        if result:
            return
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    extra = f" ({state()})" if state is not None else ""
    pytest.fail(f"not within {timeout_s} s: {why}{extra}")


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
