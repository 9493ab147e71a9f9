"""The planner's LP written directly as sparse arrays and handed to HiGHS, without Pyomo.

Same variables, constraints and objective as :mod:`optimizer.model` (LP mode, kW and kWh), so
its optimum must equal the Pyomo model's. It serves as the floor for the modelling overhead in
``bench/optimizer_scaling.py`` and as an independent check of the Pyomo formulation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import highspy
import numpy as np
from numpy.typing import NDArray

from optimizer.data import ModelData, heat_risk_rhs_w
from optimizer.model.base import KW

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass
class _Lp:
    """Columns with bounds and costs; rows as COO triplets with bounds."""

    lower: list[F64] = field(default_factory=list)
    upper: list[F64] = field(default_factory=list)
    cost: list[F64] = field(default_factory=list)
    n_col: int = 0
    rows: list[I64] = field(default_factory=list)
    cols: list[I64] = field(default_factory=list)
    vals: list[F64] = field(default_factory=list)
    row_lo: list[F64] = field(default_factory=list)
    row_hi: list[F64] = field(default_factory=list)
    n_row: int = 0
    #: Column indices of each variable family, named as the Pyomo model names its Var.
    blocks: dict[str, I64] = field(default_factory=dict)
    #: Row indices of each constraint family (``soc``, ``taper``, ``must_cool``, ``store``,
    #: ``heat``, ``grid``). Every family, of columns and of rows, is laid out step-minor:
    #: entry ``i`` of a family belongs to step ``i % steps``.
    row_blocks: dict[str, I64] = field(default_factory=dict)

    def var(
        self,
        name: str,
        shape: tuple[int, ...],
        lo: F64 | float,
        hi: F64 | float,
        cost: F64 | float = 0.0,
    ) -> I64:
        """Add a block of columns named ``name``; returns their indices in ``shape``."""
        n = int(np.prod(shape))
        idx = np.arange(self.n_col, self.n_col + n).reshape(shape)
        self.blocks[name] = idx
        self.n_col += n
        if name is not None:
            self.blocks[name] = idx
        for target, value in ((self.lower, lo), (self.upper, hi), (self.cost, cost)):
            target.append(np.broadcast_to(np.asarray(value, dtype=float), shape).ravel())
        return idx

    def rows_of(self, n: int, lo: F64 | float, hi: F64 | float, name: str = "") -> I64:
        """Add ``n`` rows with bounds (family ``name``); returns their indices."""
        idx = np.arange(self.n_row, self.n_row + n)
        self.n_row += n
        if name:
            previous = self.row_blocks.get(name)
            self.row_blocks[name] = idx if previous is None else np.concatenate([previous, idx])
        self.row_lo.append(np.broadcast_to(np.asarray(lo, dtype=float), (n,)).ravel())
        self.row_hi.append(np.broadcast_to(np.asarray(hi, dtype=float), (n,)).ravel())
        return idx

    def coef(self, rows: I64, cols: I64, vals: F64 | float) -> None:
        """Add coefficients ``vals`` at (rows, cols) (broadcast together)."""
        r, c, v = np.broadcast_arrays(rows, cols, np.asarray(vals, dtype=float))
        self.rows.append(r.ravel())
        self.cols.append(c.ravel())
        self.vals.append(v.ravel())

    def csc(self) -> tuple[I64, I64, F64]:
        """The matrix in compressed-column form: (column starts, row indices, values)."""
        rows, cols = np.concatenate(self.rows), np.concatenate(self.cols)
        vals = np.concatenate(self.vals)
        order = np.lexsort((rows, cols))
        start = np.concatenate(([0], np.cumsum(np.bincount(cols, minlength=self.n_col))))
        return start.astype(np.int64), rows[order], vals[order]

    def arrays(self) -> LpArrays:
        """The LP as flat numpy arrays (what :meth:`highs_lp` hands to HiGHS)."""
        start, index, value = self.csc()
        return LpArrays(
            cost=np.concatenate(self.cost),
            col_lower=np.concatenate(self.lower),
            col_upper=np.concatenate(self.upper),
            row_lower=np.concatenate(self.row_lo),
            row_upper=np.concatenate(self.row_hi),
            start=start,
            index=index,
            value=value,
        )

    def highs_lp(self) -> highspy.HighsLp:
        return self.arrays().highs_lp()


@dataclass(frozen=True)
class LpArrays:
    """An LP as arrays: column costs and bounds, row bounds, the matrix column-wise."""

    cost: F64
    col_lower: F64
    col_upper: F64
    row_lower: F64
    row_upper: F64
    start: I64
    index: I64
    value: F64

    def same_matrix(self, other: LpArrays) -> bool:
        return (
            np.array_equal(self.start, other.start)
            and np.array_equal(self.index, other.index)
            and np.array_equal(self.value, other.value)
        )

    def pass_to(self, h: highspy.Highs) -> None:
        """Load this LP into ``h`` (as ``h.passModel(self.highs_lp())``, the same model).

        highspy takes the arrays as they are here; filling a :class:`highspy.HighsLp` first
        converts every entry on its own (~25 ms at 10,000 devices against ~3 ms).
        """
        n_col = len(self.cost)
        status = h.passModel(
            n_col,
            len(self.row_lower),
            len(self.value),
            int(highspy.MatrixFormat.kColwise),
            int(highspy.ObjSense.kMinimize),
            0.0,
            self.cost,
            self.col_lower,
            self.col_upper,
            self.row_lower,
            self.row_upper,
            self.start[:-1].astype(np.int32),
            self.index.astype(np.int32),
            self.value,
            np.zeros(n_col, dtype=np.int32),  # all continuous (HiGHS wants one per column)
        )
        if status == highspy.HighsStatus.kError:
            raise RuntimeError("HiGHS refused the LP")

    def highs_lp(self) -> highspy.HighsLp:
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = len(self.cost), len(self.row_lower)
        lp.col_cost_ = self.cost
        lp.col_lower_, lp.col_upper_ = self.col_lower, self.col_upper
        lp.row_lower_, lp.row_upper_ = self.row_lower, self.row_upper
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = self.start
        lp.a_matrix_.index_ = self.index
        lp.a_matrix_.value_ = self.value
        return lp


@dataclass(frozen=True)
class DirectResult:
    objective_eur: float
    build_s: float
    solve_s: float
    n_variables: int
    n_constraints: int


def _shift(idx: I64) -> I64:
    """Indices of the previous step (the first step's own index; masked by the caller)."""
    return np.concatenate([idx[..., :1], idx[..., :-1]], axis=-1)


def battery_bounds(d: ModelData) -> dict[str, tuple[F64 | float, F64]]:
    """Lower and upper bounds of the battery units' columns, per family (kW, kWh), shape
    (units, steps): what a split round changes (:meth:`optimizer.backend.DirectBackend.
    refresh_battery_limits` sends just these)."""
    return {
        "bat_ch": (0.0, d.bat_charge_max_w * KW),
        "bat_dis": (0.0, d.bat_discharge_max_w * KW),
        "bat_soc": (d.bat_soc_lo_wh * KW, d.bat_soc_hi_wh * KW),
    }


def build_lp(d: ModelData) -> _Lp:
    """The LP of :func:`optimizer.model.build_model` (``milp=False``) as arrays."""
    lp = _Lp()
    T, U, V, dt = d.steps, d.n_bat, d.n_pv, d.dt_h
    k = dt * 1e-3  # EUR per (kW * step * EUR/MWh)
    inf = highspy.kHighsInf
    bounds = battery_bounds(d)
    ch = lp.var("bat_ch", (U, T), *bounds["bat_ch"])
    wear = k * d.bat.wear_eur_per_mwh[:, None]
    dis = lp.var("bat_dis", (U, T), *bounds["bat_dis"], wear)
    soc_cost = np.zeros((U, T))
    soc_cost[:, -1] = -1e-3 * d.bat_terminal_eur_per_mwh
    soc = lp.var("bat_soc", (U, T), *bounds["bat_soc"], soc_cost)
    pv = lp.var("pv", (V, T), d.pv_min_w * KW, d.pv_avail_w * KW)
    imp = lp.var("grid_import", (T,), 0.0, d.import_cap_w * KW, k * d.import_eur_per_mwh())
    exp = lp.var("grid_export", (T,), 0.0, d.export_cap_w * KW, -k * d.price_export_eur_per_mwh)
    unserved = lp.var("el_unserved", (T,), 0.0, inf, k * d.unserved_el_penalty_eur_per_mwh)
    spilled = lp.var("el_spilled", (T,), 0.0, inf, k * d.spilled_el_penalty_eur_per_mwh)
    hp = lp.var("hp_el", (T,), 0.0, d.hp_max_el_w * KW)
    dry = lp.var("dry_th", (T,), 0.0, inf)
    st_ch = lp.var("store_ch", (T,), 0.0, d.store_max_charge_w * KW)
    st_dis = lp.var("store_dis", (T,), 0.0, d.store_max_discharge_w * KW)
    st_cost = np.zeros(T)
    st_cost[-1] = -1e-3 * d.store_terminal_eur_per_mwh
    # The reserve's tiers: a family per tier over every step (step-minor, optimizer.basis),
    # fixed at 0 before the last step.
    K = d.store_tier_wh.size
    tier_hi = np.zeros((K, T))
    tier_hi[:, -1] = d.store_tier_wh * KW
    tier_cost = np.repeat(-1e-3 * d.store_tier_eur_per_mwh[:, None], T, axis=1)
    st_e = lp.var("store_e", (T,), 0.0, d.store_capacity_wh * KW - tier_hi.sum(axis=0), st_cost)
    boiler = lp.var("boiler_th", (T,), 0.0, d.boiler_max_w * KW, k * d.boiler_eur_per_mwh_th())
    unmet = lp.var("heat_unmet", (T,), 0.0, inf, k * d.unmet_heat_penalty_eur_per_mwh)
    # Last among the columns: without a reserve they are fixed at 0 and the LP is the one
    # without it, column for column (HiGHS's pivoting follows the column order).
    st_kept = lp.var("store_kept", (K, T), 0.0, tier_hi, tier_cost)

    first = np.zeros((U, T))
    first[:, 0] = d.bat.soc0_wh * KW
    rows = lp.rows_of(U * T, first.ravel(), first.ravel(), "soc").reshape(U, T)
    lp.coef(rows, soc, 1.0)
    lp.coef(rows[:, 1:], _shift(soc)[:, 1:], -1.0)
    lp.coef(rows, ch, -dt * d.bat.eta_charge[:, None])
    lp.coef(rows, dis, dt / d.bat.eta_discharge[:, None])
    if d.bat_charge_taper is not None and d.bat_discharge_taper is not None:
        for j in range(2):
            a, g = d.bat_charge_taper[0][:, j] * KW, d.bat_charge_taper[1][:, j]
            hi = (a[:, None] + g[:, None] * d.bat_soc_hi_wh * KW).ravel()
            r = lp.rows_of(U * T, -inf, hi, "taper")
            lp.coef(r.reshape(U, T), ch, 1.0)
            lp.coef(r.reshape(U, T), soc, g[:, None])
            a, g = d.bat_discharge_taper[0][:, j] * KW, d.bat_discharge_taper[1][:, j]
            hi = (a[:, None] - g[:, None] * d.bat_soc_lo_wh * KW).ravel()
            r = lp.rows_of(U * T, -inf, hi, "taper")
            lp.coef(r.reshape(U, T), dis, 1.0)
            lp.coef(r.reshape(U, T), soc, -g[:, None])

    waste = d.waste_heat_w * KW
    r = lp.rows_of(T, waste, waste, "must_cool")
    lp.coef(r, dry, 1.0)
    lp.coef(r, hp, d.cop - 1.0)

    e0 = np.zeros(T)
    e0[0] = d.store_keep * d.store0_wh * KW
    r = lp.rows_of(T, e0, e0, "store")
    lp.coef(r, st_e, 1.0)
    lp.coef(r[None, :], st_kept, 1.0)
    lp.coef(r[1:], st_e[:-1], -d.store_keep)
    lp.coef(r, st_ch, -dt)
    lp.coef(r, st_dis, dt)

    demand = d.heat_demand_w * KW
    r = lp.rows_of(T, demand, demand, "heat")
    lp.coef(r, hp, d.cop)
    for col, sign in ((boiler, 1.0), (st_dis, 1.0), (st_ch, -1.0), (unmet, 1.0)):
        lp.coef(r, col, sign)

    load = d.load_w * KW
    r = lp.rows_of(T, load, load, "grid")
    for col, sign in ((imp, 1.0), (exp, -1.0), (unserved, 1.0), (spilled, -1.0), (hp, -1.0)):
        lp.coef(r, col, sign)
    lp.coef(r, dry, -d.dry_cooler_el_per_th)
    lp.coef(r[None, :], pv, 1.0)
    lp.coef(r[None, :], dis, 1.0)
    lp.coef(r[None, :], ch, -1.0)
    if d.heat_risk:
        _heat_risk(lp, d, hp, boiler, st_e, st_kept)
    return lp


def _heat_risk(lp: _Lp, d: ModelData, hp: I64, boiler: I64, st_e: I64, st_kept: I64) -> None:
    """The store's heat-risk reserve (:func:`optimizer.data.set_heat_risk`): columns and
    rows after all others, so that without it the LP is the one without, column for column
    and row for row."""
    T, dt, inf = d.steps, d.dt_h, highspy.kHighsInf
    deficit = lp.var("heat_risk", (T,), 0.0, inf)
    short_cost = np.zeros(T)
    short_cost[-1] = 1e-3 * d.heat_short_eur_per_mwh
    short = lp.var("heat_short", (T,), 0.0, inf, short_cost)
    r = lp.rows_of(T, heat_risk_rhs_w(d) * KW * dt, inf, "heat_risk")
    lp.coef(r, deficit, 1.0)
    lp.coef(r[1:], deficit[:-1], -d.store_keep)
    lp.coef(r, hp, -dt * d.cop)
    lp.coef(r, boiler, -dt)
    r = lp.rows_of(T, 0.0, inf, "heat_short_run")
    lp.coef(r, short, 1.0)
    lp.coef(r[1:], short[:-1], -1.0)
    r = lp.rows_of(T, 0.0, inf, "heat_short")
    for col, sign in ((short, 1.0), (st_e, 1.0), (deficit, -1.0)):
        lp.coef(r, col, sign)
    lp.coef(r[None, :], st_kept, 1.0)


def solve_direct(
    data: ModelData, threads: int = 1, solver: str = "choose", crossover: bool = True
) -> DirectResult:
    """Build the LP as arrays, pass it to HiGHS, solve; objective in EUR.

    solver : HiGHS's ``solver`` option: "choose", "simplex", "ipm" (IPX) or "hipo" (HiGHS's
        newer interior-point solver; the pinned highspy wheel does not carry it and HiGHS then
        runs its default, so the benchmarks use "ipm")
    crossover : run crossover after an interior-point solve (a vertex solution); off gives the
        same objective to within the solver's tolerances, sooner
    """
    tic = time.perf_counter()
    lp = build_lp(data)
    h = highspy.Highs()  # type: ignore[no-untyped-call]
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", threads)
    h.setOptionValue("solver", solver)
    h.setOptionValue("run_crossover", "on" if crossover else "off")
    h.passModel(lp.highs_lp())
    build_s = time.perf_counter() - tic
    tic = time.perf_counter()
    h.run()
    solve_s = time.perf_counter() - tic
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError(f"direct LP ended with {h.modelStatusToString(h.getModelStatus())}")
    return DirectResult(
        float(h.getInfo().objective_function_value), build_s, solve_s, lp.n_col, lp.n_row
    )
