"""The live cycle on each event loop `vpp run` offers (``vpp.core.loop``): the controller
polls the simulated fleet over Modbus on loopback, plans, dispatches and corrects, and every
setpoint is written, read back and confirmed, on uvloop as on asyncio's own loop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from vpp.core.loop import LOOPS, run
from vpp.testing.harness import plant, small_site

START = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)


async def cycle() -> tuple[str, int, int]:
    """The loop's class name, setpoints on record and how many were confirmed."""
    site = small_site()
    async with plant(site, START) as p:
        for job in ("poll", "plan", "dispatch"):
            assert await p.ctl.run_job(job), job
        p.fleet.step(60)
        for job in ("poll", "correct", "keepalive"):
            assert await p.ctl.run_job(job), job
        statuses = list(p.ctl.state.setpoints.values())
        ok = sum(s.ok and s.read_back_w == s.written_w for s in statuses)
        return type(asyncio.get_running_loop()).__module__, len(statuses), ok


@pytest.mark.timeout(120)
@pytest.mark.parametrize("loop", LOOPS)
def test_the_live_cycle_runs_on_each_loop(loop: str) -> None:
    module, written, confirmed = run(cycle(), loop)
    assert module.split(".")[0] == loop
    controllable = len(small_site().devices)
    assert 0 < written <= controllable
    assert confirmed == written


def test_an_unknown_loop_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"'trio'.*uvloop, asyncio"):
        run(cycle(), "trio")
