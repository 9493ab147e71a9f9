"""The thermal store's terminal value: heat priced at the margin the LP itself sees."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.data import heat_cost_eur_per_mwh
from optimizer.inputs import State
from optimizer.params import SolveOptions
from optimizer.planner import Planner
from tests.optimizer.checks import check_plan
from tests.optimizer.conftest import START, heat_devices, make_forecast, make_site, pv
from vpp.core.site import Site

STEPS = 96  # 24 h


def _site(store_initial_pct: float = 20.0) -> Site:
    return make_site(
        [*heat_devices(max_el_w=100_000, it_power_w=400_000), pv("pv", 600_000)],
        heat={
            "boiler_max_th_w": 1e6,
            "gas_price_eur_per_mwh": 45.0,
            "store_capacity_wh": 5e6,
            "store_initial_pct": store_initial_pct,
            "store_max_charge_th_w": 1e6,
            "store_max_discharge_th_w": 1e6,
        },
        economics={"co2_price_eur_per_t": 80.0},
        horizon_h=24,
    )


def _day(import_price: float = 200.0, export_price: float = 30.0) -> pd.DataFrame:
    """Sun from 08:00 to 16:00 (about 470 kW from the 600 kW inverter) over a 100 kW load;
    heat demand 150 kW; import ``import_price`` (with 400 g/kWh), export ``export_price``."""
    hour = np.arange(STEPS) / 4
    sun = (hour >= 8) & (hour < 16)
    return make_forecast(
        STEPS,
        pv_w_per_kwp=np.where(sun, 800.0, 0.0),
        load_w=100_000.0,
        heat_demand_th_w=150_000.0,
        it_power_w=400_000.0,
        waste_heat_temp_c=35.0,
        price_import_eur_per_mwh=import_price,
        price_export_eur_per_mwh=export_price,
        co2_g_per_kwh=400.0,
    )


def test_heat_cost_is_the_lps_margin_per_step() -> None:
    """Per step: electricity at the export price where PV covers the load and the dry
    coolers, else at the import price with its CO2; times the share of it the dry coolers
    do not save, ``1 - k_dry (COP - 1)``, over the COP; the boiler where cheaper."""
    site = _site()
    planner = Planner(site)
    data = planner.problem(State.from_site(site), _day(), START, SolveOptions()).data
    cost = heat_cost_eur_per_mwh(data)
    cop = data.cop
    saved = 1.0 - 0.05 * (cop - 1.0)
    sun = data.pv_avail_w.sum(axis=0) > 0
    night_el = 200.0 + 80.0 * 400.0 / 1e3
    np.testing.assert_allclose(cost[sun], 30.0 * saved[sun] / cop[sun], rtol=1e-12)
    np.testing.assert_allclose(cost[~sun], night_el * saved[~sun] / cop[~sun], rtol=1e-12)
    boiler = (45.0 + 80.0 * site.economics.gas_co2_kg_per_mwh / 1e3) / 0.92
    assert cost.max() < boiler
    # The store's terminal value is the quarter quantile of these costs.
    assert data.store_terminal_eur_per_mwh == pytest.approx(float(np.quantile(cost, 0.25)))


def test_heat_cost_takes_the_boiler_where_the_heat_pump_is_dearer_or_off() -> None:
    site = _site()
    forecast = _day(import_price=2_000.0)
    # A grid operator's cap holds the heat pump at 0 over the first two hours.
    forecast["hp.cap_w"] = np.where(np.arange(STEPS) < 8, 0.0, np.nan)
    data = Planner(site).problem(State.from_site(site), forecast, START, SolveOptions()).data
    cost = heat_cost_eur_per_mwh(data)
    boiler = data.boiler_eur_per_mwh_th()
    sun = data.pv_avail_w.sum(axis=0) > 0
    assert (data.hp_max_el_w[:8] == 0).all()
    np.testing.assert_allclose(cost[~sun], boiler)
    assert (cost[sun] < boiler).all()


def test_the_plan_does_not_buy_heat_at_night_to_hold_it_at_the_horizons_end() -> None:
    """Heat made from the midday surplus costs the export price it gives up, about 5 EUR/MWh;
    heat from imports at night about 38 EUR/MWh. Valued at import cost / COP (about
    47 EUR/MWh, without the dry coolers' saving and ignoring the surplus), stored heat at
    the horizon's end was worth more than night heat costs, and the plan ran the heat pump
    all night to end with a full store. Valued at the LP's own margin, the store is charged
    from the surplus only, and the heat pump covers no more than the demand at night."""
    site = _site()
    forecast = _day()
    state = State.from_site(site)
    plan = Planner(site).plan(state, forecast, START)
    assert plan.info.status == "optimal"
    f = plan.frame
    hour = np.arange(STEPS) / 4
    night = (hour < 8) | (hour >= 16)
    charged_at_night = (f.store_th_w[night] < -1.0).sum()
    assert charged_at_night == 0, f"store charged from imports in {charged_at_night} steps"
    assert (f.heat_pump_th_w[night] <= f.heat_demand_th_w[night] + 1.0).all()
    # The store is filled from the surplus, not left empty: the evening's heat comes from it.
    assert f.store_th_w[hour >= 16].max() > 100_000
    assert f.store_wh.iloc[-1] < 0.5 * 5e6
    check_plan(plan, site, state)
