"""The planner: inputs in, a :class:`~optimizer.plan.Plan` out, every quarter hour.

A :class:`Planner` keeps its Pyomo model and persistent HiGHS instance between calls. When the
next plan has the same structure (number of units, steps, step length, MILP switches) it only
refreshes the mutable parameters and re-solves from the previous basis; otherwise it builds a
new model. A solve that fails or runs out of time gives the rule-based fallback plan with the
reason in ``plan.info.fallback_reason``; it never raises to the caller. Inputs that cannot be
planned at all (a forecast without a required column) raise :class:`ForecastError`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from optimizer import duals as lp_duals
from optimizer.backend import Backend, DirectBackend, choose_builder, load
from optimizer.cost import plan_objective_eur
from optimizer.data import ModelData, Problem, build_problem, set_soc_bounds
from optimizer.fallback import fallback_flows
from optimizer.flows import Flows
from optimizer.inputs import State, plan_index, plan_start, prepare_forecast
from optimizer.params import OptimizerParams, SolveOptions
from optimizer.plan import Plan, SolveInfo, plan_frame, summarise, unit_frame, used_slacks
from optimizer.readback import simultaneous_steps
from optimizer.solve import SolveFailed, SolveResult
from optimizer.split import DeviceDispatch, split_batteries, split_pv
from vpp.core.site import Site


@dataclass
class _Timer:
    start: float = field(default_factory=time.perf_counter)
    build_s: float = 0.0
    solve_s: float = 0.0
    split_s: float = 0.0

    def total(self) -> float:
        return time.perf_counter() - self.start


#: Relative cost difference below which two rounds' plans count as equally cheap.
_SAME_COST = 1e-6


@dataclass(frozen=True)
class _Round:
    """One split round's plan: its cost once the grid takes any shortfall (EUR), its flows,
    split and solve."""

    cost_eur: float
    flows: Flows
    dispatch: DeviceDispatch
    result: SolveResult
    round: int


@dataclass
class _Built:
    solver: Backend
    key: tuple[object, ...]
    n_variables: int
    n_constraints: int


class Planner:
    """Plans one site; reuses its built model while the structure stays the same."""

    def __init__(
        self, site: Site, params: OptimizerParams | None = None, options: SolveOptions | None = None
    ) -> None:
        self.site = site
        self.params = params or OptimizerParams()
        self.options = options or SolveOptions()
        self._built: _Built | None = None
        self._reload = False

    def reset(self) -> None:
        """Forget what earlier plans left behind, but keep the built model: the next plan
        loads every LP entry as a fresh build computes it and solves without a starting
        basis, so it is the plan a new :class:`Planner` would make, bit for bit, without
        building the model again (when the structure is the same). Replay gives each chain
        of days a planner reset this way, so a chain's result does not depend on the
        chains a worker ran before it."""
        self._reload = self._built is not None

    def plan(
        self, state: State, forecast: pd.DataFrame, now: object, options: SolveOptions | None = None
    ) -> Plan:
        """Plan from the step containing ``now`` over the site's horizon.

        state : batteries' energy, store energy and offline devices at ``now``
        forecast : table of :data:`optimizer.inputs.FORECAST_COLUMNS` on a UTC index
        now : a time (datetime, pandas Timestamp or ISO string; naive = UTC)
        """
        timer = _Timer()
        opts = options or self.options
        problem = self.problem(state, forecast, now, opts)
        timer.build_s = timer.total()
        try:
            return self._optimise(problem, opts, timer)
        except SolveFailed as exc:
            reason = str(exc)
        except Exception as exc:  # a model or read-back error: plan safely, say why
            reason = f"optimiser error: {exc!r}"
        if not reason.startswith(("time limit", "iteration limit")):
            self._built = None  # do not reuse a solver that failed
        return self._fallback(problem, reason, timer)

    def problem(
        self, state: State, forecast: pd.DataFrame, now: object, opts: SolveOptions
    ) -> Problem:
        """The inputs of a plan reduced to arrays: what :meth:`plan` builds and solves."""
        cfg = self.site.optimizer
        steps = max(2, int(cfg.horizon_h * 60 // cfg.step_min))
        index = plan_index(plan_start(now, cfg.step_min), steps, cfg.step_min)
        prepared, warnings = prepare_forecast(self.site, forecast, index)
        mode = opts.mode or cfg.mode
        milp = cfg.milp if opts.milp is None else opts.milp
        problem = build_problem(self.site, state, prepared, mode, milp, self.params)
        problem.warnings[:0] = warnings
        return problem

    def _load(self, data: ModelData, opts: SolveOptions) -> tuple[_Built, bool]:
        builder = choose_builder(opts.builder, data.milp)
        key = (builder, opts.start, *data.structure_key())
        built = self._built
        if built is not None and built.key == key:
            if self._reload:
                built.solver.reload(data)
            else:
                built.solver.refresh(data)
            self._reload = False
            return built, True
        self._reload = False
        solver = load(data, builder, opts.start)
        built = _Built(solver, key, solver.n_variables, solver.n_constraints)
        self._built = built
        return built, False

    def _optimise(self, problem: Problem, opts: SolveOptions, timer: _Timer) -> Plan:
        data = problem.data
        tic = time.perf_counter()
        built, reused = self._load(data, opts)
        timer.build_s += time.perf_counter() - tic
        limit = self.site.optimizer.time_limit_s if opts.time_limit_s is None else opts.time_limit_s
        result = self._solve(built, opts, limit, data, timer)
        flows = built.solver.flows(data)
        warnings: list[str] = []
        both = simultaneous_steps(flows, self.params.tolerance_w)
        if both:
            warnings.append(
                f"batteries charge and discharge at once in {both} unit-step(s) "
                "(burning energy at negative prices)"
            )
        rounds = 0
        history: dict[tuple[int, int], tuple[float, float, float]] = {}
        previous: tuple[Flows, DeviceDispatch] | None = None
        best: _Round | None = None
        while True:
            tic = time.perf_counter()
            dispatch = split(problem, flows, self.params.tolerance_w, previous)
            previous = (flows, dispatch)
            this = _Round(plan_cost(problem, flows, dispatch), flows, dispatch, result, rounds)
            if best is None or this.cost_eur <= best.cost_eur + _SAME_COST * abs(best.cost_eur):
                best = this  # a later round (fewer devices short) wins a tie
            timer.split_s += time.perf_counter() - tic
            short = dispatch.bat_shortfall_w
            done = short.max(initial=0.0) <= self.params.tolerance_w or (
                short.sum() <= self.params.split_left_share * np.abs(flows.bat_net_w).sum()
            )
            if done or rounds >= self.params.split_rounds:
                break
            rounds += 1
            tic = time.perf_counter()
            self._tighten(built, data, flows, short, history)
            timer.build_s += time.perf_counter() - tic  # refreshing the LP between rounds
            result = self._solve(built, opts, limit, data, timer)
            flows = built.solver.flows(data)
        # Tightening can overshoot: a later round's plan may cost more than an earlier one's
        # once the grid takes what the devices cannot follow. The cheapest is kept. An LP's
        # shadow prices are those of the last solve HiGHS holds; the rounds differ only in
        # per-unit bounds, so they explain the kept plan's prices and spreads.
        duals, duals_s = self._duals(built, data, best.flows, warnings)
        flows, dispatch, result = best.flows, best.dispatch, best.result
        return self._finish(
            problem,
            flows,
            dispatch,
            timer,
            warnings,
            {
                "duals_s": duals_s,
                "status": "optimal",
                "objective_eur": result.objective,
                "reused_model": reused,
                "n_variables": built.n_variables,
                "n_constraints": built.n_constraints,
                "split_rounds": rounds,
                "split_round_kept": best.round,
            },
            duals,
        )

    def _duals(
        self, built: _Built, data: ModelData, flows: Flows, warnings: list[str]
    ) -> tuple[lp_duals.Duals | None, float | None]:
        """The plan's shadow prices: read from the direct build's own solve of an LP, or by
        one more solve with a mixed-integer plan's binaries fixed. A plan is not lost for
        want of them: the reasons fall back to what the plan's values show."""
        tic = time.perf_counter()
        try:
            if isinstance(built.solver, DirectBackend) and not data.milp:
                got = lp_duals.from_highs(
                    built.solver.highs, data, 0.0, fixed=False, families=built.solver.families
                )
            else:
                got = lp_duals.solve(data, flows)
        except Exception as exc:  # reasons fall back to the plan's values
            warnings.append(f"no duals for the reasons: {exc}")
            return None, None
        return got, time.perf_counter() - tic

    def _solve(
        self, built: _Built, opts: SolveOptions, limit: float, data: ModelData, timer: _Timer
    ) -> SolveResult:
        tic = time.perf_counter()
        try:
            return built.solver.solve(opts, limit, data.milp)
        finally:
            timer.solve_s += time.perf_counter() - tic

    def _tighten(
        self,
        built: _Built,
        data: ModelData,
        flows: Flows,
        short: np.ndarray,
        history: dict[tuple[int, int], tuple[float, float, float]],
    ) -> None:
        """Lower a unit's power bound where its devices fell short of it.

        The first time by the shortfall. When the same step falls short again (the model moved
        the energy to earlier steps, draining the members further), by a secant step through
        the last two (power, shortfall) pairs, or by twice the last cut if the shortfall did
        not shrink; this closes the gap in a few rounds instead of creeping towards it.
        """
        for u, t in zip(*np.nonzero(short > self.params.tolerance_w), strict=True):
            charging = bool(flows.bat_net_w[u, t] < 0)
            now = flows.bat_charge_w[u, t] if charging else flows.bat_discharge_w[u, t]
            cut = float(short[u, t])
            before = history.get((u, t))
            if before is not None:
                now_before, short_before, cut_before = before
                if short_before > cut and now_before > now:
                    cut = max(cut, cut * (now_before - now) / (short_before - cut))
                else:
                    cut = max(cut, 2.0 * cut_before)
            history[(u, t)] = (now, float(short[u, t]), cut)
            value = max(now - cut, 0.0)
            if charging:
                data.bat_charge_max_w[u, t] = value
            else:
                data.bat_discharge_max_w[u, t] = value
        set_soc_bounds(data)  # moves only for a unit recovering into its window
        built.solver.refresh_battery_limits(data)

    def _fallback(self, problem: Problem, reason: str, timer: _Timer) -> Plan:
        tic = time.perf_counter()
        flows = fallback_flows(problem.data)
        dispatch = split(problem, flows, self.params.tolerance_w)
        timer.split_s += time.perf_counter() - tic
        return self._finish(
            problem,
            flows,
            dispatch,
            timer,
            [],
            {
                "status": "fallback",
                "objective_eur": None,
                "reused_model": False,
                "n_variables": 0,
                "n_constraints": 0,
                "fallback_reason": reason,
            },
        )

    def _finish(
        self,
        problem: Problem,
        flows: Flows,
        dispatch: DeviceDispatch,
        timer: _Timer,
        warnings: list[str],
        fields: dict[str, Any],
        duals: lp_duals.Duals | None = None,
    ) -> Plan:
        tic = time.perf_counter()
        short = dispatch.bat_shortfall_w
        if short.max(initial=0.0) > self.params.tolerance_w:
            energy = short.sum() * problem.data.dt_h
            warnings.append(
                f"devices could not follow their units by {energy:.0f} Wh in total; "
                "the grid takes the difference"
            )
        if short.max(initial=0.0) > 0.0:  # below the tolerance too: keep balances exact
            flows = absorb_shortfall(problem, flows, dispatch)
        frame = plan_frame(problem, flows, dispatch, duals)
        units = unit_frame(problem, flows, short)
        timer.split_s += time.perf_counter() - tic
        info = SolveInfo(
            mode=problem.mode,
            cost_eur=summarise(frame, problem, dispatch),
            build_s=timer.build_s,
            solve_s=timer.solve_s,
            split_s=timer.split_s,
            total_s=timer.total(),
            n_units={"battery": problem.data.n_bat, "pv": problem.data.n_pv},
            slacks=used_slacks(frame, problem.data.dt_h, self.params.tolerance_w),
            warnings=tuple(problem.warnings + warnings),
            **fields,
        )
        return Plan(frame=frame, info=info, units=units)


