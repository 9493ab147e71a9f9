"""The store's reserve for heat demand after the horizon that the heat pump cannot meet."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from optimizer.data import heat_pump_reach_th_w
from optimizer.inputs import State
from optimizer.params import SolveOptions
from optimizer.planner import Planner
from optimizer.reserve import store_reserve_wh
from tests.optimizer.checks import check_plan
from tests.optimizer.conftest import START, make_forecast, store_site
from vpp.core.site import Site

STEPS = 96  # 24 h


def _site() -> Site:
    """:func:`store_site` (the heat pump reaches about 450 kW of heat) with 1 %/h of
    standing loss."""
    return store_site({"store_loss_pct_per_h": 1.0})


def _day(demand_w: float | np.ndarray = 150_000.0, start: pd.Timestamp = START) -> pd.DataFrame:
    return make_forecast(
        STEPS,
        start=start,
        heat_demand_th_w=demand_w,
        it_power_w=400_000.0,
        waste_heat_temp_c=35.0,
        price_import_eur_per_mwh=np.linspace(200.0, 210.0, STEPS),
        price_export_eur_per_mwh=30.0,
    )


def _reach(site: Site) -> float:
    """The heat pump's most heat per step [W] on :func:`_day`'s inputs."""
    planner = Planner(site)
    data = planner.problem(State.from_site(site), _day(), START, SolveOptions()).data
    return float(heat_pump_reach_th_w(data.cop, data.hp_max_el_w, data.waste_heat_w)[0])


def test_reserve_is_the_shortfall_after_the_horizon_the_heat_pump_cannot_fill() -> None:
    """Demand 200 kW above the heat pump's reach for 10 h after the horizon: the store must
    hold 2 MWh then (plus the standing loss); the same 10 h preceded by 5 h where the heat
    pump has 200 kW to spare need about 1 MWh less (its surplus, less the loss of holding
    the rest 5 h longer); demand within reach needs nothing."""
    site = _site()
    reach = _reach(site)
    assert 400_000 < reach < 500_000
    after = _day(start=START + pd.Timedelta(hours=24)).iloc[:40]  # 10 h
    short = after.assign(heat_demand_th_w=reach + 200_000.0)
    need = store_reserve_wh(site, short)
    assert 2.0e6 < need < 2.0e6 / 0.99**10 + 1.0
    mixed = _day(start=START + pd.Timedelta(hours=24)).iloc[:60]
    mixed["heat_demand_th_w"] = np.r_[np.full(20, reach - 200_000.0), np.full(40, reach + 2e5)]
    # Held 5 h longer (standing loss), less what the 5 h of surplus put in.
    spare = sum(50_000.0 / 0.99 ** (k / 4) for k in range(1, 21))
    assert store_reserve_wh(site, mixed) == pytest.approx(need / 0.99**5 - spare, rel=1e-9)
    assert store_reserve_wh(site, after.assign(heat_demand_th_w=reach - 1.0)) == 0.0
    huge = after.assign(heat_demand_th_w=reach + 900_000.0)
    assert store_reserve_wh(site, huge) == site.heat.store_capacity_wh  # capped


@pytest.mark.parametrize("builder", ["direct", "pyomo"])
def test_plan_keeps_the_reserve_at_its_end_with_heat_pump_heat(builder: str) -> None:
    """Prices drift up slowly over the day, so without a reserve the plan has no reason to
    charge the store (it ends near its start, 1 MWh). With a 3 MWh reserve it ends with at
    least 3 MWh, made by the heat pump: the boiler stays off."""
    site = _site()
    options = SolveOptions(builder=builder)  # type: ignore[arg-type]
    state = State.from_site(site)
    plain = Planner(site, options=options).plan(state, _day(), START)
    assert plain.frame.store_wh.iloc[-1] < 1.1e6
    kept = dataclasses.replace(state, store_reserve_wh=3e6)
    plan = Planner(site, options=options).plan(kept, _day(), START)
    assert plan.info.status == "optimal"
    assert plan.frame.store_wh.iloc[-1] >= 3e6 - 1.0
    assert float(plan.frame.boiler_th_w.max()) < 1.0
    check_plan(plan, site, kept)


def test_a_reserve_out_of_reach_is_kept_as_far_as_the_heat_pump_reaches() -> None:
    """Demand 440 kW leaves the heat pump a few kW to spare: a 5 MWh reserve cannot be
    reached with its heat; the plan stays optimal, fills what the heat pump can and does
    not fire the boiler to fill the store."""
    site = _site()
    reach = _reach(site)
    forecast = _day(reach - 20_000.0)
    state = dataclasses.replace(State.from_site(site), store_reserve_wh=5e6)
    plan = Planner(site).plan(state, forecast, START)
    assert plan.info.status == "optimal"
    end = float(plan.frame.store_wh.iloc[-1])
    stored = 1e6 * 0.99**24 + 20_000.0 * sum(0.99 ** (k / 4) for k in range(STEPS)) / 4
    assert 0.95 * stored < end < 1.1 * stored
    assert float(plan.frame.boiler_th_w.max()) < 1.0
    check_plan(plan, site, state)


@pytest.mark.parametrize("builder", ["direct", "pyomo"])
def test_under_a_grid_limit_the_reserve_never_fires_the_boiler(builder: str) -> None:
    """A 30 kW import limit holds the heat pump to a third of its rating: the 150 kW demand
    needs the boiler anyway, and the 4 MWh reserve cannot be made with heat-pump heat. The
    plan stays optimal and burns no more gas than without the reserve: boiler heat made now
    to hold for later would cost the same heat again plus the standing loss (a hard floor
    at the end burnt 5.0 MWh here against 0.9)."""
    site = store_site({"store_loss_pct_per_h": 1.0}, import_limit_w=30_000.0)
    options = SolveOptions(builder=builder)  # type: ignore[arg-type]
    state = State.from_site(site)
    plain = Planner(site, options=options).plan(state, _day(), START)
    kept = dataclasses.replace(state, store_reserve_wh=4e6)
    plan = Planner(site, options=options).plan(kept, _day(), START)
    assert plan.info.status == "optimal" and not plan.info.slacks
    gas = float(plan.frame.boiler_th_w.sum())
    assert gas <= float(plain.frame.boiler_th_w.sum()) + 1.0
    assert float(plan.frame.grid_import_w.max()) <= 30_000.0 + 1e-6
    check_plan(plan, site, kept)
