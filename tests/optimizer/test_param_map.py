"""New values pushed through the compiled parameter map give the LP a fresh build would load."""

from __future__ import annotations

from typing import Any

import highspy
import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest

from optimizer.data import ModelData
from optimizer.inputs import State
from optimizer.model import build_model, param_items, update_params
from optimizer.param_map import NotCompilable, ParamMap
from optimizer.params import OptimizerParams, SolveOptions
from optimizer.planner import Planner
from optimizer.solve import PersistentHighs
from optimizer.synthetic import synthetic_forecast, synthetic_site

START = pd.Timestamp("2024-03-04T00:00Z")
STEP = pd.Timedelta(minutes=15)


def _lp(solver: PersistentHighs) -> dict[str, Any]:
    """The LP HiGHS holds: bounds, costs, offset and the non-zero matrix entries."""
    lp = solver._opt._solver_model.getLp()
    a = lp.a_matrix_
    start, index, value = (np.asarray(x) for x in (a.start_, a.index_, a.value_))
    rowwise = a.format_ != highspy.MatrixFormat.kColwise
    matrix = {
        ((outer, int(index[k])) if rowwise else (int(index[k]), outer)): float(value[k])
        for outer in range(len(start) - 1)
        for k in range(start[outer], start[outer + 1])
        if value[k] != 0.0
    }
    return {
        "col_lower": np.asarray(lp.col_lower_),
        "col_upper": np.asarray(lp.col_upper_),
        "row_lower": np.asarray(lp.row_lower_),
        "row_upper": np.asarray(lp.row_upper_),
        "cost": np.asarray(lp.col_cost_),
        "offset": lp.offset_,
        "matrix": matrix,
    }


def _assert_same_lp(got: dict[str, Any], want: dict[str, Any]) -> None:
    for key in ("col_lower", "col_upper", "row_lower", "row_upper", "cost"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-12, err_msg=key)
    assert got["offset"] == pytest.approx(want["offset"], abs=1e-12)
    assert got["matrix"].keys() == want["matrix"].keys()
    for pos, v in want["matrix"].items():
        assert got["matrix"][pos] == pytest.approx(v, rel=1e-12, abs=1e-12), pos


def _data(milp: bool) -> tuple[ModelData, ModelData]:
    """Two plans of one structure: a later start, a new forecast, moved states."""
    site = synthetic_site(6, 40, feeders=1, seed=3)
    site = site.model_copy(update={"optimizer": site.optimizer.model_copy(update={"horizon_h": 6})})
    planner = Planner(site, OptimizerParams(taper="full_power", soc_groups=4))
    opts = SolveOptions(milp=milp)
    state = State.from_site(site)
    first = planner.problem(state, synthetic_forecast(site, START, 40, seed=1), START, opts)
    moved = State(
        battery_soc_wh={k: v * 0.7 for k, v in state.battery_soc_wh.items()},
        store_wh=1.0e6,
    )
    later = planner.problem(moved, synthetic_forecast(site, START, 40, seed=2), START + STEP, opts)
    assert first.data.structure_key() == later.data.structure_key()
    return first.data, later.data


@pytest.mark.parametrize("milp", [False, True])
def test_refresh_loads_the_lp_of_a_fresh_build(milp: bool) -> None:
    first, later = _data(milp)
    assert first.bat_charge_taper is not None  # bilinear right-hand sides are covered
    model = build_model(first)
    solver = PersistentHighs()
    solver.load(model, param_items(model))
    assert solver._map is not None
    sent = solver.refresh(update_params(model, later))
    assert sent > 0

    fresh_model = build_model(later)
    fresh = PersistentHighs()
    fresh.load(fresh_model, param_items(fresh_model))
    _assert_same_lp(_lp(solver), _lp(fresh))
    # The Params hold the new values too, so the Pyomo model describes the LP in HiGHS.
    for got, want in zip(param_items(model), param_items(fresh_model), strict=True):
        assert pyo.value(got) == pytest.approx(pyo.value(want), rel=1e-15)
    # Nothing changed: nothing is sent.
    assert solver.refresh(update_params(model, later)) == 0


def test_unchanged_values_send_nothing_and_one_change_sends_its_entries() -> None:
    first, _ = _data(milp=False)
    model = build_model(first)
    solver = PersistentHighs()
    solver.load(model, param_items(model))
    assert solver.refresh(update_params(model, first)) == 0
    first.bat_discharge_max_w[0, 3] *= 0.5  # one unit-step's bound, as the split rounds do
    assert solver.refresh(update_params(model, first)) == 1


def test_expressions_outside_the_map_fall_back_to_pyomo() -> None:
    m = pyo.ConcreteModel()
    m.p = pyo.Param(mutable=True, initialize=2.0)
    m.q = pyo.Param(mutable=True, initialize=4.0)
    m.x = pyo.Var(bounds=(0.0, 10.0))
    m.c = pyo.Constraint(expr=m.x <= m.q / m.p)  # a Param in a denominator
    m.o = pyo.Objective(expr=-m.x)
    solver = PersistentHighs()
    solver.load(m, [m.p, m.q])
    assert solver._map is None
    with pytest.raises(NotCompilable):
        ParamMap(solver._opt, [m.p, m.q])
    m.q.set_value(8.0)
    assert solver.refresh(np.array([2.0, 8.0])) == -1
    result = solver.solve(SolveOptions(), 10.0, milp=False)
    assert result.objective == pytest.approx(-4.0)


def test_the_map_handles_products_sums_negations_and_clamps() -> None:
    m = pyo.ConcreteModel()
    m.a = pyo.Param(mutable=True, initialize=2.0)
    m.b = pyo.Param(mutable=True, initialize=3.0)
    m.x = pyo.Var(bounds=(0.0, m.a))  # clamped at the domain bound 0 from below
    m.y = pyo.Var(within=pyo.NonNegativeReals, bounds=(-m.a, None))
    m.c = pyo.Constraint(expr=(m.a * m.b - 1) * m.x + m.y >= -(m.a * m.b) / 2 + 7)
    m.o = pyo.Objective(expr=m.b * m.x + (m.a + 1) * m.y)
    solver = PersistentHighs()
    solver.load(m, [m.a, m.b])
    assert solver._map is not None
    m.a.set_value(-1.0)
    m.b.set_value(5.0)
    solver.refresh(np.array([-1.0, 5.0]))
    fresh = PersistentHighs()
    fresh.load(m, [m.a, m.b])
    _assert_same_lp(_lp(solver), _lp(fresh))
