"""The closed loop: forecast, plan, dispatch and plant, one quarter hour after another.

At each step start ``t`` the loop does what the live controller's jobs do at that moment:
the forecast from the history as known at ``t`` (:func:`vpp.forecast.forecast` over the same
window ``[t - 8 days, t + horizon + 1 h)`` that :class:`vpp.control.inputs.InputProvider`
hands it), scaled to the site, then ``Planner.plan`` from the plant's state, then the plan's
row for ``t`` through the dispatch and safety code (:mod:`vpp.replay.follow`), then the plant
simulator over the quarter hour with what really happened.

While a plan is in force the quarter hour runs in two parts, as in ``vpp run``: the first
``run.correction_interval_s`` on the plan's setpoints, then, from what the meters show at
that moment, the intra-quarter correction (:meth:`Follower.correct`) for the rest of it.
The heat side does not take part in the correction and moves on in one piece.

As in ``vpp run``, a failed plan (a forecast without estimates, e.g. in the first days of a
file when there is no history yet) keeps the previous plan in force while it covers the step;
with no plan at all the devices run on their own defaults (:func:`follow.device_defaults`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from optimizer.inputs import State, forecast_from_raw
from optimizer.plan import Plan
from optimizer.planner import Planner
from vpp.control.dispatch import plan_row
from vpp.control.inputs import HISTORY
from vpp.core.site import Site
from vpp.data.schema import STEP
from vpp.forecast import Mode, forecast
from vpp.replay import plant as k
from vpp.replay.follow import Follower, PlantReading, Setpoints
from vpp.replay.layout import PlantInputs, PlantParams
from vpp.replay.trace import Trace, planned_values

#: What the loop counts (and times, ``*_s`` [s]) per strategy and day.
STAT_NAMES = (
    "plans",
    "fallback_plans",
    "failed_plans",
    "unplanned_steps",
    "clamped_setpoints",
    "corrected_steps",
    "forecast_s",
    "plan_s",
    "dispatch_s",
    "plant_s",
)
#: Decides before each step whether to plan anew: (plan in force or None, step start).
Replan = Callable[[Plan | None, pd.Timestamp], bool]
#: The history the live controller fetches reaches this far past the horizon.
_TAIL = timedelta(hours=1)
#: Raw columns that :func:`optimizer.inputs.forecast_from_raw` does not read. Each column is
#: forecast on its own, so leaving them out changes nothing the planner sees and saves a
#: third of the forecast time.
UNUSED_COLUMNS = ("ghi_w_per_m2", "dhi_w_per_m2")


def every_step(plan: Plan | None, when: pd.Timestamp) -> bool:
    """The controller re-plans every quarter hour."""
    return True


def when_uncovered(plan: Plan | None, when: pd.Timestamp) -> bool:
    """Plan only when no plan covers the step (the oracle: one plan per horizon)."""
    return plan is None or when not in plan.frame.index


@dataclass
class LoopContext:
    """One replayed day of one site: its truth, its raw history and the planner to use."""

    site: Site
    params: PlantParams
    inputs: PlantInputs
    #: Raw input rows from 8 days before the day to its end plus the planning horizon.
    raw: pd.DataFrame
    planner: Planner
    follower: Follower


def raw_forecast(
    raw: pd.DataFrame, when: pd.Timestamp, horizon: timedelta, mode: Mode
) -> pd.DataFrame:
    """The raw-schema forecast made at ``when``, from the window the live controller uses.

    In ``perfect`` mode near the end of the data the horizon is cut to the data; the planner
    then holds the last values (and says so in the plan's warnings).
    """
    index = pd.DatetimeIndex(raw.index)
    if mode == "perfect":
        horizon = min(horizon, pd.Timedelta(index[-1] + STEP - when).to_pytimedelta())
    window = raw[(index >= when - HISTORY) & (index < when + horizon + _TAIL)]
    window = window.drop(columns=[c for c in UNUSED_COLUMNS if c in window.columns])
    return forecast(window, when.to_pydatetime(), horizon, mode=mode)


def make_plan(
    ctx: LoopContext, mode: Mode, when: pd.Timestamp, soc: np.ndarray, store_wh: float, trace: Trace
) -> Plan | None:
    """A plan from the plant's state at ``when``; None if the inputs cannot be planned."""
    horizon = timedelta(hours=ctx.site.optimizer.horizon_h)
    stats = trace.stats
    tic = time.perf_counter()
    try:
        fc = forecast_from_raw(ctx.site, raw_forecast(ctx.raw, when, horizon, mode))
    except ValueError as exc:  # perfect forecast beyond the data
        _failed(trace, exc)
        return None
    finally:
        stats["forecast_s"] += time.perf_counter() - tic
    state = State(
        battery_soc_wh=dict(zip(ctx.params.battery_ids, map(float, soc), strict=True)),
        store_wh=store_wh,
    )
    tic = time.perf_counter()
    try:
        plan = ctx.planner.plan(state, fc, when)
    except ValueError as exc:  # ForecastError: a required column without any estimate
        _failed(trace, exc)
        return None
    finally:
        stats["plan_s"] += time.perf_counter() - tic
    stats["plans"] += 1
    stats["fallback_plans"] += plan.info.status != "optimal"
    return plan


def _failed(trace: Trace, exc: Exception) -> None:
    trace.stats["failed_plans"] += 1
    if str(exc) not in trace.notes:
        trace.notes.append(str(exc))


def run_loop(ctx: LoopContext, mode: Mode, replan: Replan, steps: int | None = None) -> Trace:
    """Run the closed loop over the day's steps (the first ``steps`` of them if given)."""
    p = ctx.params
    n = len(ctx.inputs.index) if steps is None else min(steps, len(ctx.inputs.index))
    trace = Trace.empty(ctx.inputs.index[:n], len(p.battery_ids), len(p.pv_ids), True)
    trace.stats.update(dict.fromkeys(STAT_NAMES, 0.0))
    soc, store = p.soc0_wh.copy(), np.array([p.store0_wh])
    plan: Plan | None = None
    for t in range(n):
        when = pd.Timestamp(trace.index[t])
        if replan(plan, when):
            plan = make_plan(ctx, mode, when, soc, float(store[0]), trace) or plan
        row = plan_row(plan.frame, when.to_pydatetime()) if plan is not None else None
        _step(ctx, trace, t, row, soc, store)
    return trace


def _step(
    ctx: LoopContext,
    trace: Trace,
    t: int,
    row: pd.Series | None,
    soc: np.ndarray,
    store: np.ndarray,
) -> None:
    """Dispatch the plan's row for step ``t`` and move the plant on by that step."""
    p, inp, stats = ctx.params, ctx.inputs, trace.stats
    tic = time.perf_counter()
    stats["unplanned_steps"] += row is None
    when = pd.Timestamp(trace.index[t]).to_pydatetime()
    sp = ctx.follower.setpoints(row, when, _reading(trace, t, soc), inp.inp[t])
    stats["clamped_setpoints"] += sp.clamped
    trace.planned[t] = planned_values(row)
    trace.setpoints[t] = np.concatenate([sp.bat_w, sp.pv_limit_w, [sp.hp_w]])
    stats["dispatch_s"] += time.perf_counter() - tic
    first_s = min(ctx.site.run.correction_interval_s, p.dt_h * 3600.0)
    if row is None or first_s >= p.dt_h * 3600.0:
        tic = time.perf_counter()
        k.plant_step(
            p.bat,
            p.pv_rated_w,
            p.heat,
            inp.pv_avail_w[t],
            inp.inp[t],
            sp.bat_w,
            sp.pv_limit_w,
            sp.hp_w,
            soc,
            store,
            trace.bat_w[t],
            trace.pv_w[t],
            trace.out[t],
        )
        trace.bat_ch_w[t] = np.maximum(-trace.bat_w[t], 0.0)
        stats["plant_s"] += time.perf_counter() - tic
    else:
        _corrected_step(ctx, trace, t, row, sp, first_s, soc, store)
    trace.bat_soc_wh[t] = soc


#: Output columns the electric side writes that are mean powers (merged by time share).
_ELECTRIC_MEANS = [k.O_PV, k.O_PV_AVAIL, k.O_LOAD, k.O_BAT, k.O_BAT_CH, k.O_BAT_DIS, k.O_GRID]


def _corrected_step(
    ctx: LoopContext,
    trace: Trace,
    t: int,
    row: pd.Series,
    sp: Setpoints,
    first_s: float,
    soc: np.ndarray,
    store: np.ndarray,
) -> None:
    """Step ``t`` in two parts: ``first_s`` [s] on ``sp``, the rest after a correction.

    The heat side runs over the whole step (its setpoint is not corrected); the electric
    side runs each part with its own length, and the step's flows are the time-weighted
    means of the parts (energies: the state at the end).
    """
    p, inp, stats = ctx.params, ctx.inputs, trace.stats
    dt_s = p.dt_h * 3600.0
    share = first_s / dt_s
    first, rest = p.heat.copy(), p.heat.copy()
    first[k.H_DT], rest[k.H_DT] = first_s / 3600.0, p.dt_h - first_s / 3600.0
    tic = time.perf_counter()
    out = trace.out[t]
    k.heat_step(p.heat, inp.inp[t], sp.hp_w, store, out)
    out_a = out.copy()
    bat_a, pv_a = np.zeros(len(soc)), np.zeros(len(p.pv_rated_w))
    k.electric_step(
        p.bat, p.pv_rated_w, first, inp.pv_avail_w[t], inp.inp[t], sp.bat_w, sp.pv_limit_w,
        soc, bat_a, pv_a, out_a,
    )  # fmt: skip
    stats["plant_s"] += time.perf_counter() - tic
    tic = time.perf_counter()
    when = pd.Timestamp(trace.index[t]).to_pydatetime() + timedelta(seconds=first_s)
    reading = PlantReading(soc.copy(), bat_a, pv_a, float(out[k.O_HP_EL]), float(out_a[k.O_GRID]))
    after = ctx.follower.correct(row, when, reading, sp, dt_s - first_s)
    changed = not (
        np.array_equal(after.bat_w, sp.bat_w) and np.array_equal(after.pv_limit_w, sp.pv_limit_w)
    )
    stats["corrected_steps"] += changed
    stats["clamped_setpoints"] += after.clamped
    stats["dispatch_s"] += time.perf_counter() - tic
    tic = time.perf_counter()
    bat_b, pv_b = trace.bat_w[t], trace.pv_w[t]
    k.electric_step(
        p.bat, p.pv_rated_w, rest, inp.pv_avail_w[t], inp.inp[t], after.bat_w,
        after.pv_limit_w, soc, bat_b, pv_b, out,
    )  # fmt: skip
    trace.bat_ch_w[t] = share * np.maximum(-bat_a, 0.0) + (1 - share) * np.maximum(-bat_b, 0.0)
    bat_b *= 1 - share
    bat_b += share * bat_a
    pv_b *= 1 - share
    pv_b += share * pv_a
    out[_ELECTRIC_MEANS] = share * out_a[_ELECTRIC_MEANS] + (1 - share) * out[_ELECTRIC_MEANS]
    stats["plant_s"] += time.perf_counter() - tic


def _reading(trace: Trace, t: int, soc: np.ndarray) -> PlantReading:
    """What a poll at the start of step ``t`` reads: SoC now, powers of step ``t - 1``."""
    if t == 0:
        zeros = np.zeros(trace.bat_w.shape[1])
        return PlantReading(soc.copy(), zeros, np.zeros(trace.pv_w.shape[1]), 0.0, None)
    prev = trace.out[t - 1]
    return PlantReading(
        soc.copy(),
        trace.bat_w[t - 1],
        trace.pv_w[t - 1],
        float(prev[k.O_HP_EL]),
        float(prev[k.O_GRID]),
    )
