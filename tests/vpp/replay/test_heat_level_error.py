"""The controller tells each plan the heat forecast's level error of the day (the store's
reserve against it: optimizer.data.set_heat_risk)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pandas as pd
import pytest

from optimizer.inputs import State
from optimizer.params import OptimizerParams
from optimizer.planner import Planner
from vpp.core.site import Site
from vpp.data import read_inputs, shipped_inputs
from vpp.data.world import noisy_world, read_household
from vpp.forecast import ForecastSettings, heat_level_error
from vpp.replay.drive import run_controller
from vpp.replay.layout import plant_inputs, plant_params
from vpp.replay.runner import day_index, raw_window

DAY = date(2018, 6, 12)


class _Told(Planner):
    """A planner that notes the level error each plan is given."""

    told: list[float]

    def plan(self, state: State, forecast: pd.DataFrame, at: Any, *args: Any, **kw: Any) -> Any:
        self.told.append(state.heat_level_error)
        return super().plan(state, forecast, at, *args, **kw)


def _told(site: Site, data: pd.DataFrame) -> tuple[list[float], float]:
    start, end = raw_window(site, DAY, DAY)
    raw = data[(data.index >= start) & (data.index < end)]
    planner = _Told(site)
    planner.told = []
    truth = plant_inputs(site, raw.loc[day_index(site, DAY)[:3]])
    run_controller(site, plant_params(site), truth, raw, "asof", planner=planner)
    utc_day = pd.Timestamp(day_index(site, DAY)[0]).floor("D")
    known = raw[raw.index < utc_day]
    want = heat_level_error(
        known["heat_w_per_mwh_a"], known["outdoor_temp_c"], utc_day, ForecastSettings()
    )
    return planner.told, want


@pytest.mark.parametrize("world", ["shipped", "noisy"])
def test_each_plan_is_told_the_day_s_level_error(site: Site, world: str) -> None:
    """On the noisy world the plans of a June morning are told a level error of some 5 %,
    the one the days before the day give; on the shipped year (the model the heat is made
    with) the error is under the optimizer's floor and the plans are told none."""
    year = read_inputs(shipped_inputs(2018))
    data = year if world == "shipped" else noisy_world(year, read_household(), 2018)
    told, error = _told(site, data)
    floor = OptimizerParams().heat_error_min
    assert len(told) >= 3
    if world == "noisy":
        assert 0.03 < error < 0.09
        assert told == [error] * len(told)
    else:
        assert 0.0 < error < floor
        assert told == [0.0] * len(told)
