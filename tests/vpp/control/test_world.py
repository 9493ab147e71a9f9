"""The simulated world of ``vpp run`` (vpp.control.world) and the replay plant show the same
meters at every poll: the data centre's waste heat (which caps the heat pump's setpoint) and
the network's heat demand (which the heat correction and the store estimate read), from the
first poll (the minute before the start) on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from adapters.snapshot import DatacentreReading, HeatPumpReading
from vpp.control.inputs import InputProvider
from vpp.control.world import world_from_frame, world_from_inputs
from vpp.replay.layout import plant_inputs, plant_params
from vpp.replay.sim import PER_QUARTER, ReplayPlant
from vpp.testing.harness import small_site

#: Local midnight (Europe/Berlin, summer time) of the identity test's day, a local day long
#: (both interpolate the heat demand within a local day's quarter hours).
START = datetime(2026, 6, 21, 22, 0, tzinfo=UTC)
QUARTERS = 96


def test_the_simulated_meters_show_what_the_replay_plant_shows() -> None:
    site = small_site()
    dc, hp = site.datacentre, site.heat_pump
    assert dc is not None and hp is not None
    source = InputProvider.for_run(None, []).sources[0]
    world = world_from_inputs(site, source)
    end = START + timedelta(minutes=15 * QUARTERS)
    raw = source.fetch(START - timedelta(days=1), end, end)
    index = pd.date_range(START, periods=QUARTERS, freq="15min")
    inputs = plant_inputs(site, raw.loc[index])
    # As replay's driver starts it: its heat meter knows the minute before the start.
    before = world_from_frame(site, raw).heat_demand_th_w(START)
    assert before is not None and before != world.heat_demand_th_w(START + timedelta(seconds=1))
    plant = ReplayPlant(site, plant_params(site), inputs, heat_before_w=before)
    waste = [float(w) for w in inputs.inp[:, 2]]
    # Quarter hours with their own waste heat: the test can tell one from the next.
    assert len(set(waste)) > QUARTERS // 2
    for m in range(QUARTERS * PER_QUARTER):
        for second in (0, 10, 50):
            at = START + timedelta(minutes=m, seconds=second)
            plant.advance_to(at)
            devices = plant.snapshot().devices
            shown = devices[dc.id].reading
            assert isinstance(shown, DatacentreReading) and shown.waste_heat_w is not None
            it_w = world.it_power_w(at)
            assert it_w is not None
            # The waste heat of the quarter hour that starts or goes on at the poll (held for
            # the quarter hour): at a quarter hour's first poll the new one's in both.
            assert it_w * dc.heat_recovery_ratio == np.float64(shown.waste_heat_w), (m, second)
            assert shown.waste_heat_w == waste[m // PER_QUARTER]
            meter = devices[hp.id].reading
            assert isinstance(meter, HeatPumpReading)
            assert world.heat_demand_th_w(at) == meter.network_th_w, (m, second)
