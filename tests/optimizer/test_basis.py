"""Starting bases of the direct build: accepted by HiGHS, same optimum, fewer iterations.

A new model starts from the batteries-idle basis, a re-plan some steps later from the last
basis moved by those steps (:mod:`optimizer.basis`). Neither may change the optimum: each is
compared with a solve of the same LP from HiGHS's own start (presolve, slack basis).
"""

from __future__ import annotations

import dataclasses

import highspy
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.backend import DirectBackend
from optimizer.basis import (
    BASIC,
    LOWER,
    UPPER,
    Basis,
    from_highs,
    idle_basis,
    read_basis,
    shifted_basis,
)
from optimizer.data import ModelData
from optimizer.direct import build_lp
from optimizer.inputs import State
from optimizer.params import OptimizerParams, SolveOptions
from optimizer.planner import Planner
from optimizer.synthetic import synthetic_forecast, synthetic_site

START = pd.Timestamp("2024-03-04T00:00Z")
STEP = pd.Timedelta(minutes=15)
OPTS = SolveOptions()


def _site(n_pv: int, n_bat: int, horizon_h: int = 24, heat: bool = True, seed: int = 1):  # type: ignore[no-untyped-def]
    site = synthetic_site(n_pv, n_bat, feeders=2, seed=seed, heat=heat)
    settings_ = site.optimizer.model_copy(update={"horizon_h": horizon_h})
    return site.model_copy(update={"optimizer": settings_})


def _cold(data: ModelData) -> tuple[float, int]:
    """Objective and iterations from HiGHS's own start."""
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.passModel(build_lp(data).highs_lp())
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    info = h.getInfo()
    return float(info.objective_function_value), int(info.simplex_iteration_count)


@pytest.mark.parametrize(
    ("n_pv", "n_bat", "heat", "taper"),
    [
        (6, 10, True, "none"),
        (10, 20, False, "none"),
        (8, 60, True, "full_power"),
        (0, 12, True, "none"),
        (12, 0, True, "none"),
    ],
)
def test_the_idle_start_is_a_basis_with_the_cold_optimum(
    n_pv: int, n_bat: int, heat: bool, taper: str
) -> None:
    site = _site(n_pv, n_bat, horizon_h=12, heat=heat)
    planner = Planner(site, OptimizerParams(taper=taper))  # type: ignore[arg-type]
    data = planner.problem(
        State.from_site(site), synthetic_forecast(site, START, 60, seed=2), START, OPTS
    ).data
    lp = build_lp(data)
    idle = idle_basis(lp.n_col, lp.n_row, lp.blocks, lp.row_blocks)
    assert idle.n_basic() == lp.n_row
    backend = DirectBackend(data)
    assert backend._h.getBasis().valid  # HiGHS took it
    got = backend.solve(OPTS, 60.0, milp=False).objective
    want, _ = _cold(data)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    ("revise", "taper"),
    [
        ("price_import_eur_per_mwh", "none"),
        ("waste_heat_temp_c", "none"),
        ("price_import_eur_per_mwh", "full_power"),
    ],
    ids=["new prices", "new COP (a new matrix)", "taper rows"],
)
def test_a_replan_a_step_later_starts_from_the_shifted_basis(revise: str, taper: str) -> None:
    """Same optimum as from scratch, in a fraction of the iterations of a new model."""
    site = _site(50, 50)
    state = State.from_site(site)
    forecast = synthetic_forecast(site, START, 104, seed=1)
    # One unit per cluster, so that units are large enough for taper lines.
    groups = {"soc_groups": 1, "soc_groups_min": 1} if taper != "none" else {}
    planner = Planner(site, OptimizerParams(taper=taper, **groups))  # type: ignore[arg-type]
    first = planner.plan(state, forecast, START)
    row = first.frame.iloc[0]
    carried = dataclasses.replace(
        state, battery_soc_wh={b.id: float(row[f"{b.id}.soc_wh"]) for b in site.batteries}
    )
    revised = forecast.copy()
    revised[revise] += np.random.default_rng(5).normal(0, 2, len(revised))
    before = planner.problem(state, forecast, START, OPTS).data
    later = planner.problem(carried, revised, START + STEP, OPTS).data
    assert (later.bat_charge_taper is not None) == (taper != "none")

    backend = DirectBackend(before)
    backend.solve(OPTS, 60.0, milp=False)
    backend.refresh(later)
    again = backend.solve(OPTS, 60.0, milp=False)
    fresh = DirectBackend(later).solve(OPTS, 60.0, milp=False)
    cold, cold_iterations = _cold(later)
    assert again.objective == pytest.approx(cold, rel=1e-9, abs=1e-9)
    assert fresh.objective == pytest.approx(cold, rel=1e-9, abs=1e-9)
    assert again.iterations < fresh.iterations / 3
    if taper == "none":  # with taper rows the idle start is about as far as HiGHS's own
        assert fresh.iterations < cold_iterations / 2


