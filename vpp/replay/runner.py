"""Replayed days: every strategy on the same truth, alone or in chains of days.

A day on its own starts every strategy from the site file's initial state (each battery's
``soc_initial_pct``, the store's ``store_initial_pct``). Days in a chain
(:func:`replay_chain`, ``ReplayOptions.chain_days``) run one after the other, and each
strategy starts a day where it ended the day before, as the live controller would: a store
filled in the evening for the next morning is then used, not just valued. Either way a chain
(or a lone day) depends on nothing outside it, so chains run in any order on any worker and
give the same figures. The optimiser's terminal value keeps plans from emptying the stores at
a horizon's end, and the KPIs value what each strategy leaves stored
(:mod:`vpp.replay.kpi`).

The controller runs a chain of consecutive days in one go, as ``vpp run`` runs on over
midnight (:func:`vpp.replay.drive.run_controller`: the live controller with one planner for
the whole chain); the baselines move on day by day. Each chain starts with a planner that
plans as a fresh :class:`~optimizer.planner.Planner` would, to the bit, so its result does not
depend on which chains a worker ran before (a warm start from another basis can pick another
of several equally cheap plans); the worker keeps one built model and only resets it
(:meth:`~optimizer.planner.Planner.reset`, :func:`planner_for`), also for the oracle's plan of
each day, which is made once the controller has run through the chain.
With ``max_steps`` (quick looks) the days are cut, so the controller runs each day on its own
from where it ended the day before.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from optimizer.params import DETERMINISTIC
from optimizer.planner import Planner
from vpp.control.inputs import HISTORY
from vpp.core.site import Site
from vpp.data.clouds import CloudParams
from vpp.forecast import ForecastSettings, Mode, heat_error_history, issued_history
from vpp.recorder.export import day_bounds
from vpp.replay import plant
from vpp.replay.baselines import (
    BOUND,
    CONTROLLER,
    NO_CONTROL,
    ORACLE,
    SELF_CONSUMPTION,
    STRATEGIES,
    run_oracle,
    run_rule_strategy,
    signal_caps,
)
from vpp.replay.bound import Bound, BoundSolve, limits_w, pv_interval_w
from vpp.replay.drive import day_trace, run_controller
from vpp.replay.kpi import (
    StoragePrices,
    compare,
    derived,
    shares,
    storage_prices,
    strategy_kpis,
)
from vpp.replay.layout import F64, PlantInputs, PlantParams, plant_inputs, plant_params
from vpp.replay.trace import Trace
from vpp.signals.model import Signal

_warm = False
#: This process's planner per site, reset before each use (:func:`planner_for`).
_planners: dict[str, Planner] = {}
#: One quarter hour [ns].
STEP_NS = 15 * 60 * 10**9


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
    #: Start a new chain on the first of every month, so that a month's figures are those
    #: of whole chains and its bound a bound on the month (else a chain across a month's
    #: end splits the bound's cost by days, and the bound may pay on one side of the end
    #: for what it saves on the other).
    month_chains: bool = False
    #: Recorded grid-operator signals (:func:`vpp.signals.recorded.read_signals`), applied
    #: by the controller like live ones; the law's rules apply in any case.
    signals: tuple[Signal, ...] = ()
    #: PV per inverter from the minute cloud process and each roof's orientation
    #: (:mod:`vpp.data.clouds`), seeded; None: every inverter follows the regional profile,
    #: interpolated inside the quarter hour.
    clouds: CloudParams | None = None

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
    """Raw rows days ``first..last`` need: 8 days of history before (the learned forecasts'
    training window with a site's ``[forecast] method = "learned"``, the days the issued PV
    forecasts are scored on with ``pv = "issued"``, the days the heat forecast's level is
    scored on with ``weather = "synthetic"``), the horizon after (and
    the store reserve's look-ahead with synthetic weather forecasts, whose issues are made
    from the observed temperature)."""
    start, _ = day_bounds(first, site.site.timezone)
    _, end = day_bounds(last, site.site.timezone)
    lead = timedelta(hours=site.optimizer.horizon_h + 1)
    if site.forecast.weather == "synthetic":  # the issued forecasts' truth past the horizon
        lead += timedelta(hours=site.forecast.reserve_lookahead_h + 6)
    back = pd.Timedelta(HISTORY)
    if site.forecast.method == "learned":
        back = max(back, pd.Timedelta(days=site.forecast.train_days + 9))
    if site.forecast.pv == "issued":  # the days the issued PV forecasts are scored on
        back = max(back, issued_history(ForecastSettings()))
    if site.forecast.weather == "synthetic":  # the days the heat forecast's level is scored on
        back = max(back, heat_error_history(ForecastSettings()))
    return start - back, end + pd.Timedelta(lead)


def warm_up() -> None:
    """Load the compiled plant kernels once per process (the first day should not pay)."""
    global _warm
    if not _warm:
        plant.warm_up()
        _warm = True


def planner_for(site: Site) -> Planner:
    """A planner for ``site`` that plans as a new one would: the one this process used last
    for the site, reset, so that its model is not built again (the controller's plans and
    the oracle's have the same structure unless the horizon is cut at the data's end).

    It solves with :data:`~optimizer.params.DETERMINISTIC`: a work limit instead of the
    site's wall-clock limit, so a replay's plans do not depend on the machine's load."""
    key = site.model_dump_json()
    planner = _planners.get(key)
    if planner is None:
        if len(_planners) >= 2:  # another site: keep memory bounded
            _planners.clear()
        planner = _planners[key] = Planner(site, options=DETERMINISTIC)
    else:
        planner.reset()
    return planner


