"""The bound (vpp.replay.bound) is a true lower bound: every operation of the replay plant
is a feasible point of its LP with the same cost, the certified dual bound lies below the
cost of any operation, and the LP is the optimiser's own model."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimizer.model import build_model
from vpp.core.site import Site
from vpp.replay import plant as k
from vpp.replay.baselines import NO_CONTROL, SELF_CONSUMPTION, run_rule_strategy
from vpp.replay.bound import Bound, limits_w
from vpp.replay.kpi import strategy_kpis
from vpp.replay.layout import PlantInputs, PlantParams, plant_inputs, plant_params
from vpp.replay.runner import day_index
from vpp.replay.trace import Trace

from .conftest import SAMPLE_DAYS

#: Quarter hours of the short stretch the property test runs.
STEPS = 24
#: A plant operation and its LP point agree to this much [model units: kW, kWh].
FEASIBLE = 1e-6


def _inputs(site: Site, data: pd.DataFrame, day: date, steps: int | None = None) -> PlantInputs:
    index = day_index(site, day)
    return plant_inputs(site, data.loc[index[:steps] if steps else index])


def _check_operation(bound: Bound, trace: Trace, cost_eur: float) -> float:
    """The operation is a feasible LP point costing what the KPIs say; returns its cost."""
    x = bound.point(trace)
    rows, cols = bound.residuals(x)
    assert rows <= FEASIBLE and cols <= FEASIBLE, (rows, cols)
    assert float(bound.cost @ x) == pytest.approx(cost_eur, rel=1e-9, abs=1e-9)
    return cost_eur


@pytest.mark.parametrize("day", SAMPLE_DAYS)
def test_rule_baselines_are_points_of_the_lp_and_cost_at_least_the_bound(
    site: Site, data: pd.DataFrame, day: date
) -> None:
    params, inputs = plant_params(site), _inputs(site, data, day)
    bound = Bound(site, params, inputs)
    for name in (NO_CONTROL, SELF_CONSUMPTION):
        trace = run_rule_strategy(name, params, inputs)
        kpis = strategy_kpis(trace, site, params, inputs)
        assert kpis["unmet_heat_mwh"] == 0.0
        cost = _check_operation(bound, trace, kpis["cost_eur"])
        solve = bound.solve(trace.bat_soc_wh[-1], float(trace.out[-1, k.O_STORE]))
        assert solve.lower_eur <= cost
        assert solve.cost_eur <= cost + solve.gap_eur
        if day == SAMPLE_DAYS[0]:  # not a bound that cannot fail: in spring the rules
            assert cost - solve.cost_eur > 1.0  # leave money on the table (in January not)
        # The certificate is tight: the solver's optimum is within a cent of it.
        assert solve.gap_eur < 0.01


def test_the_bound_held_to_the_grid_limits_lies_between_the_bound_and_the_operation(
    site: Site, data: pd.DataFrame
) -> None:
    """The plant has no grid limit and the bound none either; held to the site's limits,
    widened to an operation's own exchange where it went past them, the bound still lies
    below that operation (it is a point of the LP), above the bound, and keeps to the
    caps. With an import limit at half the bound's peak import it costs more."""
    day = SAMPLE_DAYS[0]
    params, inputs = plant_params(site), _inputs(site, data, day)
    trace = run_rule_strategy(SELF_CONSUMPTION, params, inputs)
    cost = strategy_kpis(trace, site, params, inputs)["cost_eur"]
    end = (trace.bat_soc_wh[-1], float(trace.out[-1, k.O_STORE]))
    free = Bound(site, params, inputs).solve(*end)
    peak = float(np.max(free.trace.out[:, k.O_GRID]))
    assert peak > 1000.0, "the bound imports"
    grid = site.grid.model_copy(update={"import_limit_w": 0.5 * peak})
    tight = site.model_copy(update={"grid": grid})
    exchange = trace.out[:, k.O_GRID]
    assert np.max(exchange) > 0.5 * peak, "the rule goes past the limit: caps widened"
    imp, exp = limits_w(tight, exchange)
    held = Bound(tight, params, inputs, grid_w=(imp, exp))
    _check_operation(held, trace, cost)
    solve = held.solve(*end)
    assert solve.lower_eur <= cost
    assert free.cost_eur - free.gap_eur <= solve.cost_eur
    assert solve.cost_eur > free.cost_eur + 0.5  # the limit binds: the bound pays for it
    flows = solve.trace.out[:, k.O_GRID]
    assert np.all(flows <= imp + 1e-3) and np.all(-flows <= exp + 1e-3)
    assert np.all(flows <= np.maximum(0.5 * peak, exchange) + 1.0 + 1e-3)


def test_bound_flows_cost_what_the_kpis_count(site: Site, data: pd.DataFrame) -> None:
    """The bound's own flows, read as a plant trace, give its cost through the KPI code and
    end where they were asked to."""
    params, inputs = plant_params(site), _inputs(site, data, SAMPLE_DAYS[0])
    bound = Bound(site, params, inputs)
    end_soc = params.soc0_wh * 0.5 + params.bat[:, k.B_SOC_MAX] * 0.5
    solve = bound.solve(end_soc, 0.7 * site.heat.store_capacity_wh)
    kpis = strategy_kpis(solve.trace, site, params, inputs)
    assert kpis["cost_eur"] == pytest.approx(solve.cost_eur, rel=1e-9)
    assert solve.step_cost_eur.sum() == pytest.approx(solve.cost_eur, rel=1e-9)
    np.testing.assert_allclose(solve.trace.bat_soc_wh[-1], end_soc, rtol=1e-7)
    assert solve.trace.out[-1, k.O_STORE] == pytest.approx(0.7 * site.heat.store_capacity_wh)
    _check_operation(bound, solve.trace, kpis["cost_eur"])


