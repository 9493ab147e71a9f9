"""Balances, recursions, limits and cost of whole plans on a synthetic district."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimizer.cost import cost_summary
from optimizer.inputs import State
from optimizer.params import SolveOptions
from optimizer.planner import Planner
from optimizer.synthetic import synthetic_forecast, synthetic_site
from tests.optimizer.checks import check_plan, pv_available

START = pd.Timestamp("2024-03-04T00:00Z")


@pytest.fixture(scope="module")
def district() -> tuple[object, pd.DataFrame]:
    site = synthetic_site(12, 12, feeders=2, seed=3)
    site = site.model_copy(
        update={"optimizer": site.optimizer.model_copy(update={"horizon_h": 24})}
    )
    return site, synthetic_forecast(site, START, 100, seed=3)


@pytest.mark.parametrize(
    "options",
    [SolveOptions(), SolveOptions(mode="device"), SolveOptions(milp=True)],
    ids=["aggregated", "device", "milp"],
)
def test_balances_limits_and_cost(district: tuple, options: SolveOptions) -> None:
    site, forecast = district
    state = State.from_site(site)
    plan = Planner(site).plan(state, forecast, START, options)
    assert plan.info.status == "optimal", plan.info.fallback_reason
    check_plan(plan, site, state, pv_available(site, forecast, plan.frame.index))
    # The solver's objective equals the cost recomputed from the plan's own flows.
    assert plan.info.cost_eur["objective_eur"] == pytest.approx(plan.info.objective_eur, rel=1e-6)
    parts = plan.frame[
        [
            "cost_import_eur",
            "revenue_export_eur",
            "cost_gas_eur",
            "cost_co2_eur",
            "cost_wear_eur",
            "penalty_eur",
        ]
    ].sum()
    dt = 0.25
    f = plan.frame
    assert parts["cost_import_eur"] == pytest.approx(
        (f.price_import_eur_per_mwh * f.grid_import_w).sum() * dt / 1e6
    )
    assert parts["cost_gas_eur"] == pytest.approx(
        f.boiler_th_w.sum()
        * dt
        / site.heat.boiler_efficiency
        / 1e6
        * site.heat.gas_price_eur_per_mwh
    )
    assert plan.units.filter(like="shortfall").to_numpy().max() <= 1.0


def test_milp_respects_minimum_part_load(district: tuple) -> None:
    site, forecast = district
    plan = Planner(site).plan(State.from_site(site), forecast, START, SolveOptions(milp=True))
    el = plan.frame.heat_pump_el_w.to_numpy()
    hp = site.heat_pump
    floor = hp.max_el_w * hp.min_part_load_pct / 100
    assert ((el < 1e-3) | (el >= floor - 1e-3)).all()


def test_cost_summary_matches_frame(district: tuple) -> None:
    site, forecast = district
    planner = Planner(site)
    plan = planner.plan(State.from_site(site), forecast, START)
    problem = planner.problem(State.from_site(site), forecast, START, SolveOptions())
    again = cost_summary(plan.frame, problem.data, problem.batteries)
    assert again == pytest.approx(plan.info.cost_eur)


def test_offline_devices_are_left_out(district: tuple) -> None:
    site, forecast = district
    state = State(offline=frozenset({"bat-00001", "pv-00002", "heat-pump"}))
    plan = Planner(site).plan(state, forecast, START)
    assert "bat-00001.battery_w" not in plan.frame.columns
    assert "pv-00002.pv_w" not in plan.frame.columns
    assert np.allclose(plan.frame.heat_pump_el_w, 0.0)
    check_plan(plan, site, state, pv_available(site, forecast, plan.frame.index))
