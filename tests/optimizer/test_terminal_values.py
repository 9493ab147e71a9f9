"""The thermal store's terminal value: heat priced as the LP itself prices it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.data import heat_cost_eur_per_mwh
from optimizer.inputs import State
from optimizer.params import SolveOptions
from optimizer.planner import Planner
from tests.optimizer.checks import check_plan
from tests.optimizer.conftest import START, make_forecast, store_site
from vpp.core.site import Site

STEPS = 96  # 24 h
CO2_G_PER_KWH = 400.0
CO2_EUR_PER_T = 80.0


def _site() -> Site:
    """:func:`store_site` with CO2 priced."""
    return store_site(economics={"co2_price_eur_per_t": CO2_EUR_PER_T})


def _day(import_price: np.ndarray | float) -> pd.DataFrame:
    """Heat demand 150 kW, waste heat at 35 degC, import at ``import_price`` with
    400 g/kWh of CO2."""
    return make_forecast(
        STEPS,
        heat_demand_th_w=150_000.0,
        it_power_w=400_000.0,
        waste_heat_temp_c=35.0,
        price_import_eur_per_mwh=import_price,
        price_export_eur_per_mwh=30.0,
        co2_g_per_kwh=CO2_G_PER_KWH,
    )


def _data(site: Site, forecast: pd.DataFrame) -> object:
    return Planner(site).problem(State.from_site(site), forecast, START, SolveOptions()).data


def test_heat_cost_is_the_lps_margin_per_step() -> None:
    """Heat pump heat: the import price with its CO2, times the share of the electricity the
    dry coolers do not save, ``1 - k_dry (COP - 1)``, over the COP; the boiler where it is
    cheaper or the heat pump is held off. The store's terminal value is the quarter
    quantile of these costs."""
    site = _site()
    price = np.where(np.arange(STEPS) < 16, 2_000.0, 200.0)  # dear first four hours
    forecast = _day(price)
    # A grid operator's cap holds the heat pump at 0 over the first two hours.
    forecast["hp.cap_w"] = np.where(np.arange(STEPS) < 8, 0.0, np.nan)
    data = _data(site, forecast)
    cost = heat_cost_eur_per_mwh(data)  # type: ignore[arg-type]
    cop = data.cop  # type: ignore[attr-defined]
    assert 4.5 < cop.min() <= cop.max() < 5.5
    el = price + CO2_EUR_PER_T * CO2_G_PER_KWH / 1e3
    heat_pump = el * (1.0 - 0.05 * (cop - 1.0)) / cop
    boiler = (45.0 + CO2_EUR_PER_T * site.economics.gas_co2_kg_per_mwh / 1e3) / 0.92
    np.testing.assert_allclose(cost[:16], boiler, rtol=1e-12)  # held off, then dearer
    np.testing.assert_allclose(cost[16:], heat_pump[16:], rtol=1e-12)
    assert heat_pump[16:].max() < boiler
    assert data.store_terminal_eur_per_mwh == pytest.approx(  # type: ignore[attr-defined]
        float(np.quantile(cost, 0.25)), rel=1e-12
    )


def test_the_plan_does_not_buy_heat_to_hold_it_at_the_horizons_end() -> None:
    """Import prices drift from 200 to 210 EUR/MWh over the day: no hour is much cheaper than
    another, so stored heat is worth no more than it costs to make when it is needed, and
    the plan has no reason to charge the store. Valued at import cost / COP (without the
    dry coolers' saving, a quarter above what the LP pays for the heat), heat left in the
    store at the horizon's end was worth more than it cost at any hour, and the plan ran
    the heat pump flat out to end with the store full."""
    site = _site()
    price = np.linspace(200.0, 210.0, STEPS)
    state = State.from_site(site)
    plan = Planner(site).plan(state, _day(price), START)
    assert plan.info.status == "optimal"
    f = plan.frame
    charging = int((f.store_th_w < -1.0).sum())
    assert charging == 0, f"store charged in {charging} steps"
    assert f.store_wh.iloc[-1] <= 1e6 + 1.0
    # The heat pump covers the demand the store does not, the boiler nothing.
    assert float(f.boiler_th_w.max()) < 1.0
    np.testing.assert_allclose(
        f.heat_pump_th_w + f.store_th_w, f.heat_demand_th_w, rtol=1e-6, atol=1.0
    )
    check_plan(plan, site, state)
