"""The direct highspy build is the Pyomo model's LP: same columns, same rows, same optimum.

The Pyomo model (:mod:`optimizer.model`) is the model of record; the planner solves LPs through
the direct build (:mod:`optimizer.backend`) because it loads in milliseconds. Here both are
loaded for varied sites and inputs and compared entry by entry: each Pyomo variable's column
is matched to the direct build's column of the same family and index; every row, written over
matched columns and normalised in sign, must appear in both with the same coefficients and
bounds; the objectives agree to solver tolerance; and a refreshed direct model equals a fresh
build of the new data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.backend import DirectBackend, PyomoBackend, choose_builder
from optimizer.data import ModelData, set_soc_bounds
from optimizer.direct import build_lp
from optimizer.inputs import State
from optimizer.params import OptimizerParams, SolveOptions
from optimizer.planner import Planner
from optimizer.synthetic import synthetic_forecast, synthetic_site

START = pd.Timestamp("2024-03-04T00:00Z")
STEP = pd.Timedelta(minutes=15)


@dataclass(frozen=True)
class Case:
    name: str
    n_pv: int
    n_bat: int
    feeders: int = 2
    seed: int = 0
    heat: bool = True
    mode: str = "aggregated"
    horizon_h: int = 6
    #: Share of devices offline, start SoC forced below the window for some, operator caps.
    offline: float = 0.0
    below_window: bool = False
    caps: bool = False
    soc_groups: int = 4
    taper: str = "none"
    #: The store's reserve at the plan's end, tiers (Wh thermal, chance it is needed)
    #: (``State.store_reserve``).
    reserve: tuple[tuple[float, float], ...] = ()
    #: The heat forecast's level error (``State.heat_level_error``: the heat-risk reserve).
    heat_error: float = 0.0


CASES = [
    Case("small aggregated", 6, 10, seed=1),
    Case("full-power tapers", 8, 60, feeders=1, seed=3, taper="full_power"),
    Case("share tapers", 8, 60, feeders=2, seed=9, taper="share", soc_groups=3),
    Case("device level", 5, 7, seed=2, mode="device"),
    Case("no heat, offline devices", 10, 20, seed=4, heat=False, offline=0.2),
    Case(
        "start below the window",
        4,
        30,
        feeders=1,
        seed=5,
        below_window=True,
        taper="share",
        soc_groups=2,
    ),
    Case("operator caps, long horizon", 6, 12, seed=6, caps=True, horizon_h=24),
    Case("no batteries", 8, 0, seed=7),
    Case("no PV, fine groups", 0, 40, seed=8, soc_groups=16),
    Case("store reserve", 6, 10, seed=10, reserve=((1e9, 1.0),)),
    Case(
        "reserve tiers",
        6,
        10,
        seed=12,
        reserve=((2e6, 0.95), (0.0, 0.8), (3e6, 0.4), (1e9, 0.06)),
    ),
    Case("heat-risk reserve", 6, 10, seed=11, reserve=((2e6, 1.0),), heat_error=0.3, horizon_h=12),
]


def _inputs(case: Case, seed: int = 0) -> tuple[Planner, State, pd.DataFrame]:
    site = synthetic_site(
        case.n_pv, case.n_bat, feeders=case.feeders, heat=case.heat, seed=case.seed
    )
    settings = site.optimizer.model_copy(update={"horizon_h": case.horizon_h})
    site = site.model_copy(update={"optimizer": settings})
    rng = np.random.default_rng(case.seed)
    state = State.from_site(site)
    socs = dict(state.battery_soc_wh)
    if case.below_window:
        for b in site.batteries[::3]:
            socs[b.id] = 0.02 * b.capacity_wh  # below soc_min_pct: the window is widened
    offline = frozenset(d.id for d in [*site.pv, *site.batteries] if rng.random() < case.offline)
    state = State(
        battery_soc_wh=socs,
        store_wh=state.store_wh,
        offline=offline,
        store_reserve=case.reserve,
        heat_level_error=case.heat_error,
    )
    steps = case.horizon_h * 4 + 8
    forecast = synthetic_forecast(site, START, steps, seed=case.seed + seed)
    if case.caps:
        caps = np.full(steps, np.nan)
        caps[10:20] = 0.3 * site.grid.import_limit_w
        forecast["import_limit_w"] = caps
        forecast["export_limit_w"] = np.where(np.arange(steps) % 7 == 0, 1_000.0, np.nan)
    params = OptimizerParams(soc_groups=case.soc_groups, taper=case.taper)  # type: ignore[arg-type]
    return Planner(site, params), state, forecast


def _data(case: Case, seed: int = 0, at: pd.Timestamp = START) -> ModelData:
    planner, state, forecast = _inputs(case, seed)
    opts = SolveOptions(mode=case.mode)  # type: ignore[arg-type]
    return planner.problem(state, forecast, at, opts).data


def _columns(pyomo: PyomoBackend, direct: DirectBackend) -> np.ndarray:
    """``perm[pyomo column] = direct column``, matched by variable family and index."""
    n = pyomo.n_variables
    perm = np.full(n, -1, dtype=np.int64)
    for name, idx in direct._blocks.items():
        var = getattr(pyomo.model, name)
        cols = pyomo.solver._opt.columns(var)
        assert cols.size == idx.size, name
        perm[cols] = idx.ravel()
    assert (perm >= 0).all(), "a Pyomo variable has no counterpart in the direct build"
    assert np.unique(perm).size == n
    return perm


def _rows(lp: highspy.HighsLp, col_map: np.ndarray | None) -> list[tuple[Any, ...]]:
    """Every row as (columns, coefficients, lower, upper), zeros dropped, over mapped columns,
    with its sign fixed so that the first coefficient is positive; sorted."""
    a = lp.a_matrix_
    start, index, value = (np.asarray(x) for x in (a.start_, a.index_, a.value_))
    rows: dict[int, dict[int, float]] = {}
    colwise = a.format_ == highspy.MatrixFormat.kColwise
    for outer in range(len(start) - 1):
        for k in range(start[outer], start[outer + 1]):
            if value[k] == 0.0:
                continue
            r, c = (int(index[k]), outer) if colwise else (outer, int(index[k]))
            col = int(col_map[c]) if col_map is not None else c
            rows.setdefault(r, {})[col] = float(value[k])
    lower, upper = np.asarray(lp.row_lower_), np.asarray(lp.row_upper_)
    out = []
    for r in range(lp.num_row_):
        entries = sorted(rows.get(r, {}).items())
        cols = tuple(c for c, _ in entries)
        coefs = np.array([v for _, v in entries])
        lo, hi = float(lower[r]), float(upper[r])
        if coefs.size and coefs[0] < 0:
            coefs, lo, hi = -coefs, -hi, -lo
        out.append((cols, tuple(np.round(coefs, 9)), coefs, lo, hi))
    out.sort(key=lambda row: (row[0], row[1], row[3], row[4]))
    return out


def _assert_same_rows(got: list[tuple[Any, ...]], want: list[tuple[Any, ...]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[0] == w[0], "rows over different columns"
        np.testing.assert_allclose(g[2], w[2], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose([g[3], g[4]], [w[3], w[4]], rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_direct_build_is_the_pyomo_lp(case: Case) -> None:
    data = _data(case)
    if case.taper != "none":
        assert data.bat_charge_taper is not None
    pyomo, direct = PyomoBackend(data), DirectBackend(data)
    assert (direct.n_variables, direct.n_constraints) == (pyomo.n_variables, pyomo.n_constraints)
    perm = _columns(pyomo, direct)
    p_lp = pyomo.solver._opt._solver_model.getLp()
    d_lp = direct._h.getLp()
    assert p_lp.offset_ == pytest.approx(d_lp.offset_, abs=1e-12)
    for field in ("col_lower_", "col_upper_", "col_cost_"):
        got = np.asarray(getattr(d_lp, field))[perm]
        np.testing.assert_allclose(got, np.asarray(getattr(p_lp, field)), rtol=1e-12, atol=1e-12)
    _assert_same_rows(_rows(p_lp, perm), _rows(d_lp, None))

    opts = SolveOptions()
    want = pyomo.solve(opts, 60.0, milp=False).objective
    got = direct.solve(opts, 60.0, milp=False).objective
    assert got == pytest.approx(want, rel=1e-7, abs=1e-7)
    # Same flows where the optimum is unique enough to pin them: the exchange totals.
    f_p, f_d = pyomo.flows(data), direct.flows(data)
    energy = data.dt_h * (f_p.grid_import_w - f_p.grid_export_w).sum()
    assert data.dt_h * (f_d.grid_import_w - f_d.grid_export_w).sum() == pytest.approx(
        energy, rel=1e-5, abs=1.0
    )


@pytest.mark.parametrize("case", CASES[:3] + CASES[5:7], ids=lambda c: c.name)
def test_a_refreshed_direct_model_is_a_fresh_build(case: Case) -> None:
    first = _data(case)
    later = _data(case, seed=5, at=START + STEP)
    assert first.structure_key() == later.structure_key()
    direct = DirectBackend(first)
    direct.solve(SolveOptions(), 60.0, milp=False)
    direct.refresh(later)
    held = direct._h.getLp()
    fresh = build_lp(later).highs_lp()
    for field in ("col_lower_", "col_upper_", "col_cost_", "row_lower_", "row_upper_"):
        np.testing.assert_allclose(
            np.asarray(getattr(held, field)), np.asarray(getattr(fresh, field)), rtol=0, atol=0
        )
    _assert_same_rows(_rows(held, None), _rows(fresh, None))
    # Started from the last basis, the optimum is the Pyomo model's for the new data.
    got = direct.solve(SolveOptions(), 60.0, milp=False).objective
    want = PyomoBackend(later).solve(SolveOptions(), 60.0, milp=False).objective
    assert got == pytest.approx(want, rel=1e-7, abs=1e-7)


def test_bounds_and_costs_alone_are_sent_as_changes() -> None:
    """What the split rounds do (a unit-step's bound) and a new price: no new matrix."""
    data = _data(CASES[1])
    assert data.bat_charge_taper is not None
    direct = DirectBackend(data)
    first = direct.solve(SolveOptions(), 60.0, milp=False).objective
    model = direct._model
    data.bat_discharge_max_w[0, 3] *= 0.5
    data.bat_charge_max_w[1, :5] = 0.0
    data.price_import_eur_per_mwh = data.price_import_eur_per_mwh * 1.1
    data.load_w = data.load_w + 5_000.0  # a row bound
    direct.refresh(data)
    assert direct._model is not model
    held, fresh = direct._h.getLp(), build_lp(data).highs_lp()
    for field in ("col_lower_", "col_upper_", "col_cost_", "row_lower_", "row_upper_"):
        np.testing.assert_array_equal(np.asarray(getattr(held, field)), getattr(fresh, field))
    got = direct.solve(SolveOptions(), 60.0, milp=False).objective
    want = PyomoBackend(data).solve(SolveOptions(), 60.0, milp=False).objective
    assert got == pytest.approx(want, rel=1e-7, abs=1e-7)
    assert got > first  # dearer imports, more load, less battery


def _assert_holds_fresh_build(direct: DirectBackend, data: ModelData) -> None:
    held, fresh = direct._h.getLp(), build_lp(data).highs_lp()
    for field in ("col_lower_", "col_upper_", "col_cost_", "row_lower_", "row_upper_"):
        np.testing.assert_array_equal(np.asarray(getattr(held, field)), getattr(fresh, field))
    _assert_same_rows(_rows(held, None), _rows(fresh, None))


#: One solved model per case, refreshed by each example below (as a planner's is).
_HELD: dict[str, tuple[DirectBackend, ModelData]] = {}


def _held(case: Case) -> tuple[DirectBackend, ModelData]:
    if case.name not in _HELD:
        data = _data(case)
        direct = DirectBackend(data)
        direct.solve(SolveOptions(), 60.0, milp=False)
        _HELD[case.name] = direct, data
    return _HELD[case.name]


@settings(max_examples=25, deadline=None)
@given(
    case=st.sampled_from([CASES[0], CASES[5], CASES[8]]),
    cuts=st.lists(
        st.tuples(st.integers(0, 10_000), st.booleans(), st.integers(0, 1_000)),
        min_size=1,
        max_size=12,
    ),
)
def test_a_split_round_s_update_is_a_fresh_build(
    case: Case, cuts: list[tuple[int, bool, int]]
) -> None:
    """What a split round changes (unit-step power limits, hence SoC bounds of a unit
    recovering into its window), sent alone, leaves HiGHS holding the LP a fresh build of
    the new data gives, and the optimum of a solve from scratch."""
    direct, data = _held(case)
    for at, charging, permille in cuts:
        limits = data.bat_charge_max_w if charging else data.bat_discharge_max_w
        u, t = divmod(at % limits.size, limits.shape[1])
        limits[u, t] *= permille / 1_000
    set_soc_bounds(data)
    direct.refresh_battery_limits(data)
    _assert_holds_fresh_build(direct, data)
    got = direct.solve(SolveOptions(), 60.0, milp=False).objective
    want = DirectBackend(data, start="slack").solve(SolveOptions(), 60.0, milp=False).objective
    assert got == pytest.approx(want, rel=1e-7, abs=1e-7)


@settings(max_examples=15, deadline=None)
@given(
    steps=st.integers(0, 3),
    price_eur_per_mwh=st.floats(-30.0, 30.0),
    source_k=st.floats(-4.0, 4.0),
    soc_share=st.floats(0.0, 1.0),
)
def test_a_re_plan_s_update_is_a_fresh_build(
    steps: int, price_eur_per_mwh: float, source_k: float, soc_share: float
) -> None:
    """A re-plan ``steps`` quarter hours later with revised prices, waste-heat temperatures
    (so the COPs in the matrix) and batteries' states: the model updated in place is the
    fresh build of the new data, and its optimum is a fresh solve's."""
    case = CASES[0]
    direct, _ = _held(case)
    planner, state, forecast = _inputs(case)
    forecast["price_import_eur_per_mwh"] += price_eur_per_mwh
    forecast["waste_heat_temp_c"] += source_k
    socs = {
        b.id: b.capacity_wh * (0.1 + 0.8 * ((soc_share + 0.37 * i) % 1.0))
        for i, b in enumerate(planner.site.batteries)
    }
    state = State(battery_soc_wh=socs, store_wh=state.store_wh, offline=state.offline)
    data = planner.problem(state, forecast, START + steps * STEP, SolveOptions()).data
    direct.refresh(data)
    _HELD[case.name] = direct, data
    _assert_holds_fresh_build(direct, data)
    got = direct.solve(SolveOptions(), 60.0, milp=False).objective
    want = DirectBackend(data, start="slack").solve(SolveOptions(), 60.0, milp=False).objective
    assert got == pytest.approx(want, rel=1e-7, abs=1e-7)


def test_the_planner_plans_alike_through_either_builder() -> None:
    """Same optimum as built; after the split rounds, plans of the same cost.

    The rounds tighten the unit-steps the split found short; with several optimal vertices
    the two solvers may start from different ones and tighten different unit-steps, so the
    final costs agree closely but not to the last digit.
    """
    case = CASES[1]
    planner, state, forecast = _inputs(case)

    def plan(builder: str, rounds: int) -> Any:
        params = OptimizerParams(
            soc_groups=case.soc_groups,
            taper=case.taper,  # type: ignore[arg-type]
            split_rounds=rounds,
        )
        options = SolveOptions(builder=builder)  # type: ignore[arg-type]
        return Planner(planner.site, params).plan(state, forecast, START, options)

    p, d = plan("pyomo", 0).info, plan("direct", 0).info
    assert (p.n_variables, p.n_constraints) == (d.n_variables, d.n_constraints)
    assert d.objective_eur == pytest.approx(p.objective_eur, rel=1e-7)
    p, d = plan("pyomo", 10).info, plan("direct", 10).info
    assert d.status == p.status == "optimal"
    assert d.cost_eur["objective_eur"] == pytest.approx(p.cost_eur["objective_eur"], rel=1e-3)


def test_milp_goes_through_pyomo_and_the_direct_build_refuses_it() -> None:
    assert choose_builder("direct", milp=True) == "pyomo"
    assert choose_builder(None, milp=False) == "direct"
    assert choose_builder("pyomo", milp=False) == "pyomo"
    planner, state, forecast = _inputs(CASES[0])
    data = planner.problem(state, forecast, START, SolveOptions(milp=True)).data
    with pytest.raises(ValueError, match="LP only"):
        DirectBackend(data)