def test_the_lp_is_the_optimisers_pyomo_model(site: Site, data: pd.DataFrame) -> None:
    """The same data through the optimiser's Pyomo model (optimizer.model) with the same end
    state and closed slacks reaches the same optimum."""
    params, inputs = plant_params(site), _inputs(site, data, SAMPLE_DAYS[1])
    bound = Bound(site, params, inputs)
    end_soc = params.soc0_wh.copy()
    end_store = 0.4 * site.heat.store_capacity_wh
    solve = bound.solve(end_soc, end_store)
    m = build_model(bound.data)
    last = bound.data.steps - 1
    for b in m.B:
        m.bat_soc[b, last].fix(end_soc[b] * 1e-3)
    m.store_e[last].fix(end_store * 1e-3)
    for t in m.T:
        m.el_unserved[t].setub(0.0)
        m.el_spilled[t].setub(0.0)
    result = pyo.SolverFactory("appsi_highs").solve(m)
    assert str(result.solver.termination_condition) == "optimal"
    assert pyo.value(m.objective) == pytest.approx(solve.cost_eur, rel=1e-7)


@st.composite
def operations(draw: st.DrawFn, n_bat: int, n_pv: int) -> np.ndarray:
    """Setpoints per step: battery W (> 0 discharge) as a share of the rating, PV cap as a
    share of the rating, heat pump W as a share of its maximum."""
    shares = st.floats(-1.0, 1.0, allow_nan=False)
    caps = st.floats(0.0, 1.2, allow_nan=False)
    rows = [
        draw(st.lists(shares, min_size=n_bat, max_size=n_bat))
        + draw(st.lists(caps, min_size=n_pv, max_size=n_pv))
        + [draw(st.floats(-0.1, 1.3, allow_nan=False))]
        for _ in range(STEPS)
    ]
    return np.array(rows, dtype=float)


def _run(site: Site, params: PlantParams, inputs: PlantInputs, ops: np.ndarray) -> Trace:
    """The plant under the setpoints ``ops``, PV caps never below the inverter's minimum (the
    safety layer's rule)."""
    nb, nv = len(params.battery_ids), len(params.pv_ids)
    trace = Trace.empty(inputs.index, nb, nv, False)
    rated = params.pv_rated_w
    minimum = np.array([p.min_limit_pct / 100 * p.rated_w for p in site.pv])
    soc, store = params.soc0_wh.copy(), np.array([params.store0_wh])
    for t in range(len(inputs.index)):
        bat = ops[t, :nb] * np.where(
            ops[t, :nb] > 0, params.bat[:, k.B_MAX_DIS], params.bat[:, k.B_MAX_CH]
        )
        pv = np.maximum(ops[t, nb : nb + nv] * rated, minimum)
        hp = float(ops[t, -1] * params.heat[k.H_HP_MAX])
        k.plant_step(
            params.bat, rated, params.heat, inputs.pv_avail_w[t], inputs.inp[t],
            bat, pv, hp, soc, store, trace.bat_w[t], trace.pv_w[t], trace.out[t],
        )  # fmt: skip
        trace.bat_ch_w[t] = np.maximum(-trace.bat_w[t], 0.0)
        trace.bat_soc_wh[t] = soc
    return trace


@pytest.fixture(scope="module")
def stretch(site: Site, data: pd.DataFrame) -> tuple[PlantParams, PlantInputs, Bound]:
    params = plant_params(site)
    inputs = _inputs(site, data, SAMPLE_DAYS[0], STEPS + 28)
    inputs = PlantInputs(
        index=inputs.index[28:],
        inp=inputs.inp[28:],
        pv_avail_w=inputs.pv_avail_w[28:],
        pv_w_per_kwp=inputs.pv_w_per_kwp[28:],
        pv_peak_w=inputs.pv_peak_w,
    )  # a spring morning: PV rising, heat demand, prices moving
    return params, inputs, Bound(site, params, inputs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.data_too_large])
@given(data=st.data())
def test_no_operation_of_the_plant_beats_the_bound(
    site: Site, stretch: tuple[PlantParams, PlantInputs, Bound], data: st.DataObject
) -> None:
    """Any setpoints the safety layer lets through, run on the plant, cost at least the
    bound ending where they ended."""
    params, inputs, bound = stretch
    ops = data.draw(operations(len(params.battery_ids), len(params.pv_ids)))
    trace = _run(site, params, inputs, ops)
    kpis = strategy_kpis(trace, site, params, inputs)
    cost = _check_operation(bound, trace, kpis["cost_eur"])
    solve = bound.solve(trace.bat_soc_wh[-1], float(trace.out[-1, k.O_STORE]))
    assert solve.lower_eur <= cost + 1e-9 * abs(cost)