def split(
    problem: Problem,
    flows: Flows,
    tolerance_w: float,
    previous: tuple[Flows, DeviceDispatch] | None = None,
) -> DeviceDispatch:
    """Split unit flows over the devices (see :mod:`optimizer.split`).

    previous : the flows and split of the round before (same problem); only what changed
        is split again, with the same result as a split from scratch.
    """
    before = None
    if previous is not None:
        last, done = previous
        before = (last.bat_net_w, done.bat_w, done.bat_soc_wh, done.bat_shortfall_w)
    bat_w, soc, short = split_batteries(
        flows.bat_net_w,
        problem.bat_clusters,
        problem.batteries,
        problem.data.dt_h,
        before,
        problem.bat_charge_max_w,
    )
    if previous is not None and np.array_equal(previous[0].pv_w, flows.pv_w):
        pv_w, limit = previous[1].pv_w, previous[1].pv_limit_w
    else:
        pv_w, limit = split_pv(
            flows.pv_w,
            problem.pv_clusters,
            problem.pv_avail_w,
            problem.pv_min_w,
            problem.pv.rated_w,
            tolerance_w,
            (problem.data.pv_min_w, problem.data.pv_avail_w),
        )
    return DeviceDispatch(
        bat_w=bat_w, bat_soc_wh=soc, pv_w=pv_w, pv_limit_w=limit, bat_shortfall_w=short
    )


