"""One replayed day: every strategy on the same truth, from the same starting state.

Days are independent: each starts from the site file's initial state (each battery's
``soc_initial_pct``, the store's ``store_initial_pct``), so days can run in any order and on
any worker and give the same figures. The optimiser's terminal value keeps plans from
emptying the stores at a horizon's end, and the KPIs value what each strategy leaves stored
(:mod:`vpp.replay.kpi`). Each day gets a fresh :class:`~optimizer.planner.Planner`: it keeps
its model across the day's plans, and starting each day from the same empty solver keeps the
result independent of which days a worker ran before (a warm start from another day's basis
can pick another of several equally cheap plans).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from optimizer.planner import Planner
from vpp.config import Site
from vpp.control.inputs import HISTORY
from vpp.forecast import Mode
from vpp.recorder.export import day_bounds
from vpp.replay import plant
from vpp.replay.baselines import (
    CONTROLLER,
    NO_CONTROL,
    ORACLE,
    SELF_CONSUMPTION,
    STRATEGIES,
    run_oracle,
    run_rule_strategy,
)
from vpp.replay.follow import Follower
from vpp.replay.kpi import compare, derived, strategy_kpis
from vpp.replay.layout import PlantInputs, PlantParams, plant_inputs, plant_params
from vpp.replay.loop import LoopContext, every_step, run_loop
from vpp.replay.trace import Trace

_warm = False


@dataclass(frozen=True)
class ReplayOptions:
    """How to replay: the controller's forecasts, and an optional cut of each day."""

    #: ``asof``: forecasts from what was known then; ``perfect``: from the truth itself.
    mode: Mode = "asof"
    #: Replay only the first steps of each day (tests and quick looks); None = whole days.
    max_steps: int | None = None
    #: Keep each strategy's per-device trace in the result (memory: keep off for long runs).
    keep_traces: bool = False


@dataclass(frozen=True)
class DayJob:
    """Everything a worker needs for one day; ``raw`` spans the history before the day and
    the planning horizon after it (see :func:`raw_window`)."""

    site: Site
    day: date
    raw: pd.DataFrame
    options: ReplayOptions = ReplayOptions()


@dataclass
class DayResult:
    """A replayed day: each strategy's steps (site totals, prices, the plan's values; see
    :meth:`Trace.frame`) and figures, and where the time went [s]. ``traces`` holds the
    per-device traces only when :attr:`ReplayOptions.keep_traces` asked for them."""

    day: date
    frames: dict[str, pd.DataFrame]
    kpis: dict[str, dict[str, float]]
    timings: dict[str, float] = field(default_factory=dict)
    #: Why plans failed, ``<strategy>: <reason>``, each reason once.
    notes: list[str] = field(default_factory=list)
    traces: dict[str, Trace] | None = None
    inputs: PlantInputs | None = None


def day_index(site: Site, day: date) -> pd.DatetimeIndex:
    """UTC quarter hours of a local calendar day of the site (92, 96 or 100 of them)."""
    start, end = day_bounds(day, site.site.timezone)
    return pd.date_range(start, end, freq="15min", inclusive="left", name="time")


def raw_window(site: Site, first: date, last: date) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Raw rows days ``first..last`` need: 8 days of history before, the horizon after."""
    start, _ = day_bounds(first, site.site.timezone)
    _, end = day_bounds(last, site.site.timezone)
    lead = timedelta(hours=site.optimizer.horizon_h + 1)
    return start - pd.Timedelta(HISTORY), end + pd.Timedelta(lead)


def warm_up() -> None:
    """Load the compiled plant kernels once per process (the first day should not pay)."""
    global _warm
    if not _warm:
        plant.warm_up()
        _warm = True


def replay_day(job: DayJob) -> DayResult:
    """Replay one day with every strategy (see :mod:`vpp.replay.baselines`)."""
    tic = time.perf_counter()
    warm_up()
    site, opts = job.site, job.options
    index = day_index(site, job.day)
    missing = index.difference(pd.DatetimeIndex(job.raw.index))
    if len(missing):
        raise ValueError(
            f"{job.day}: no input data for {len(missing)} quarter hour(s), "
            f"first {missing[0].isoformat()}"
        )
    params = plant_params(site)
    inputs = plant_inputs(site, job.raw.loc[index])
    traces, timings = run_strategies(job, params, inputs)
    kpis = {name: strategy_kpis(trace, site, params, inputs) for name, trace in traces.items()}
    for row in kpis.values():
        row.update(derived(row))
    compare(kpis)
    timings["total_s"] = time.perf_counter() - tic
    frames = {name: trace.frame(inputs) for name, trace in traces.items()}
    notes = [f"{name}: {note}" for name, trace in traces.items() for note in trace.notes]
    result = DayResult(day=job.day, frames=frames, kpis=kpis, timings=timings, notes=notes)
    if opts.keep_traces:
        result.traces, result.inputs = traces, inputs
    return result


def run_strategies(
    job: DayJob, params: PlantParams, inputs: PlantInputs
) -> tuple[dict[str, Trace], dict[str, float]]:
    """Every strategy's trace (in :data:`STRATEGIES` order) and the controller's timings [s].

    The oracle plans first, so the day's planner builds its model once and the controller's
    96 plans reuse it.
    """
    opts = job.options
    traces = {
        name: run_rule_strategy(name, params, inputs, opts.max_steps)
        for name in (NO_CONTROL, SELF_CONSUMPTION)
    }
    tic = time.perf_counter()
    ctx = LoopContext(
        site=job.site,
        params=params,
        inputs=inputs,
        raw=job.raw,
        planner=Planner(job.site),
        follower=Follower(job.site, params),
    )
    traces[ORACLE] = run_oracle(ctx, opts.max_steps)
    oracle_s = time.perf_counter() - tic
    traces[CONTROLLER] = run_loop(ctx, opts.mode, every_step, opts.max_steps)
    stats = traces[CONTROLLER].stats
    timings = {f"controller_{k}": v for k, v in stats.items() if k.endswith("_s")}
    timings["oracle_s"] = oracle_s
    return {name: traces[name] for name in STRATEGIES}, timings
