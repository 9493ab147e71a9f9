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
from optimizer.reserve import reserve_tiers, store_reserve_wh, store_reserves_wh
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
    # Several demands over the same rows at once: each as on its own.
    demands = [f["heat_demand_th_w"].to_numpy() for f in (short, huge)]
    assert store_reserves_wh(site, after, demands) == [need, site.heat.store_capacity_wh]


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
    kept = dataclasses.replace(state, store_reserve=((3e6, 1.0),))
    plan = Planner(site, options=options).plan(kept, _day(), START)
    assert plan.info.status == "optimal"
    assert plan.frame.store_wh.iloc[-1] >= 3e6 - 1.0
    assert float(plan.frame.boiler_th_w.max()) < 1.0
    check_plan(plan, site, kept)


def test_tiers_are_the_energy_between_quantiles_with_the_chance_it_is_needed() -> None:
    """Reserves 0, 2, 2, 5 and 4.9 MWh for the heat demand's 0.1, 0.3, 0.5, 0.7 and 0.9
    quantiles: tiers of 0, 2, 0, 3 and 0 MWh (a level below the one before counts as
    equal), each needed with the chance between its quantile and the one before."""
    tiers = reserve_tiers([0.0, 2e6, 2e6, 5e6, 4.9e6], [0.1, 0.3, 0.5, 0.7, 0.9])
    assert [w for w, _ in tiers] == [0.0, 2e6, 0.0, 3e6, 0.0]
    assert [p for _, p in tiers] == pytest.approx([0.95, 0.8, 0.6, 0.4, 0.2])
    assert reserve_tiers([1e6], [0.5]) == ((1e6, 0.75),)
    with pytest.raises(ValueError, match="quantiles"):
        reserve_tiers([0.0, 1.0], [0.5, 0.5])
    with pytest.raises(ValueError, match="levels"):
        reserve_tiers([0.0], [0.5, 0.9])


@pytest.mark.parametrize("builder", ["direct", "pyomo"])
def test_a_tier_is_kept_where_its_chance_pays_for_the_heat(builder: str) -> None:
    """The heat pump's heat costs ~41 EUR/MWh here, the boiler's 49, the store's terminal
    value 33. A first tier of 2 MWh needed for certain is kept. The 3 MWh above it (to the
    5 MWh capacity) are kept with a chance of 0.6 (worth ~42 EUR/MWh): the plan ends with
    5 MWh; with a chance of 0.1 (~35 EUR/MWh) they are not: it ends with 2 MWh. The
    boiler never runs."""
    site = _site()
    options = SolveOptions(builder=builder)  # type: ignore[arg-type]
    state = State.from_site(site)
    ends = {}
    for chance in (0.6, 0.1):
        tiers = dataclasses.replace(state, store_reserve=((2e6, 1.0), (3e6, chance)))
        plan = Planner(site, options=options).plan(tiers, _day(), START)
        assert plan.info.status == "optimal"
        assert float(plan.frame.boiler_th_w.max()) < 1.0
        check_plan(plan, site, tiers)
        ends[chance] = float(plan.frame.store_wh.iloc[-1])
    assert ends[0.6] == pytest.approx(5e6, abs=1.0)
    assert ends[0.1] == pytest.approx(2e6, abs=1.0)


def test_a_reserve_out_of_reach_is_kept_as_far_as_the_heat_pump_reaches() -> None:
    """Demand 440 kW leaves the heat pump a few kW to spare: a 5 MWh reserve cannot be
    reached with its heat; the plan stays optimal, fills what the heat pump can and does
    not fire the boiler to fill the store."""
    site = _site()
    reach = _reach(site)
    forecast = _day(reach - 20_000.0)
    state = dataclasses.replace(State.from_site(site), store_reserve=((5e6, 1.0),))
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
    kept = dataclasses.replace(state, store_reserve=((4e6, 1.0),))
    plan = Planner(site, options=options).plan(kept, _day(), START)
    assert plan.info.status == "optimal" and not plan.info.slacks
    gas = float(plan.frame.boiler_th_w.sum())
    assert gas <= float(plain.frame.boiler_th_w.sum()) + 1.0
    assert float(plan.frame.grid_import_w.max()) <= 30_000.0 + 1e-6
    check_plan(plan, site, kept)
