"""The controller's own guards, on the replay plant: nothing unsafe is written whatever the
cycle hands over, and an implausible reading is quarantined instead of acted on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

import pandas as pd
import pytest

from adapters.snapshot import MeterReading, Snapshot
from optimizer.planner import Planner
from tests.vpp.replay.conftest import small_site
from vpp.control.controller import Controller
from vpp.control.plant import Written
from vpp.control.safety import Setpoint
from vpp.control.state import ControllerState
from vpp.core.clock import ManualClock
from vpp.core.site import DeviceKind, Site
from vpp.replay.data import read_replay_inputs
from vpp.replay.drive import FrameInputs
from vpp.replay.layout import plant_inputs, plant_params
from vpp.replay.runner import day_index
from vpp.replay.sim import ReplayPlant

DAY = date(2018, 5, 16)


class FaultyMeter:
    """The replay plant with a grid meter that reads ``meter_w`` whatever flows."""

    def __init__(self, plant: ReplayPlant, meter: str, meter_w: float) -> None:
        self.plant, self.meter, self.meter_w = plant, meter, meter_w

    async def read(self) -> Snapshot:
        snap = await self.plant.read()
        devices = dict(snap.devices)
        devices[self.meter] = replace(
            devices[self.meter], reading=MeterReading(self.meter_w, None, None)
        )
        return Snapshot(snap.time, devices)

    async def write(self, setpoints: Sequence[Setpoint]) -> list[Written]:
        return await self.plant.write(setpoints)


@pytest.fixture(scope="module")
def world() -> tuple[Site, pd.DataFrame]:
    site = small_site()
    return site, read_replay_inputs(site, DAY, DAY)


def controller(site: Site, raw: pd.DataFrame, meter_w: float | None = None) -> Controller:
    index = day_index(site, DAY)
    plant = ReplayPlant(site, plant_params(site), plant_inputs(site, raw.loc[index]))
    clock = ManualClock(plant.start + pd.Timedelta(hours=12))
    plant.advance_to(clock.now())
    assert site.grid.meter is not None
    used = plant if meter_w is None else FaultyMeter(plant, site.grid.meter, meter_w)
    return Controller(
        site=site,
        clock=clock,
        plant=used,
        planner=Planner(site),
        inputs=FrameInputs(raw),
        state=ControllerState(site=site, started_at=clock.now()),
    )


async def test_a_setpoint_beyond_the_rating_is_not_written(
    world: tuple[Site, pd.DataFrame],
) -> None:
    site, raw = world
    ctl = controller(site, raw)
    assert await ctl.run_job("poll")
    plant = ctl.plant
    assert isinstance(plant, ReplayPlant)
    bat = site.batteries[0]
    before = plant.bat_set.copy()
    await ctl.apply([Setpoint(bat.id, DeviceKind.BATTERY, 10 * bat.max_discharge_w, 0.0)], "op")
    assert (plant.bat_set == before).all()
    # Beyond its rating, and (as the plant exports at noon) pushing the export past its limit.
    unsafe = [e for e in ctl.state.events if e.kind == "setpoint_unsafe"]
    assert ctl.state.invariant_violations_total == len(unsafe) >= 1
    assert {e.device for e in unsafe} == {bat.id}
    assert any("rating" in e.message for e in unsafe)
    assert bat.id not in ctl.state.setpoints


async def test_an_absurd_meter_reading_is_quarantined_and_control_holds_the_plan(
    world: tuple[Site, pd.DataFrame],
) -> None:
    """The meter reads -4.9 MW (export limit 200 kW): quarantined with an alert, and the
    quarter hour's setpoints and the correction are those of a plant without the fault."""
    site, raw = world
    written: dict[str, list[dict[str, float]]] = {}
    for name, meter_w in (("healthy", None), ("faulty", -4.9e6)):
        ctl = controller(site, raw, meter_w)
        for job in ("poll", "plan", "dispatch", "correct"):
            assert await ctl.run_job(job), ctl.state.jobs[job].last_error
        written[name] = [{d: s.requested_w for d, s in ctl.state.setpoints.items()}]
        kinds = [e.kind for e in ctl.state.events]
        if meter_w is None:
            assert "reading_quarantined" not in kinds
        else:
            assert kinds.count("reading_quarantined") == 1
            assert ctl.state.quarantines_total == 1
            assert site.grid.meter not in {d.id for d in ctl.state.snapshot.online()}
            # A second poll with the same reading raises no second alert.
            assert await ctl.run_job("poll")
            assert [e.kind for e in ctl.state.events].count("reading_quarantined") == 1
    pvs = [p.id for p in site.pv]
    assert all(written["faulty"][0][p] == written["healthy"][0][p] for p in pvs)
    assert written["faulty"] == written["healthy"]
