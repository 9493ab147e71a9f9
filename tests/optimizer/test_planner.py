"""Re-planning with the built model: same answers as a fresh build, less time."""

from __future__ import annotations

import pandas as pd
import pytest

from optimizer.backend import DirectBackend
from optimizer.inputs import State
from optimizer.params import OptimizerParams, SolveOptions
from optimizer.planner import Planner, plan, plan_cost, split
from optimizer.synthetic import synthetic_forecast, synthetic_site

START = pd.Timestamp("2024-03-04T00:00Z")


@pytest.fixture(scope="module")
def site() -> object:
    s = synthetic_site(10, 10, feeders=2, seed=8)
    return s.model_copy(update={"optimizer": s.optimizer.model_copy(update={"horizon_h": 12})})


@pytest.mark.parametrize("builder", ["direct", "pyomo"])
def test_replan_reuses_the_model_and_matches_a_fresh_build(site: object, builder: str) -> None:
    options = SolveOptions(builder=builder)  # type: ignore[arg-type]
    planner = Planner(site, options=options)
    state = State.from_site(site)
    first = planner.plan(state, synthetic_forecast(site, START, 80, seed=1), START)
    assert not first.info.reused_model
    later = START + pd.Timedelta(minutes=15)
    forecast = synthetic_forecast(site, START, 80, seed=2)
    socs = {k: v * 0.9 for k, v in state.battery_soc_wh.items()}
    moved = State(battery_soc_wh=socs, store_wh=1.5e6)
    again = planner.plan(moved, forecast, later)
    fresh = plan(site, moved, forecast, later, options)
    assert again.info.reused_model and not fresh.info.reused_model
    assert again.info.objective_eur == pytest.approx(fresh.info.objective_eur, rel=1e-7)
    pd.testing.assert_index_equal(again.frame.index, fresh.frame.index)


def test_structure_change_rebuilds(site: object) -> None:
    planner = Planner(site)
    forecast = synthetic_forecast(site, START, 80, seed=1)
    planner.plan(State.from_site(site), forecast, START)
    every_battery = frozenset(b.id for b in site.batteries)
    gone = planner.plan(State(offline=every_battery), forecast, START)
    assert not gone.info.reused_model
    assert gone.info.n_units["battery"] == 0
    back = planner.plan(State.from_site(site), forecast, START)
    assert not back.info.reused_model and back.info.status == "optimal"