@dataclass(frozen=True)
class _Day:
    """A day's truth, cut to ``max_steps``."""

    job: DayJob
    inputs: PlantInputs

    @property
    def steps(self) -> int:
        return len(self.inputs.index)


def _prepare(job: DayJob) -> _Day:
    index = day_index(job.site, job.day)
    missing = index.difference(pd.DatetimeIndex(job.raw.index))
    if len(missing):
        raise ValueError(
            f"{job.day}: no input data for {len(missing)} quarter hour(s), "
            f"first {missing[0].isoformat()}"
        )
    if job.options.max_steps is not None:
        index = index[: job.options.max_steps]
    return _Day(job, plant_inputs(job.site, job.raw.loc[index], clouds=job.options.clouds))


def replay_day(job: DayJob, start: Mapping[str, Stored] | None = None) -> DayResult:
    """Replay one day with every strategy (see :mod:`vpp.replay.baselines`), each from its
    ``start`` (default: the site file's initial state)."""
    return replay_chain([job], start)[0]


def replay_chain(jobs: list[DayJob], start: Mapping[str, Stored] | None = None) -> list[DayResult]:
    """Replay consecutive days, each strategy starting where it ended the day before (the
    first day from ``start``, default the site file's initial state)."""
    warm_up()
    tic = time.perf_counter()
    days = [_prepare(job) for job in jobs]
    site = jobs[0].site
    params = plant_params(site)
    first = _starts(params, start)[CONTROLLER]
    controller = _controller_days(days, first)
    per_day_s = (time.perf_counter() - tic) / len(days)
    results: list[DayResult] = []
    ends = start
    for day, (trace, timings) in zip(days, controller, strict=True):
        result = _replay_day(day, params, ends, trace, timings, per_day_s)
        results.append(result)
        ends = result.ends
    tic = time.perf_counter()
    _add_bound(days, params, start, results)
    for result in results:
        result.timings["bound_s"] = (time.perf_counter() - tic) / len(results)
    return results


