"""HiGHS with a model loaded once through Pyomo's persistent interface: refresh, solve, read back.

Every way a solve can go wrong (HiGHS error, time limit, no solution, a forced failure for
tests) raises :class:`SolveFailed` with a reason; the planner turns it into a fallback plan.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
from numpy.typing import NDArray
from pyomo.contrib.solver.solvers.highs import Highs

from optimizer.param_map import NotCompilable, ParamMap
from optimizer.params import SolveOptions

log = logging.getLogger(__name__)

#: HiGHS's "no limit" for its integer limits (kHighsIInf); options persist in an instance, so
#: a solve without a work limit sets this back explicitly.
_ITERATIONS_OFF = 2**31 - 1


class SolveFailed(RuntimeError):
    """The solver gave no usable optimum; ``str(exc)`` is the reason."""


@dataclass(frozen=True)
class SolveResult:
    status: str
    objective: float
    seconds: float
    #: Simplex iterations of this solve (0 for a MILP's or an interior-point solve).
    iterations: int = 0


class _Highs(Highs):  # type: ignore[misc]
    """Pyomo's HiGHS interface, used to load a model, with two changes.

    - Pyomo redirects the process's stdout and stderr file descriptors while it loads a
      model, to capture the solver log. In a controller that keeps polling and logging in
      other threads, their output would vanish for that time. Here HiGHS has its output
      switched off instead, and nothing is redirected (:class:`PersistentHighs` runs HiGHS
      itself, with the output off too).
    - Pyomo registers the new variables of every constraint separately, calling HiGHS twice
      per constraint even when there are none, which dominated loading large models. Here all
      variables go in as one batch first.
    """

    def set_instance(self, model: Any) -> None:
        if self._last_results_object is not None:
            self._last_results_object.solution_loader.invalidate()
        self._reinit()
        self._model = model
        self._solver_model = highspy.Highs()  # type: ignore[no-untyped-call]
        self._solver_model.setOptionValue("output_flag", False)
        self.add_block(model)
        if self._objective is None:
            self.set_objective(None)

    def columns(self, var: Any) -> NDArray[np.int64]:
        """HiGHS column of each element of an indexed Var, in index order."""
        col = self._pyomo_var_to_solver_var_map
        return np.fromiter((col[id(v)] for v in var.values()), dtype=np.int64, count=len(var))

    def add_block(self, block: Any) -> None:
        self.add_variables(list(block.component_data_objects(pyo.Var, descend_into=True)))
        super().add_block(block)

    def _check_for_new_vars(self, variables: list[Any]) -> None:
        new = {id(v): v for v in variables if id(v) not in self._referenced_variables}
        if new:
            self.add_variables(list(new.values()))


def run_highs(
    h: highspy.Highs, options: SolveOptions, time_limit_s: float, milp: bool
) -> tuple[SolveResult, NDArray[np.float64]]:
    """Run HiGHS on the model it holds; the result and the primal values, or :class:`SolveFailed`.

    A solve that ends without an optimum for another reason than a limit (HiGHS's
    ``kUnknown``: a start from the idle or shifted basis of :mod:`optimizer.basis` can end
    so where the same LP solves from scratch) is run once more without the basis, in the
    time left. A failed solve clears HiGHS's basis, so the next solve starts from scratch.
    """
    start = time.perf_counter()
    try:
        h.setOptionValue("output_flag", False)
        h.setOptionValue("threads", options.threads)
        h.setOptionValue("time_limit", max(time_limit_s, 0.0))
        iterations = _ITERATIONS_OFF if options.iteration_limit is None else options.iteration_limit
        h.setOptionValue("simplex_iteration_limit", iterations)
        h.setOptionValue("ipm_iteration_limit", iterations)
        if milp:
            h.setOptionValue("mip_rel_gap", options.mip_rel_gap)
            h.setOptionValue("mip_max_nodes", iterations)
        h.run()
        status = h.getModelStatus()
        info = h.getInfo()
        left = time_limit_s - (time.perf_counter() - start)
        if _worth_a_fresh_start(status, info) and left > 0:
            log.info("HiGHS ended with %s from its starting basis: solving from scratch",
                     status.name)  # fmt: skip
            h.clearSolver()
            h.setOptionValue("time_limit", left)
            h.run()
            status = h.getModelStatus()
            info = h.getInfo()
    except Exception as exc:  # HiGHS errors must not reach the caller
        raise SolveFailed(f"solver error: {exc!r}") from exc
    seconds = time.perf_counter() - start
    optimal = status == highspy.HighsModelStatus.kOptimal
    if not optimal or info.primal_solution_status != 2:  # 2: feasible primal solution
        h.clearSolver()  # the next solve starts from scratch, not from this basis
        if status == highspy.HighsModelStatus.kTimeLimit:
            raise SolveFailed(f"time limit of {time_limit_s:g} s reached")
        if status == highspy.HighsModelStatus.kIterationLimit:
            raise SolveFailed(f"iteration limit of {iterations} reached")
        raise SolveFailed(f"solver ended with {status.name}")
    primal = np.asarray(h.getSolution().col_value, dtype=float)
    result = SolveResult(
        status="optimal",
        objective=float(info.objective_function_value),
        seconds=seconds,
        iterations=max(int(info.simplex_iteration_count), 0),
    )
    return result, primal


def _worth_a_fresh_start(status: highspy.HighsModelStatus, info: Any) -> bool:
    """No optimum with a feasible solution, and not for a limit (a second run would only
    spend the same budget again)."""
    s = highspy.HighsModelStatus
    if status == s.kOptimal:
        return bool(info.primal_solution_status != 2)
    return status not in (s.kTimeLimit, s.kIterationLimit, s.kSolutionLimit, s.kInterrupt)


class PersistentHighs:
    """One HiGHS instance holding one Pyomo model across plans.

    Pyomo translates the model into HiGHS once (:meth:`load`). After that, new parameter
    values go straight into HiGHS through a :class:`~optimizer.param_map.ParamMap` compiled at
    load time (only the entries that changed), and HiGHS runs and is read back through
    highspy directly, so Pyomo walks no expressions and builds no result objects per solve.
    """

    def __init__(self) -> None:
        self._opt = _Highs()
        self._model: pyo.ConcreteModel | None = None
        self._map: ParamMap | None = None
        self._primal: NDArray[np.float64] = np.zeros(0)
        self._columns: dict[str, NDArray[np.int64]] = {}

    def load(self, model: pyo.ConcreteModel, params: list[Any]) -> None:
        """Translate ``model`` into HiGHS (the expensive step; once per model structure).

        params : the model's mutable Param elements, in the order of the value vectors that
            :meth:`refresh` will be given (:func:`optimizer.model.base.param_items`)
        """
        self._opt.set_instance(model)
        self._model = model
        try:
            self._map = ParamMap(self._opt, params)
        except NotCompilable:  # an expression the map does not handle: Pyomo updates it
            self._map = None
        else:
            self._map.mark_sent(np.array([p.value for p in params], dtype=float))

    def refresh(self, values: NDArray[np.float64]) -> int:
        """Push new Param ``values`` (already stored in the model's Params) to HiGHS.

        HiGHS keeps its last basis, so the next solve starts from the last optimum: between
        split rounds a few bounds moved, and from one plan to the next the horizon moved by
        a step, which on the demo site takes ~250 simplex iterations instead of ~2,700 from
        scratch. Returns the number of LP entries sent (-1: all, through Pyomo, for a model
        the map could not compile).
        """
        if self._map is not None:
            return self._map.push(self._opt._solver_model, values)
        self._opt.update_parameters()
        return -1

    def reload(self, values: NDArray[np.float64]) -> None:
        """Set every Param-dependent LP entry from the model as :meth:`load` does (Pyomo
        evaluates them all, rather than the map only those that changed) and pass HiGHS the
        LP anew: it then solves as it solves a freshly loaded model, to the bit (dropping
        only the basis is not enough: HiGHS keeps other state from earlier solves)."""
        self._opt.update_parameters()
        if self._map is not None:
            self._map.mark_sent(values)
        h = self._opt._solver_model
        h.passModel(h.getLp())

    def solve(self, options: SolveOptions, time_limit_s: float, milp: bool) -> SolveResult:
        """Solve the loaded model; raise :class:`SolveFailed` unless HiGHS proves an optimum."""
        if self._model is None:
            raise SolveFailed("no model loaded")
        if options.force_failure:
            raise SolveFailed("forced solver failure (SolveOptions.force_failure)")
        result, self._primal = run_highs(self._opt._solver_model, options, time_limit_s, milp)
        return result

    def values(self, var: Any, shape: tuple[int, ...]) -> NDArray[np.float64]:
        """Primal values of an indexed Var in index order, reshaped to ``shape``.

        Read straight from HiGHS's solution array through each Var's column indices (found
        once per model), instead of building a Pyomo map of every variable after each solve.
        """
        if len(var) == 0:
            return np.zeros(shape)
        name = var.name
        if name not in self._columns:
            self._columns[name] = self._opt.columns(var)
        return self._primal[self._columns[name]].reshape(shape)
