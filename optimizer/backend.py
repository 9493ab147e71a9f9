"""Two ways to put the planner's LP into HiGHS, behind one interface.

- :class:`PyomoBackend`: the Pyomo model (:mod:`optimizer.model`), the model of record, loaded
  through Pyomo's persistent HiGHS interface. It covers every switch (MILP included).
- :class:`DirectBackend`: the same LP written as arrays (:func:`optimizer.direct.build_lp`)
  and handed to highspy directly. Building and loading it costs milliseconds where Pyomo
  takes seconds for a few hundred units (10,000 devices in 128 battery units: ~0.01 s against
  ~6 s), which is what makes fine aggregation affordable. ``tests/optimizer/
  test_direct_equivalence.py`` holds it equal to the Pyomo model, row by row and column by
  column, over varied sites and inputs. LP only: a MILP plan always goes through Pyomo.

Both keep HiGHS between plans: :meth:`refresh` sends only what changed and HiGHS starts from
the last basis. The direct build starts a new model from the batteries-idle basis and a
re-plan some steps later from the last basis moved by those steps (:mod:`optimizer.basis`).
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Protocol

import highspy
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from optimizer.basis import Basis, idle_basis, read_basis, shifted_basis, to_highs
from optimizer.data import ModelData
from optimizer.direct import LpArrays, battery_bounds, build_lp
from optimizer.flows import Flows
from optimizer.model import KW, build_model, param_items, update_params
from optimizer.params import SolveOptions
from optimizer.readback import read_flows
from optimizer.solve import PersistentHighs, SolveFailed, SolveResult, run_highs

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

Builder = Literal["direct", "pyomo"]
Start = Literal["idle", "slack"]


class Backend(Protocol):
    """A loaded LP the planner refreshes, solves and reads back."""

    n_variables: int
    n_constraints: int

    def refresh(self, data: ModelData) -> None:
        """New values of the same structure (``data.structure_key()`` unchanged)."""
        ...

    def refresh_battery_limits(self, data: ModelData) -> None:
        """As :meth:`refresh`, when only ``bat_charge_max_w``, ``bat_discharge_max_w`` and the
        SoC bounds changed since the last refresh (what a split round changes)."""
        ...

    def reload(self, data: ModelData) -> None:
        """As :meth:`refresh`, then solve as a freshly loaded model would (no basis, no other
        state of earlier solves): :meth:`Planner.reset <optimizer.planner.Planner.reset>`."""
        ...

    def solve(self, options: SolveOptions, time_limit_s: float, milp: bool) -> SolveResult:
        """Solve; raise :class:`~optimizer.solve.SolveFailed` unless HiGHS proves an optimum."""
        ...

    def flows(self, data: ModelData) -> Flows:
        """The last solution as unit-level flows, W and Wh."""
        ...


def choose_builder(requested: Builder | None, milp: bool) -> Builder:
    """The direct build for LPs unless Pyomo is asked for; MILPs always through Pyomo."""
    if milp:
        return "pyomo"
    return requested or "direct"


def load(data: ModelData, builder: Builder, start: Start = "idle") -> Backend:
    """Build the LP of ``data`` with ``builder`` and load it into a new HiGHS instance
    (``start``: see :attr:`SolveOptions.start <optimizer.params.SolveOptions.start>`)."""
    if builder == "direct":
        return DirectBackend(data, start)
    return PyomoBackend(data)


class PyomoBackend:
    """The Pyomo model through :class:`~optimizer.solve.PersistentHighs`."""

    def __init__(self, data: ModelData) -> None:
        self.model = build_model(data)
        self.solver = PersistentHighs()
        self.solver.load(self.model, param_items(self.model))
        self.n_variables = self.model.nvariables()
        self.n_constraints = self.model.nconstraints()

    def refresh(self, data: ModelData) -> None:
        self.solver.refresh(update_params(self.model, data))

    def refresh_battery_limits(self, data: ModelData) -> None:
        self.refresh(data)

    def reload(self, data: ModelData) -> None:
        self.solver.reload(update_params(self.model, data))

    def solve(self, options: SolveOptions, time_limit_s: float, milp: bool) -> SolveResult:
        return self.solver.solve(options, time_limit_s, milp)

    def flows(self, data: ModelData) -> Flows:
        return read_flows(self.model, self.solver, data)


class DirectBackend:
    """The LP as arrays in one highspy instance (LP only)."""

    def __init__(self, data: ModelData, start: Start = "idle") -> None:
        if data.milp:
            raise ValueError("the direct build is LP only; plan a MILP through Pyomo")
        self._warm = start == "idle"
        self._h = highspy.Highs()  # type: ignore[no-untyped-call]
        self._h.setOptionValue("output_flag", False)
        self._primal: F64 = np.zeros(0)
        self._load(data)

    def _load(self, data: ModelData) -> None:
        lp = build_lp(data)
        self._blocks, self.row_blocks = lp.blocks, lp.row_blocks
        self._model = lp.arrays()
        self._model.pass_to(self._h)
        self.n_variables, self.n_constraints = lp.n_col, lp.n_row
        self._idle = idle_basis(lp.n_col, lp.n_row, lp.blocks, lp.row_blocks)
        if self._warm:
            self._h.setBasis(to_highs(self._idle))
        self._start, self._steps = data.index[0], data.steps

    def refresh(self, data: ModelData) -> None:
        """Send HiGHS the bounds and costs that changed; a changed matrix goes in whole.

        Split rounds and most re-plans change only bounds and costs (sent as one batch per
        kind). The matrix changes with the COP forecast and the taper lines; then the model
        is passed again and the last basis set on it, so HiGHS still starts from there.
        (Sending only the changed coefficients, ``changeCoeff``, costs less but leaves HiGHS
        other internal state: on the degenerate unit LP it then ends at another optimal
        vertex than a fresh model does, and the split rounds after it differ.)
        A plan that starts ``k`` steps later than the last one starts from the last basis
        moved by ``k`` steps (:func:`optimizer.basis.shifted_basis`); one that starts
        earlier or a horizon or more later starts from the idle basis.
        The arrays last sent are kept here: reading them back from HiGHS copies them.
        """
        old = self._model
        new = build_lp(data).arrays()
        if (new.cost.size, new.row_lower.size) != (old.cost.size, old.row_lower.size):
            raise ValueError("refresh with data of another structure")
        start = self._moved_basis(data)
        if not new.same_matrix(old):
            basis = self._h.getBasis() if start is None else to_highs(start)
            new.pass_to(self._h)
            if basis.valid:
                self._h.setBasis(basis)
        else:
            self._send(old, new)
            if start is not None:
                self._h.setBasis(to_highs(start))
        self._model = new
        self._start = data.index[0]

    def refresh_battery_limits(self, data: ModelData) -> None:
        """As :meth:`refresh` when only the battery units' power limits and SoC bounds
        changed since the last refresh (a split round): only their columns are compared
        and sent, without building the LP again. With taper rows (whose bounds follow the
        SoC bounds) it is :meth:`refresh`."""
        if "taper" in self.row_blocks:
            self.refresh(data)
            return
        old = self._model
        lower, upper = old.col_lower.copy(), old.col_upper.copy()
        for name, (lo, hi) in battery_bounds(data).items():
            idx = self._blocks[name]
            lower[idx.ravel()] = np.broadcast_to(lo, idx.shape).ravel()
            upper[idx.ravel()] = np.broadcast_to(hi, idx.shape).ravel()
        new = dataclasses.replace(old, col_lower=lower, col_upper=upper)
        self._send(old, new)
        self._model = new

    def _moved_basis(self, data: ModelData) -> Basis | None:
        """The start for a plan that begins at another step than the last (None: same step)."""
        k = round((data.index[0] - self._start) / pd.Timedelta(hours=data.dt_h))
        if k == 0 or not self._warm:
            return None
        if not 0 < k < self._steps or self._primal.size != self._model.cost.size:
            return self._idle
        last = read_basis(self._h, self._primal, self._model.col_upper, self._model.row_upper)
        if last is None:
            return self._idle
        return shifted_basis(last, self._idle, self._steps, k)

    def reload(self, data: ModelData) -> None:
        """A new HiGHS instance with the LP of ``data``: it solves as a fresh build does, to
        the bit (HiGHS keeps state from earlier solves besides the basis)."""
        self._h = highspy.Highs()  # type: ignore[no-untyped-call]
        self._h.setOptionValue("output_flag", False)
        self._primal = np.zeros(0)
        self._load(data)

    def _send(self, old: LpArrays, new: LpArrays) -> None:
        h = self._h
        changed = _changed(old.cost, new.cost)
        if changed.size:
            h.changeColsCost(changed.size, changed, new.cost[changed])
        lo, hi = new.col_lower, new.col_upper
        changed = np.union1d(_changed(old.col_lower, lo), _changed(old.col_upper, hi))
        if changed.size:
            h.changeColsBounds(changed.size, changed, lo[changed], hi[changed])
        lo, hi = new.row_lower, new.row_upper
        changed = np.union1d(_changed(old.row_lower, lo), _changed(old.row_upper, hi))
        if changed.size:
            h.changeRowsBounds(changed.size, changed, lo[changed], hi[changed])  # type: ignore[attr-defined]

    def solve(self, options: SolveOptions, time_limit_s: float, milp: bool) -> SolveResult:
        if milp:
            raise SolveFailed("the direct build is LP only")
        if options.force_failure:
            raise SolveFailed("forced solver failure (SolveOptions.force_failure)")
        self._primal = np.zeros(0)  # no solution to start the next plan from, if this fails
        result, self._primal = run_highs(self._h, options, time_limit_s, milp)
        return result

    @property
    def families(self) -> tuple[dict[str, I64], dict[str, I64]]:
        """Column and row indices of each variable and constraint family of the LP held."""
        return self._blocks, self.row_blocks

    @property
    def highs(self) -> highspy.Highs:
        """The HiGHS instance holding the LP (its duals after a solve: :mod:`optimizer.duals`)."""
        return self._h

    def values(self, name: str) -> F64:
        """Primal values of a variable family, in its block's shape, model units (kW, kWh)."""
        idx = self._blocks[name]
        return self._primal[idx.ravel()].reshape(idx.shape)

    def flows(self, data: ModelData) -> Flows:
        """As :func:`optimizer.readback.read_flows`: W and Wh, tiny negatives clipped to 0."""

        def get(name: str) -> F64:
            return np.maximum(self.values(name), 0.0) / KW

        hp_el, dry_th = get("hp_el"), get("dry_th")
        return Flows(
            bat_charge_w=get("bat_ch"),
            bat_discharge_w=get("bat_dis"),
            bat_soc_wh=get("bat_soc"),
            pv_w=get("pv"),
            grid_import_w=get("grid_import"),
            grid_export_w=get("grid_export"),
            el_unserved_w=get("el_unserved"),
            el_spilled_w=get("el_spilled"),
            hp_el_w=hp_el,
            hp_th_w=data.cop * hp_el,
            dry_cooler_th_w=dry_th,
            dry_cooler_el_w=data.dry_cooler_el_per_th * dry_th,
            boiler_th_w=get("boiler_th"),
            store_charge_w=get("store_ch"),
            store_discharge_w=get("store_dis"),
            store_wh=get("store_e") + get("store_kept").sum(axis=0),
            heat_unmet_w=get("heat_unmet"),
        )


def _changed(old: F64, new: F64) -> I64:
    return np.flatnonzero(old != new).astype(np.int32)


__all__ = [
    "Backend",
    "Builder",
    "DirectBackend",
    "PyomoBackend",
    "choose_builder",
    "load",
]