def test_planning_writes_nothing_to_the_console(
    site: object,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """HiGHS runs silently and the process's stdout/stderr are never redirected, so a
    controller's log lines from other threads are not lost while a plan is made."""
    Planner(site).plan(State.from_site(site), synthetic_forecast(site, START, 80, seed=3), START)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def _lp(planner: Planner) -> list[object]:
    assert planner._built is not None
    backend = planner._built.solver
    highs = backend._h if isinstance(backend, DirectBackend) else backend.solver._opt._solver_model
    lp = highs.getLp()
    arrays = (lp.col_cost_, lp.col_lower_, lp.col_upper_, lp.row_lower_, lp.row_upper_)
    matrix = (lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_)
    return [list(a) for a in (*arrays, *matrix)] + [lp.offset_]


@pytest.mark.parametrize("builder", ["direct", "pyomo"])
def test_a_reset_planner_plans_as_a_fresh_one_bit_for_bit(site: object, builder: str) -> None:
    """After other plans (their basis, their tightened bounds), a reset planner loads the
    same LP as a fresh build and returns the same plan, without building the model."""
    opts = SolveOptions(builder=builder)
    used = Planner(site, options=opts)
    state = State.from_site(site)
    for seed in (4, 5, 6):
        used.plan(state, synthetic_forecast(site, START, 80, seed=seed), START)
    later = START + pd.Timedelta(hours=2)
    socs = {k: v * 0.7 for k, v in state.battery_soc_wh.items()}
    moved = State(battery_soc_wh=socs, store_wh=1.2e6)
    forecast = synthetic_forecast(site, START, 80, seed=9)
    fresh = Planner(site, options=opts)
    want = fresh.plan(moved, forecast, later)
    used.reset()
    got = used.plan(moved, forecast, later)
    assert got.info.reused_model and not want.info.reused_model
    pd.testing.assert_frame_equal(got.frame, want.frame, check_exact=True)
    pd.testing.assert_frame_equal(got.units, want.units, check_exact=True)
    assert got.info.objective_eur == want.info.objective_eur
    assert got.info.split_rounds == want.info.split_rounds
    assert _lp(used) == _lp(fresh)
    # Without the reset the same plan starts from the last basis and tightened bounds: the
    # check above is not vacuous when the plans differ in how they got there.
    again = Planner(site, options=opts)
    for seed in (4, 5, 6):
        again.plan(state, synthetic_forecast(site, START, 80, seed=seed), START)
    warm = again.plan(moved, forecast, later)
    assert warm.info.reused_model


def test_the_split_rounds_keep_the_cheapest_plan() -> None:
    """Each round's plan is priced as the table prices it (the grid taking any shortfall);
    the plan kept costs what the cheapest of the plans stopped after 0, 1, ... rounds costs."""
    site = synthetic_site(50, 50, feeders=2, seed=1)
    site = site.model_copy(
        update={"optimizer": site.optimizer.model_copy(update={"horizon_h": 24})}
    )
    state, forecast = State.from_site(site), synthetic_forecast(site, START, 104, seed=1)
    full = Planner(site).plan(state, forecast, START)
    assert full.info.split_rounds >= 2  # three candidate plans at least
    costs = [
        Planner(site, OptimizerParams(split_rounds=k)).plan(state, forecast, START).info.cost_eur
        for k in range(full.info.split_rounds + 1)
    ]
    objectives = [c["objective_eur"] for c in costs]
    kept, cheapest = full.info.split_round_kept, min(objectives)
    # A later round wins a tie within 1e-6 of the cost (fewer devices short of their unit).
    assert cheapest <= full.info.cost_eur["objective_eur"] <= cheapest + 1e-6 * abs(cheapest)
    assert objectives[kept] == full.info.cost_eur["objective_eur"]


def test_a_rounds_price_is_the_plan_tables_objective() -> None:
    """:func:`plan_cost` from arrays equals the objective recomputed from the plan table."""
    site = synthetic_site(50, 50, feeders=2, seed=1)
    site = site.model_copy(
        update={"optimizer": site.optimizer.model_copy(update={"horizon_h": 24})}
    )
    state, forecast = State.from_site(site), synthetic_forecast(site, START, 104, seed=1)
    planner = Planner(site, OptimizerParams(split_rounds=0))
    made = planner.plan(state, forecast, START)
    problem = planner.problem(state, forecast, START, SolveOptions())
    backend = DirectBackend(problem.data)
    backend.solve(SolveOptions(), 60.0, milp=False)
    flows = backend.flows(problem.data)
    dispatch = split(problem, flows, 1.0)
    assert dispatch.bat_shortfall_w.sum() * problem.data.dt_h > 1_000.0  # the grid takes some
    got = plan_cost(problem, flows, dispatch)
    assert got == pytest.approx(made.info.cost_eur["objective_eur"], rel=1e-12)


def test_the_split_rounds_stop_when_a_negligible_share_is_left() -> None:
    """Below ``split_left_share`` of the energy the units move, another round is not run.

    The case is one where the rounds leave a small remainder early (here 3 rounds against 6);
    in others the split ends with nothing left and both stop at the same round."""
    site = synthetic_site(100, 100, feeders=2, seed=1)
    site = site.model_copy(
        update={"optimizer": site.optimizer.model_copy(update={"horizon_h": 24})}
    )
    state, forecast = State.from_site(site), synthetic_forecast(site, START, 104, seed=2)
    short = Planner(site).plan(state, forecast, START)
    full = Planner(site, OptimizerParams(split_left_share=0.0)).plan(state, forecast, START)
    assert short.info.split_rounds < full.info.split_rounds <= OptimizerParams().split_rounds
    units = short.units
    left_wh = units.filter(like="shortfall").to_numpy().sum() * 0.25
    moved_wh = abs(units.filter(like="battery_w").to_numpy()).sum() * 0.25
    assert 0.0 < left_wh <= 1e-5 * moved_wh * 1.001  # the units' plan is their devices' sum
    # What the grid takes instead costs next to nothing.
    cost, exact = short.info.cost_eur["objective_eur"], full.info.cost_eur["objective_eur"]
    assert cost == pytest.approx(exact, rel=1e-5)
