"""HiGHS through Pyomo's persistent interface: load a model once, refresh, solve, read back.

Every way a solve can go wrong (HiGHS error, time limit, no solution, a forced failure for
tests) raises :class:`SolveFailed` with a reason; the planner turns it into a fallback plan.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
from numpy.typing import NDArray
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from optimizer.params import SolveOptions


class SolveFailed(RuntimeError):
    """The solver gave no usable optimum; ``str(exc)`` is the reason."""


@dataclass(frozen=True)
class SolveResult:
    status: str
    objective: float
    seconds: float


class _Highs(Highs):  # type: ignore[misc]
    """Pyomo's HiGHS interface with two changes for a controller that plans in a thread.

    - Pyomo redirects the process's stdout and stderr file descriptors while it loads a
      model and while HiGHS runs, to capture the solver log. In a controller that keeps
      polling and logging in other threads, their output would vanish for that time. Here
      HiGHS runs with its output switched off instead, and nothing is redirected.
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

    def _solve(self) -> Any:
        config = self._active_config
        h = self._solver_model
        h.setOptionValue("output_flag", False)
        if config.threads is not None:
            h.setOptionValue("threads", config.threads)
        if config.time_limit is not None:
            h.setOptionValue("time_limit", config.time_limit)
        if config.rel_gap is not None:
            h.setOptionValue("mip_rel_gap", config.rel_gap)
        config.timer.start("optimize")
        h.run()
        config.timer.stop("optimize")
        return self._postsolve(io.StringIO())

    def columns(self, var: Any) -> NDArray[np.int64]:
        """HiGHS column of each element of an indexed Var, in index order."""
        col = self._pyomo_var_to_solver_var_map
        return np.fromiter((col[id(v)] for v in var.values()), dtype=np.int64, count=len(var))

    def primal(self) -> NDArray[np.float64]:
        """Primal values of all columns after the last solve."""
        return np.asarray(self._sol.col_value, dtype=float)

    def add_block(self, block: Any) -> None:
        self.add_variables(list(block.component_data_objects(pyo.Var, descend_into=True)))
        super().add_block(block)

    def _check_for_new_vars(self, variables: list[Any]) -> None:
        new = {id(v): v for v in variables if id(v) not in self._referenced_variables}
        if new:
            self.add_variables(list(new.values()))


class PersistentHighs:
    """One HiGHS instance holding one Pyomo model across plans.

    Auto-updates are off: the planner says what changed (all parameters for a new plan, a few
    variable bounds between split rounds), which saves Pyomo from scanning the whole model.
    """

    def __init__(self) -> None:
        self._opt = _Highs()
        updates = self._opt.config.auto_updates
        for name in (
            "check_for_new_or_removed_constraints",
            "check_for_new_or_removed_vars",
            "check_for_new_or_removed_params",
            "check_for_new_objective",
            "update_constraints",
            "update_vars",
            "update_parameters",
            "update_named_expressions",
            "update_objective",
        ):
            setattr(updates, name, False)
        self._model: pyo.ConcreteModel | None = None
        self._primal: NDArray[np.float64] = np.zeros(0)
        self._columns: dict[str, NDArray[np.int64]] = {}

    def load(self, model: pyo.ConcreteModel) -> None:
        """Translate ``model`` into HiGHS (the expensive step; once per model structure)."""
        self._opt.set_instance(model)
        self._model = model

    def refresh_parameters(self) -> None:
        """Push every mutable parameter's current value to HiGHS."""
        self._opt.update_parameters()
        self._opt._solver_model.clearSolver()

    def refresh_bounds(self, variables: list[Any]) -> None:
        """Push the bounds of ``variables`` (after their bound parameters changed)."""
        self._opt.update_variables(variables)

    def solve(self, options: SolveOptions, time_limit_s: float, milp: bool) -> SolveResult:
        """Solve the loaded model; raise :class:`SolveFailed` unless HiGHS proves an optimum."""
        if self._model is None:
            raise SolveFailed("no model loaded")
        if options.force_failure:
            raise SolveFailed("forced solver failure (SolveOptions.force_failure)")
        kwargs: dict[str, Any] = {
            "load_solutions": False,
            "threads": options.threads,
            "time_limit": max(time_limit_s, 0.0),
            "raise_exception_on_nonoptimal_result": False,
        }
        if milp:
            kwargs["rel_gap"] = options.mip_rel_gap
        start = time.perf_counter()
        try:
            res = self._opt.solve(self._model, **kwargs)
        except Exception as exc:  # HiGHS or Pyomo errors must not reach the caller
            raise SolveFailed(f"solver error: {exc!r}") from exc
        seconds = time.perf_counter() - start
        term = res.termination_condition
        if term == TerminationCondition.maxTimeLimit:
            raise SolveFailed(f"time limit of {time_limit_s:g} s reached")
        optimal = term == TerminationCondition.convergenceCriteriaSatisfied
        if not optimal or res.solution_status not in (
            SolutionStatus.optimal,
            SolutionStatus.feasible,
        ):
            raise SolveFailed(f"solver ended with {term.name}")
        self._primal = self._opt.primal()
        return SolveResult(
            status="optimal", objective=float(res.incumbent_objective), seconds=seconds
        )

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