def _joined(days: list[_Day]) -> PlantInputs:
    """The days' quarter hours one after the other."""
    return PlantInputs(
        index=pd.DatetimeIndex(np.concatenate([d.inputs.index for d in days])),
        inp=np.vstack([d.inputs.inp for d in days]),
        pv_avail_w=np.vstack([d.inputs.pv_avail_w for d in days]),
        pv_w_per_kwp=np.concatenate([d.inputs.pv_w_per_kwp for d in days]),
        pv_peak_w=days[0].inputs.pv_peak_w,
        pv_minute_w=(
            None
            if days[0].inputs.pv_minute_w is None
            else np.vstack([d.inputs.pv_minute_w for d in days])  # type: ignore[misc]
        ),
    )


def _add_bound(
    days: list[_Day],
    params: PlantParams,
    start: Mapping[str, Stored] | None,
    results: list[DayResult],
) -> None:
    """Solve the bound (:mod:`vpp.replay.bound`) over the chain once for each strategy's end
    state and add to every day: each strategy's ``bound_cost_eur`` (what the bound paid on
    the day when ending the chain where the strategy ended) and ``regret_eur``, the bound's
    own row (ending where the controller ended), and the shares (:func:`shares`).

    The plant has no grid limit, so neither has the bound; the controller keeps to the
    site's. Once more for the controller's end, the bound held to those limits (widened to
    the controller's own exchange where it went past them, :func:`limits_w`) gives the
    controller's ``grid_limits_eur``: what the bound gains on the day by going past them,
    a part of the regret no operation that keeps to the limits can win back."""
    site, max_steps = days[0].job.site, days[0].job.options.max_steps
    inputs = _joined(days)
    # The grid-operator signals every strategy ran under, over the steps they cover whole.
    caps = signal_caps(site, params, inputs, days[0].job.options.signals, lenient=True)
    # The controller's plant runs a consecutive chain in one stretch, else day by day; the
    # PV interval covers both ways of interpolating inside the quarter hour.
    whole = pv_interval_w(site, params, inputs, caps.pv_w)
    parts, row = [], 0
    for d in days:
        parts.append(pv_interval_w(site, params, d.inputs, caps.pv_w[row : row + d.steps]))
        row += d.steps
    pv = (
        np.minimum(whole[0], np.concatenate([p[0] for p in parts])),
        np.maximum(whole[1], np.concatenate([p[1] for p in parts])),
    )
    starts = _starts(params, start)
    built: dict[bytes, Bound] = {}
    solves: dict[str, BoundSolve] = {}
    for name in STRATEGIES:
        first = starts[name]
        key = np.append(first.soc0_wh, first.store0_wh).tobytes()
        if key not in built:
            built[key] = Bound(site, first, inputs, pv, caps)
        end = results[-1].ends[name]
        solves[name] = built[key].solve(end.soc_wh, end.store_wh)
    own = solves[CONTROLLER]
    exchange = np.concatenate([r.frames[CONTROLLER]["grid_w"].to_numpy(float) for r in results])
    limited = Bound(site, starts[CONTROLLER], inputs, pv, caps, limits_w(site, exchange))
    end = results[-1].ends[CONTROLLER]
    kept = limited.solve(end.soc_wh, end.store_wh)
    row = 0
    for i, (day, result) in enumerate(zip(days, results, strict=True)):
        rows = slice(row, row + day.steps)
        last = i == len(days) - 1
        for name, solve in solves.items():
            figures = result.kpis[name]
            figures["bound_cost_eur"] = float(solve.step_cost_eur[rows].sum())
            figures["regret_eur"] = figures["cost_eur"] - figures["bound_cost_eur"]
            figures["bound_gap_eur"] = solve.gap_eur if last else 0.0
        result.kpis[CONTROLLER]["grid_limits_eur"] = float(
            kept.step_cost_eur[rows].sum() - own.step_cost_eur[rows].sum()
        )
        first = starts[CONTROLLER]
        if i > 0:
            first = dataclasses.replace(
                first,
                soc0_wh=own.trace.bat_soc_wh[row - 1].copy(),
                store0_wh=float(own.trace.out[row - 1, plant.O_STORE]),
            )
        opening = (
            storage_prices(site, params, days[i - 1].inputs, steps=max_steps)
            if i > 0
            else (start[CONTROLLER].prices if start is not None else None)
        )
        trace = own.trace.rows(rows)
        figures = strategy_kpis(trace, site, first, day.inputs, opening)
        figures.update(derived(figures))
        figures["bound_cost_eur"] = figures["cost_eur"]
        figures["regret_eur"] = 0.0
        figures["bound_gap_eur"] = own.gap_eur if last else 0.0
        result.kpis[BOUND] = figures
        compare(result.kpis)
        shares(result.kpis)
        result.frames[BOUND] = trace.frame(day.inputs)
        result.ends[BOUND] = Stored(
            trace.bat_soc_wh[-1].copy(),
            float(trace.out[-1, plant.O_STORE]),
            storage_prices(site, params, day.inputs, steps=max_steps),
        )
        row += day.steps