def plan_cost(problem: Problem, flows: Flows, dispatch: DeviceDispatch) -> float:
    """The objective of the plan these unit flows and their split make, EUR: what
    ``plan.info.cost_eur["objective_eur"]`` of that plan would be."""
    if dispatch.bat_shortfall_w.max(initial=0.0) > 0.0:
        flows = absorb_shortfall(problem, flows, dispatch, unit_soc=False)
    return plan_objective_eur(
        problem.data, problem.batteries, flows, dispatch.bat_w, dispatch.bat_soc_wh
    )


def absorb_shortfall(
    problem: Problem, flows: Flows, dispatch: DeviceDispatch, unit_soc: bool = True
) -> Flows:
    """Make the units' flows what their devices do; the grid (or its slacks) takes the rest.

    unit_soc : also sum the devices' energy into the units' (False keeps the units' own,
        for pricing a round: the price takes the devices' energy)
    """
    d = problem.data
    net = problem.bat_clusters.sum(dispatch.bat_w)
    delta = (net - flows.bat_net_w).sum(axis=0)
    exchange = (
        flows.grid_import_w - flows.grid_export_w + flows.el_unserved_w - flows.el_spilled_w - delta
    )
    imp = np.clip(exchange, 0.0, d.import_cap_w)
    exp = np.clip(-exchange, 0.0, d.export_cap_w)
    return Flows(
        **{
            **flows.__dict__,
            "bat_charge_w": np.maximum(-net, 0.0),
            "bat_discharge_w": np.maximum(net, 0.0),
            "bat_soc_wh": (
                problem.bat_clusters.sum(dispatch.bat_soc_wh) if unit_soc else flows.bat_soc_wh
            ),
            "grid_import_w": imp,
            "grid_export_w": exp,
            "el_unserved_w": np.maximum(exchange - imp, 0.0),
            "el_spilled_w": np.maximum(-exchange - exp, 0.0),
        }
    )


def plan(
    site: Site,
    state: State,
    forecast: pd.DataFrame,
    now: object,
    options: SolveOptions | None = None,
    params: OptimizerParams | None = None,
) -> Plan:
    """One plan without keeping a model (builds, solves, splits; see :class:`Planner`)."""
    return Planner(site, params, options).plan(state, forecast, now)
