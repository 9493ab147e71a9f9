"""The store's reserve against the heat forecast's error where the heat pump cannot catch up
(:func:`optimizer.data.set_heat_risk`)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from optimizer.data import heat_pump_reach_th_w, heat_risk_reach_th_w
from optimizer.inputs import State
from optimizer.params import OptimizerParams, SolveOptions
from optimizer.plan import Plan
from optimizer.planner import Planner
from tests.optimizer.checks import check_plan
from tests.optimizer.conftest import START, make_forecast, store_site
from vpp.core.site import Site

STEPS = 96  # 24 h
SPARE = 32  # the first 8 h: the heat pump has heat to spare
ERROR = 0.05


def _site(**site: object) -> Site:
    return store_site({"store_loss_pct_per_h": 1.0}, **site)


def _reach(site: Site) -> float:
    data = Planner(site).problem(State.from_site(site), _day(0.0), START, SolveOptions()).data
    return float(heat_pump_reach_th_w(data.cop, data.hp_max_el_w, data.waste_heat_w)[0])


def _day(reach: float) -> pd.DataFrame:
    """8 h of cheap power with 150 kW of heat demand, then 16 h of dear power with demand
    100 kW above what the heat pump can give: the store covers 1.6 MWh of the stretch."""
    demand = np.r_[np.full(SPARE, 150_000.0), np.full(STEPS - SPARE, reach + 100_000.0)]
    price = np.r_[np.full(SPARE, 40.0), np.full(STEPS - SPARE, 200.0)]
    return make_forecast(
        STEPS,
        heat_demand_th_w=demand,
        it_power_w=400_000.0,
        waste_heat_temp_c=35.0,
        price_import_eur_per_mwh=price,
        price_export_eur_per_mwh=30.0,
    )


def _boiler_when_demand_is_higher(plan: Plan, reach: np.ndarray, error: float) -> float:
    """Boiler heat [Wh] the plan needs when the heat demand is ``error`` above its forecast
    all day: the heat pump gives what it has to spare above the plan (the extra demand,
    then what the store lacks against the plan, as the next plans would), the store the
    rest, and where the store is empty the boiler."""
    frame = plan.frame
    keep, dt = 0.99**0.25, 0.25
    extra = error * frame.heat_demand_th_w.to_numpy() * dt
    made = frame.heat_pump_th_w.to_numpy() + frame.boiler_th_w.to_numpy()
    spare = np.maximum(reach - made, 0.0) * dt
    planned = frame.store_wh.to_numpy()
    departure, boiler = 0.0, 0.0  # Wh, the store's content against the plan's (<= 0)
    for t in range(len(frame)):
        departure = keep * departure - extra[t]
        departure = min(0.0, departure + spare[t])
        if planned[t] + departure < 0.0:
            boiler -= planned[t] + departure
            departure = -planned[t]
    return boiler


@pytest.mark.parametrize("builder", ["direct", "pyomo"])
def test_the_plan_covers_the_error_it_was_told_of(builder: str) -> None:
    """8 cheap hours, then 16 dear ones in which the demand exceeds what the heat pump can
    give. Planned without the level error, a demand 5 % above the forecast all day needs
    the boiler for some 0.2 MWh; planned with it, the store and the heat pump's spare heat
    cover it (the plan holds the store fuller, or leaves the heat pump room where it runs).
    The boiler stays off in both plans, and the error costs a little more electricity."""
    site = _site()
    forecast = _day(_reach(site))
    options = SolveOptions(builder=builder)  # type: ignore[arg-type]
    state = State.from_site(site)
    risky = dataclasses.replace(state, heat_level_error=ERROR)
    data = Planner(site).problem(risky, forecast, START, options).data
    assert data.heat_risk
    reach = heat_risk_reach_th_w(data)
    plain = Planner(site, options=options).plan(state, forecast, START)
    plan = Planner(site, options=options).plan(risky, forecast, START)
    assert plain.info.status == plan.info.status == "optimal"
    for p in (plain, plan):
        assert float(p.frame.boiler_th_w.max()) < 1.0
    assert _boiler_when_demand_is_higher(plain, reach, ERROR) > 0.1e6
    assert _boiler_when_demand_is_higher(plan, reach, ERROR) < 1e3
    assert _boiler_when_demand_is_higher(plan, reach, 2 * ERROR) > 0.1e6  # it was told 5 %
    assert plan.frame.cost_import_eur.sum() > plain.frame.cost_import_eur.sum()
    check_plan(plan, site, risky)


@pytest.mark.parametrize("builder", ["direct", "pyomo"])
def test_the_reserve_never_fires_the_boiler(builder: str) -> None:
    """A 30 kW import limit holds the heat pump to a third of its rating: the boiler runs
    anyway, and heat to hold against the error could only be the boiler's. The plan stays
    optimal without slack and burns no more gas than without the error."""
    site = _site(import_limit_w=30_000.0)
    forecast = _day(_reach(_site()))
    options = SolveOptions(builder=builder)  # type: ignore[arg-type]
    state = State.from_site(site)
    plain = Planner(site, options=options).plan(state, forecast, START)
    risky = dataclasses.replace(state, heat_level_error=ERROR)
    plan = Planner(site, options=options).plan(risky, forecast, START)
    assert plan.info.status == "optimal" and not plan.info.slacks
    assert float(plan.frame.boiler_th_w.sum()) <= float(plain.frame.boiler_th_w.sum()) + 1.0
    check_plan(plan, site, risky)


@pytest.mark.parametrize("error", [0.02, ERROR, 0.2])
def test_the_store_covers_the_deficit_at_every_step(error: float) -> None:
    """The deficit recomputed from the plan (the error against the heat pump's spare heat,
    carried with the standing loss, never below nothing) is covered by the store's content
    at every step while it can be; a 20 % error cannot be covered with heat-pump heat and
    the plan ends short of it rather than burn gas."""
    site = _site()
    forecast = _day(_reach(site))
    state = dataclasses.replace(State.from_site(site), heat_level_error=error)
    data = Planner(site).problem(state, forecast, START, SolveOptions()).data
    reach = heat_risk_reach_th_w(data)
    plan = Planner(site).plan(state, forecast, START)
    frame = plan.frame
    spare = reach - frame.heat_pump_th_w.to_numpy() - frame.boiler_th_w.to_numpy()
    deficit, worst = 0.0, 0.0
    for t in range(len(frame)):
        deficit = max(0.0, data.store_keep * deficit + (data.heat_error_w[t] - spare[t]) * 0.25)
        worst = max(worst, deficit - float(frame.store_wh.iloc[t]))
    assert float(frame.boiler_th_w.max()) < 1.0
    if error < 0.1:
        assert worst < 1.0
    else:
        assert worst > 0.1e6


def test_below_its_floor_the_error_adds_nothing_to_the_lp() -> None:
    """A level error under ``heat_error_min`` (a model the network follows to the bit) is
    none: the LP is the one without, row for row, and so is the plan."""
    site = _site()
    forecast = _day(_reach(site))
    params = OptimizerParams()
    state = State.from_site(site)
    tiny = dataclasses.replace(state, heat_level_error=params.heat_error_min / 2)
    a = Planner(site, params).problem(state, forecast, START, SolveOptions()).data
    b = Planner(site, params).problem(tiny, forecast, START, SolveOptions()).data
    assert not a.heat_risk and not b.heat_risk and a.structure_key() == b.structure_key()
    pa = Planner(site, params).plan(state, forecast, START)
    pb = Planner(site, params).plan(tiny, forecast, START)
    pd.testing.assert_frame_equal(pa.frame, pb.frame)
