"""Replayed days: every strategy on the same truth, alone or in chains of days.

A day on its own starts every strategy from the site file's initial state (each battery's
``soc_initial_pct``, the store's ``store_initial_pct``). Days in a chain
(:func:`replay_chain`, ``ReplayOptions.chain_days``) run one after the other, and each
strategy starts a day where it ended the day before, as the live controller would: a store
filled in the evening for the next morning is then used, not just valued. Either way a chain
(or a lone day) depends on nothing outside it, so chains run in any order on any worker and
give the same figures. The optimiser's terminal value keeps plans from emptying the stores at
a horizon's end, and the KPIs value what each strategy leaves stored
(:mod:`vpp.replay.kpi`). Each day gets a fresh :class:`~optimizer.planner.Planner`: it keeps
its model across the day's plans, and starting each day from the same empty solver keeps the
result independent of which days a worker ran before (a warm start from another day's basis
can pick another of several equally cheap plans).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd

from optimizer.planner import Planner
from vpp.control.inputs import HISTORY
from vpp.core.site import Site
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
from vpp.replay.kpi import StoragePrices, compare, derived, storage_prices, strategy_kpis
from vpp.replay.layout import F64, PlantInputs, PlantParams, plant_inputs, plant_params
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
    #: Days per chain: consecutive days of a chain carry each strategy's stored energy from
    #: one day to the next; chains start from the site file's initial state and run in
    #: parallel. 1 = every day on its own.
    chain_days: int = 7

    def __post_init__(self) -> None:
        if self.chain_days < 1:
            raise ValueError(f"chain_days must be at least 1, not {self.chain_days}")


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
    #: Where each strategy ended the day (what the next day of a chain starts from).
    ends: dict[str, Stored] = field(default_factory=dict)


@dataclass(frozen=True)
class Stored:
    """A strategy's stored energy at a day's end, and what it was worth then."""

    soc_wh: F64
    store_wh: float
    prices: StoragePrices


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


def replay_chain(jobs: list[DayJob]) -> list[DayResult]:
    """Replay consecutive days, each strategy starting where it ended the day before."""
    results: list[DayResult] = []
    for job in jobs:
        results.append(replay_day(job, results[-1].ends if results else None))
    return results


def replay_day(job: DayJob, start: Mapping[str, Stored] | None = None) -> DayResult:
    """Replay one day with every strategy (see :mod:`vpp.replay.baselines`), each from its
    ``start`` (default: the site file's initial state)."""
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
    starts = {
        name: (
            dataclasses.replace(params, soc0_wh=start[name].soc_wh, store0_wh=start[name].store_wh)
            if start is not None
            else params
        )
        for name in STRATEGIES
    }
    traces, timings = run_strategies(job, starts, inputs)
    kpis = {
        name: strategy_kpis(
            trace, site, starts[name], inputs, start[name].prices if start is not None else None
        )
        for name, trace in traces.items()
    }
    for row in kpis.values():
        row.update(derived(row))
    compare(kpis)
    timings["total_s"] = time.perf_counter() - tic
    frames = {name: trace.frame(inputs) for name, trace in traces.items()}
    notes = [f"{name}: {note}" for name, trace in traces.items() for note in trace.notes]
    result = DayResult(day=job.day, frames=frames, kpis=kpis, timings=timings, notes=notes)
    prices = storage_prices(site, params, inputs, steps=opts.max_steps)
    result.ends = {
        name: Stored(trace.bat_soc_wh[-1].copy(), float(trace.out[-1, plant.O_STORE]), prices)
        for name, trace in traces.items()
    }
    if opts.keep_traces:
        result.traces, result.inputs = traces, inputs
    return result


def run_strategies(
    job: DayJob, params: Mapping[str, PlantParams], inputs: PlantInputs
) -> tuple[dict[str, Trace], dict[str, float]]:
    """Every strategy's trace (in :data:`STRATEGIES` order) and the controller's timings [s];
    ``params`` per strategy (they differ in their starting energies only).

    The oracle plans first, so the day's planner builds its model once and the controller's
    96 plans reuse it.
    """
    opts = job.options
    traces = {
        name: run_rule_strategy(name, params[name], inputs, opts.max_steps)
        for name in (NO_CONTROL, SELF_CONSUMPTION)
    }
    tic = time.perf_counter()
    ctx = LoopContext(
        site=job.site,
        params=params[ORACLE],
        inputs=inputs,
        raw=job.raw,
        planner=Planner(job.site),
        follower=Follower(job.site, params[ORACLE]),
    )
    traces[ORACLE] = run_oracle(ctx, opts.max_steps)
    oracle_s = time.perf_counter() - tic
    ctx = dataclasses.replace(ctx, params=params[CONTROLLER])
    traces[CONTROLLER] = run_loop(ctx, opts.mode, every_step, opts.max_steps)
    stats = traces[CONTROLLER].stats
    timings = {f"controller_{k}": v for k, v in stats.items() if k.endswith("_s")}
    timings["oracle_s"] = oracle_s
    return {name: traces[name] for name in STRATEGIES}, timings
