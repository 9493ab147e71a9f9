"""Agents on the replay plant, for the tests and the benchmark: a district controller with a
manual clock over :class:`vpp.replay.sim.ReplayPlant` (the numba model, through the
:class:`~vpp.control.plant.Plant` protocol), so that one machine can hold a city."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from optimizer.planner import Planner
from vpp.city.agent import CityAgent
from vpp.city.link import LinkConfig
from vpp.city.outbox import Outbox
from vpp.control.controller import Controller
from vpp.control.runner import step
from vpp.control.schedule import PLAN_LEAD_S
from vpp.control.state import ControllerState
from vpp.core.clock import ManualClock
from vpp.core.site import Site
from vpp.replay.drive import FrameInputs
from vpp.replay.layout import plant_inputs, plant_params
from vpp.replay.runner import day_index
from vpp.replay.sim import ReplayPlant


@dataclass
class ReplayAgent:
    agent: CityAgent
    plant: ReplayPlant
    clock: ManualClock

    @property
    def ctl(self) -> Controller:
        return self.agent.ctl

    async def start(self) -> None:
        """As ``vpp run`` starts: poll, plan, dispatch."""
        for name in ("poll", "plan", "dispatch"):
            await self.ctl.run_job(name)

    async def run_until(self, until: datetime) -> None:
        await step(self.ctl, self.clock, until, before_jobs=self.plant.advance_to,
                   plan_lead_s=PLAN_LEAD_S)  # fmt: skip


def replay_agent(
    site: Site,
    raw: pd.DataFrame,
    day: date,
    agent_id: str,
    outbox: Path,
    link: LinkConfig | None,
    start_hour: float = 0.0,
    outbox_max_bytes: int | None = None,
) -> ReplayAgent:
    index = day_index(site, day)
    plant = ReplayPlant(site, plant_params(site), plant_inputs(site, raw.loc[index]))
    clock = ManualClock(plant.start + pd.Timedelta(hours=start_hour))
    plant.advance_to(clock.now())
    ctl = Controller(
        site=site,
        clock=clock,
        plant=plant,
        planner=Planner(site),
        inputs=FrameInputs(raw),
        state=ControllerState(site=site, started_at=clock.now()),
    )
    agent = CityAgent(ctl, agent_id, Outbox(outbox, outbox_max_bytes), link)
    return ReplayAgent(agent, plant, clock)