def _starts(params: PlantParams, start: Mapping[str, Stored] | None) -> dict[str, PlantParams]:
    if start is None:
        return dict.fromkeys(STRATEGIES, params)
    return {
        name: dataclasses.replace(
            params, soc0_wh=start[name].soc_wh, store0_wh=start[name].store_wh
        )
        for name in STRATEGIES
    }


def _controller_days(days: list[_Day], params: PlantParams) -> list[tuple[Trace, dict[str, float]]]:
    """The controller's trace of each day: one run over the whole chain when its days
    follow each other, else one run a day, each from where the last ended."""
    site, mode = days[0].job.site, days[0].job.options.mode
    signals = days[0].job.options.signals
    planner = planner_for(site)
    index = pd.DatetimeIndex(np.concatenate([d.inputs.index for d in days]))
    consecutive = bool((np.diff(index.asi8) == STEP_NS).all())
    if consecutive:
        inputs = _joined(days)
        raw = pd.concat([d.job.raw for d in days])
        raw = raw[~raw.index.duplicated(keep="first")]
        trace, journal, timings = run_controller(site, params, inputs, raw, mode, planner, signals)
        out, row = [], 0
        share = {name: value / len(days) for name, value in timings.items()}
        for d in days:
            out.append((day_trace(trace, journal, slice(row, row + d.steps)), share))
            row += d.steps
        return out
    out = []
    for d in days:
        trace, journal, timings = run_controller(
            site, params, d.inputs, d.job.raw, mode, planner, signals
        )
        out.append((day_trace(trace, journal, slice(0, d.steps)), timings))
        params = dataclasses.replace(
            params,
            soc0_wh=trace.bat_soc_wh[-1].copy(),
            store0_wh=float(trace.out[-1, plant.O_STORE]),
        )
    return out


def _replay_day(
    day: _Day,
    params: PlantParams,
    start: Mapping[str, Stored] | None,
    controller: Trace,
    controller_timings: dict[str, float],
    controller_s: float,
) -> DayResult:
    tic = time.perf_counter()
    job, inputs = day.job, day.inputs
    site, opts = job.site, job.options
    starts = _starts(params, start)
    caps = signal_caps(site, params, inputs, opts.signals)
    traces: dict[str, Trace] = {
        name: run_rule_strategy(name, starts[name], inputs, limits=caps.limits)
        for name in (NO_CONTROL, SELF_CONSUMPTION)
    }
    oracle_tic = time.perf_counter()
    traces[ORACLE] = run_oracle(
        site, starts[ORACLE], inputs, job.raw, planner_for(site), signals=opts.signals, caps=caps
    )
    timings = dict(controller_timings)
    timings["oracle_s"] = time.perf_counter() - oracle_tic
    traces[CONTROLLER] = controller
    traces = {name: traces[name] for name in STRATEGIES}
    kpis = {
        name: strategy_kpis(
            trace, site, starts[name], inputs, start[name].prices if start is not None else None
        )
        for name, trace in traces.items()
    }
    for row in kpis.values():
        row.update(derived(row))
    compare(kpis)
    timings["total_s"] = controller_s + time.perf_counter() - tic
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
