"""Cases whose optimal plan is known by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from optimizer.inputs import State
from optimizer.params import SolveOptions
from optimizer.planner import Planner
from tests.optimizer.checks import check_plan, pv_available
from tests.optimizer.conftest import START, battery, heat_devices, make_forecast, make_site, pv

STEPS = 96  # 24 h of quarter hours


@pytest.mark.parametrize(
    "options",
    [SolveOptions(), SolveOptions(mode="device"), SolveOptions(milp=True)],
    ids=["lp", "device", "milp"],
)
def test_one_battery_two_price_day(options: SolveOptions) -> None:
    """Charge fully while cheap, discharge fully while dear; value known in closed form.

    10 kWh battery, 5 kW, eta 0.9 each way, empty at the start, window 0-100 %, no wear.
    Price 50 EUR/MWh for 12 h, then 150 EUR/MWh (import = export, no fees, no CO2).
    Filling 10 kWh draws 10/0.9 kWh at 50; emptying delivers 9 kWh at 150:
    cost = 10/0.9 * 0.05 - 9 * 0.15 EUR. Ending empty leaves no terminal value.
    """
    site = make_site(
        [
            battery(
                "b",
                10_000,
                5_000,
                charge_efficiency=0.9,
                discharge_efficiency=0.9,
                soc_min_pct=0,
                soc_max_pct=100,
                soc_initial_pct=0,
                wear_cost_eur_per_mwh=0,
            )
        ]
    )
    price = np.where(np.arange(STEPS) < 48, 50.0, 150.0)
    forecast = make_forecast(STEPS, price_import_eur_per_mwh=price, price_export_eur_per_mwh=price)
    state = State.from_site(site)
    plan = Planner(site).plan(state, forecast, START, options)

    expected = 10 / 0.9 * 50 / 1000 - 9 * 150 / 1000
    assert plan.info.status == "optimal"
    assert plan.info.objective_eur == pytest.approx(expected, rel=1e-6)
    assert plan.info.cost_eur["objective_eur"] == pytest.approx(expected, rel=1e-6)
    soc = plan.frame["b.soc_wh"]
    assert soc.iloc[47] == pytest.approx(10_000, rel=1e-6)
    assert soc.iloc[-1] == pytest.approx(0, abs=1e-3)
    check_plan(plan, site, state)


def test_negative_prices_charge_and_curtail_before_exporting() -> None:
    """Midday: export pays -40 EUR/MWh and import pays -10 EUR/MWh (negative day-ahead).

    The battery charges at full power, the site imports (being paid to) and PV is curtailed
    to the inverters' minimum limits; nothing is exported while exporting costs money.
    """
    site = make_site(
        [
            pv("pv1", 20_000, min_limit_pct=10),
            pv("pv2", 10_000, min_limit_pct=5),
            battery("b", 40_000, 8_000, soc_initial_pct=20),
        ],
        horizon_h=12,
    )
    steps = 48
    midday = (np.arange(steps) >= 16) & (np.arange(steps) < 24)
    forecast = make_forecast(
        steps,
        pv_w_per_kwp=np.where(midday, 800.0, 0.0),
        load_w=2_000.0,
        price_import_eur_per_mwh=np.where(midday, -10.0, 250.0),
        price_export_eur_per_mwh=np.where(midday, -40.0, 80.0),
    )
    state = State.from_site(site)
    plan = Planner(site).plan(state, forecast, START)
    f = plan.frame[midday]
    assert (f.grid_export_w < 1e-3).all()
    assert_allclose(f.battery_w, -8_000, rtol=1e-6)
    assert_allclose(f.pv_w, 20_000 * 0.10 + 10_000 * 0.05, rtol=1e-6)
    assert (f.grid_import_w > 0).all()
    assert_allclose(plan.frame["pv1.pv_limit_w"][midday], 2_000, rtol=1e-6)
    index = plan.frame.index
    check_plan(plan, site, state, pv_available(site, forecast, index))


def _heat_site(waste_heat_temp_c: float, gas: float) -> tuple[object, pd.DataFrame]:
    site = make_site(
        heat_devices(max_el_w=50_000, it_power_w=400_000),
        heat={"boiler_max_th_w": 1e6, "gas_price_eur_per_mwh": gas, "store_capacity_wh": 0.0},
        horizon_h=6,
    )
    forecast = make_forecast(
        24,
        heat_demand_th_w=300_000.0,
        waste_heat_temp_c=waste_heat_temp_c,
        it_power_w=400_000.0,
        price_import_eur_per_mwh=120.0,
    )
    return site, forecast


def test_heat_pump_runs_before_boiler_with_warm_source() -> None:
    """35 degC waste heat, COP ~4.9: heat pump heat ~25 EUR/MWh beats boiler ~49 EUR/MWh."""
    site, forecast = _heat_site(35.0, gas=45.0)
    state = State.from_site(site)
    plan = Planner(site).plan(state, forecast, START)
    f = plan.frame
    cop = float(f.heat_pump_cop.iloc[0])
    assert 4.5 < cop < 5.5
    # The heat pump runs flat out (50 kW el -> ~245 kW heat) and the boiler only tops up.
    assert_allclose(f.heat_pump_el_w, 50_000, rtol=1e-6)
    assert_allclose(f.boiler_th_w, 300_000 - 50_000 * cop, rtol=1e-6)
    check_plan(plan, site, state)


def test_boiler_wins_with_cold_source_and_cheap_gas() -> None:
    """12 degC waste heat (COP ~3.1) and gas at 10 EUR/MWh: the heat pump stays off."""
    site, forecast = _heat_site(12.0, gas=10.0)
    state = State.from_site(site)
    plan = Planner(site).plan(state, forecast, START)
    f = plan.frame
    assert 2.5 < float(f.heat_pump_cop.iloc[0]) < 3.5
    assert (f.heat_pump_el_w.abs() < 1e-3).all()
    assert_allclose(f.boiler_th_w, 300_000, rtol=1e-6)
    # All waste heat goes to the dry coolers, which draw power.
    assert_allclose(f.dry_cooler_th_w, 400_000 * 0.9, rtol=1e-6)
    check_plan(plan, site, state)


def test_burning_energy_at_negative_prices_is_detected_and_reported() -> None:
    """A full battery, import paid at 200 EUR/MWh: the LP charges and discharges at once to
    burn energy through its losses. A device cannot, so the plan reports it and keeps the
    devices' net setpoints; with binaries (MILP) it does not happen."""
    site = make_site([battery("b", 10_000, 5_000, soc_initial_pct=90)], horizon_h=2)
    forecast = make_forecast(8, price_import_eur_per_mwh=-200.0, price_export_eur_per_mwh=-250.0)
    state = State.from_site(site)
    lp = Planner(site).plan(state, forecast, START)
    assert any("charge and discharge at once" in w for w in lp.info.warnings)
    check_plan(lp, site, state)
    milp = Planner(site).plan(state, forecast, START, SolveOptions(milp=True))
    assert not any("at once" in w for w in milp.info.warnings)
    assert milp.info.objective_eur == pytest.approx(milp.info.cost_eur["objective_eur"], rel=1e-6)
    # What the devices do is the same either way: fill up to the window's top, then idle.
    assert lp.info.cost_eur["objective_eur"] == pytest.approx(milp.info.objective_eur, rel=1e-6)
    check_plan(milp, site, state)
