"""The LP written as arrays for highspy has the same optimum as the Pyomo model
(``test_direct_equivalence.py`` compares the two row by row)."""

from __future__ import annotations

import pandas as pd
import pytest

from optimizer.direct import solve_direct
from optimizer.inputs import State
from optimizer.params import OptimizerParams, SolveOptions
from optimizer.planner import Planner
from optimizer.synthetic import synthetic_forecast, synthetic_site

START = pd.Timestamp("2024-03-04T00:00Z")


@pytest.mark.parametrize("mode", ["aggregated", "device"])
def test_direct_lp_matches_pyomo(mode: str) -> None:
    site = synthetic_site(10, 12, feeders=2, seed=9)
    site = site.model_copy(
        update={"optimizer": site.optimizer.model_copy(update={"horizon_h": 12})}
    )
    state = State.from_site(site)
    forecast = synthetic_forecast(site, START, 60, seed=9)
    # Without split rounds the planner's objective is that of the model as first built.
    planner = Planner(site, OptimizerParams(split_rounds=0))
    options = SolveOptions(mode=mode, builder="pyomo")  # type: ignore[arg-type]
    plan = planner.plan(state, forecast, START, options)
    problem = planner.problem(state, forecast, START, options)
    direct = solve_direct(problem.data)
    assert direct.objective_eur == pytest.approx(plan.info.objective_eur, rel=1e-7)
    assert direct.n_variables == plan.info.n_variables
    assert direct.n_constraints == plan.info.n_constraints
