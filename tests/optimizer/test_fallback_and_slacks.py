"""The plan never fails: forced failures fall back to rules; broken demands use slacks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.inputs import State
from optimizer.params import SolveOptions
from optimizer.planner import Planner
from optimizer.synthetic import synthetic_forecast, synthetic_site
from tests.optimizer.checks import check_plan, pv_available
from tests.optimizer.conftest import START, battery, heat_devices, make_forecast, make_site, pv


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        (SolveOptions(time_limit_s=0.0), "time limit"),
        (SolveOptions(force_failure=True), "forced solver failure"),
    ],
    ids=["time-limit-0", "forced-failure"],
)
def test_fallback_plan_is_safe(options: SolveOptions, reason: str) -> None:
    site = synthetic_site(8, 8, feeders=2, seed=5)
    site = site.model_copy(
        update={"optimizer": site.optimizer.model_copy(update={"horizon_h": 12})}
    )
    forecast = synthetic_forecast(site, START, 60, seed=5)
    state = State.from_site(site)
    plan = Planner(site).plan(state, forecast, START, options)
    assert plan.info.status == "fallback"
    assert plan.info.fallback_reason is not None and reason in plan.info.fallback_reason
    assert plan.info.objective_eur is None
    check_plan(plan, site, state, pv_available(site, forecast, plan.frame.index))
    # Self-consumption: PV is not curtailed while the export cap is not binding.
    f = plan.frame
    free = f.grid_export_w < f.export_cap_w - 1
    assert np.allclose(f.pv_w[free], f.pv_available_w[free])


def test_planner_recovers_after_a_failure() -> None:
    site = synthetic_site(4, 4, seed=6)
    site = site.model_copy(update={"optimizer": site.optimizer.model_copy(update={"horizon_h": 6})})
    forecast = synthetic_forecast(site, START, 30, seed=6)
    planner = Planner(site)
    assert (
        planner.plan(
            State.from_site(site), forecast, START, SolveOptions(force_failure=True)
        ).info.status
        == "fallback"
    )
    assert planner.plan(State.from_site(site), forecast, START).info.status == "optimal"


def test_fallback_respects_export_cap_and_heat_limits() -> None:
    site = make_site(
        [
            pv("p", 50_000, min_limit_pct=10),
            battery("b", 10_000, 5_000, soc_initial_pct=95),
            *heat_devices(max_el_w=20_000),
        ],
        heat={
            "boiler_max_th_w": 50_000.0,
            "store_capacity_wh": 100_000.0,
            "store_max_discharge_th_w": 20_000.0,
        },
        export_limit_w=10_000,
        horizon_h=3,
    )
    forecast = make_forecast(
        12, pv_w_per_kwp=900.0, heat_demand_th_w=200_000.0, waste_heat_temp_c=35.0
    )
    state = State.from_site(site)
    plan = Planner(site).plan(state, forecast, START, SolveOptions(force_failure=True))
    f = plan.frame
    check_plan(plan, site, state, pv_available(site, forecast, f.index))
    assert (f.grid_export_w <= 10_000 + 1e-6).all()
    assert (f.pv_w < f.pv_available_w).all()  # curtailed for the cap
    assert (f.unmet_heat_th_w > 0).all()  # 200 kW demand, far more than all sources
    assert "unmet_heat_wh" in plan.info.slacks


def test_unmet_heat_slack_is_reported() -> None:
    site = make_site(heat_devices(max_el_w=10_000), heat={"boiler_max_th_w": 20_000.0}, horizon_h=2)
    forecast = make_forecast(8, heat_demand_th_w=100_000.0, waste_heat_temp_c=35.0)
    state = State.from_site(site)
    plan = Planner(site).plan(state, forecast, START)
    assert plan.info.status == "optimal"
    f = plan.frame
    expected = 100_000 - 20_000 - f.heat_pump_th_w
    np.testing.assert_allclose(f.unmet_heat_th_w, expected, rtol=1e-6)
    assert plan.info.slacks["unmet_heat_wh"] == pytest.approx(expected.sum() * 0.25, rel=1e-6)
    check_plan(plan, site, state)


def test_operator_caps_conflicting_with_must_run_use_slacks() -> None:
    """Import cap 0 with base load and must-cool: unserved; export cap 0 with PV minimum
    limits above the load: spilled. Both reported, neither infeasible."""
    site = make_site(
        [pv("p", 20_000, min_limit_pct=20), *heat_devices(max_el_w=10_000, it_power_w=1_000)],
        horizon_h=2,
    )
    steps = 8
    day = np.arange(steps) >= 4
    forecast = make_forecast(
        steps,
        load_w=np.where(day, 1_000.0, 5_000.0),
        pv_w_per_kwp=np.where(day, 1000.0, 0.0),
        waste_heat_temp_c=35.0,
        it_power_w=1_000.0,
        import_limit_w=np.where(day, np.nan, 0.0),
        export_limit_w=np.where(day, 0.0, np.nan),
    )
    state = State.from_site(site)
    plan = Planner(site).plan(state, forecast, START)
    assert plan.info.status == "optimal"
    f = plan.frame
    assert (f.unserved_el_w[~day] > 0).all()
    assert (f.spilled_el_w[day] > 0).all()
    # PV cannot go below 20 % of 20 kW = 4 kW; the load and the dry coolers take ~1 kW.
    np.testing.assert_allclose(f.pv_w[day], 4_000.0, rtol=1e-6)
    np.testing.assert_allclose(
        f.spilled_el_w[day], 4_000.0 - 1_000.0 - f.dry_cooler_el_w[day], rtol=1e-6
    )
    assert {"unserved_el_wh", "spilled_el_wh"} <= set(plan.info.slacks)
    check_plan(plan, site, state, pv_available(site, forecast, f.index))


def test_battery_below_its_window_climbs_back() -> None:
    site = make_site([battery("b", 10_000, 2_000, soc_min_pct=30, soc_initial_pct=5)], horizon_h=6)
    forecast = make_forecast(24, load_w=500.0, price_import_eur_per_mwh=300.0)
    state = State(battery_soc_wh={"b": 500.0})
    plan = Planner(site).plan(state, forecast, START)
    assert plan.info.status == "optimal"
    soc = plan.frame["b.soc_wh"].to_numpy()
    # Back at full power (2 kW * 0.95 * 0.25 h = 475 Wh a step) although import is dear.
    np.testing.assert_allclose(soc[:5], 500 + 475 * np.arange(1, 6), rtol=1e-6)
    assert (soc[6:] >= 3_000 - 1e-3).all()
    assert plan.info.slacks["soc_window_wh"] > 0
    check_plan(plan, site, state)


def test_soc_outside_capacity_is_clamped_with_a_warning() -> None:
    site = make_site([battery("b", 10_000, 5_000)], horizon_h=2)
    plan = Planner(site).plan(State(battery_soc_wh={"b": 12_000.0}), make_forecast(8), START)
    assert plan.info.status == "optimal"
    assert any("clamped" in w for w in plan.info.warnings)
    assert plan.frame["b.soc_wh"].max() <= 10_000 + 1e-6


def test_forecast_without_a_required_column_is_an_error() -> None:
    from optimizer.inputs import ForecastError

    site = make_site([battery("b")], horizon_h=1)
    with pytest.raises(ForecastError, match="load_w"):
        Planner(site).plan(State.from_site(site), make_forecast(4).drop(columns="load_w"), START)


def test_now_between_steps_plans_from_the_step_containing_it() -> None:
    site = make_site([battery("b")], horizon_h=1)
    plan = Planner(site).plan(
        State.from_site(site), make_forecast(8), START + pd.Timedelta(minutes=20)
    )
    assert plan.frame.index[0] == START + pd.Timedelta(minutes=15)