def test_a_plan_at_an_earlier_step_starts_idle_as_a_new_model_does() -> None:
    site = _site(10, 20, horizon_h=12)
    state = State.from_site(site)
    forecast = synthetic_forecast(site, START - 4 * STEP, 60, seed=1)
    planner = Planner(site)
    later = planner.problem(state, forecast, START, OPTS).data
    earlier = planner.problem(state, forecast, START - STEP, OPTS).data
    backend = DirectBackend(later)
    backend.solve(OPTS, 60.0, milp=False)
    backend.refresh(earlier)
    got = backend.solve(OPTS, 60.0, milp=False)
    want = DirectBackend(earlier).solve(OPTS, 60.0, milp=False)
    assert (got.objective, got.iterations) == (want.objective, want.iterations)


@st.composite
def _bases(draw: st.DrawFn) -> tuple[Basis, Basis, int, int]:
    """A horizon, an idle-like start (square per step) and any basis of the same shape."""
    steps = draw(st.integers(2, 8))
    col_families = draw(st.integers(1, 4))
    row_families = draw(st.integers(0, col_families))
    n_col, n_row = col_families * steps, row_families * steps
    idle_col = np.full(n_col, LOWER, dtype=np.int8)
    idle_col[:n_row] = BASIC
    idle = Basis(idle_col, np.full(n_row, LOWER, dtype=np.int8))
    statuses = draw(
        st.lists(st.sampled_from([LOWER, UPPER]), min_size=n_col + n_row, max_size=n_col + n_row)
    )
    flat = np.array(statuses, dtype=np.int8)
    basic = draw(st.permutations(range(n_col + n_row)))[:n_row]
    flat[list(basic)] = BASIC
    last = Basis(flat[:n_col], flat[n_col:])
    k = draw(st.integers(1, steps - 1))
    return last, idle, steps, k


@settings(max_examples=300, deadline=None)
@given(_bases())
def test_a_shifted_basis_has_one_basic_per_row(case: tuple[Basis, Basis, int, int]) -> None:
    last, idle, steps, k = case
    out = shifted_basis(last, idle, steps, k)
    assert out.n_basic() == len(last.row)
    if out is not idle:  # the moved part is the last basis, k steps on
        keep_col = np.arange(len(out.col)) % steps < steps - k
        moved = last.col.reshape(-1, steps)[:, k:].ravel()
        assert np.array_equal(out.col[keep_col], moved)


def test_a_shift_outside_the_horizon_is_refused() -> None:
    idle = Basis(np.array([BASIC, LOWER], dtype=np.int8), np.array([LOWER, LOWER], dtype=np.int8))
    with pytest.raises(ValueError, match="shift of 2 steps in a horizon of 2"):
        shifted_basis(idle, idle, 2, 2)


def test_the_slack_start_is_highs_own() -> None:
    """The baseline the benchmark compares with: no basis set, HiGHS starts as it would."""
    site = _site(10, 20, horizon_h=12)
    data = (
        Planner(site)
        .problem(State.from_site(site), synthetic_forecast(site, START, 60, seed=1), START, OPTS)
        .data
    )
    backend = DirectBackend(data, start="slack")
    assert not backend._h.getBasis().valid
    got = backend.solve(OPTS, 60.0, milp=False)
    assert (got.objective, got.iterations) == _cold(data)


@pytest.mark.parametrize("start", ["idle", "slack"])
def test_the_basis_read_from_the_solution_is_highs_basis(start: str) -> None:
    site = _site(10, 20, horizon_h=12)
    data = (
        Planner(site)
        .problem(State.from_site(site), synthetic_forecast(site, START, 60, seed=1), START, OPTS)
        .data
    )
    backend = DirectBackend(data, start=start)  # type: ignore[arg-type]
    backend.solve(OPTS, 60.0, milp=False)
    model = backend._model
    got = read_basis(backend._h, backend._primal, model.col_upper, model.row_upper)
    assert got is not None
    want = from_highs(backend._h.getBasis())
    fixed_col = model.col_lower == model.col_upper
    fixed_row = model.row_lower == model.row_upper
    assert np.array_equal(got.col[~fixed_col], want.col[~fixed_col])
    assert np.array_equal(got.row[~fixed_row], want.row[~fixed_row])
    assert np.array_equal(got.col == BASIC, want.col == BASIC)
    assert np.array_equal(got.row == BASIC, want.row == BASIC)
