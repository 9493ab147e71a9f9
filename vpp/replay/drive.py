"""Replay's driver: the live controller, stepped by a manual clock over the replay plant.

:func:`run_controller` builds the same :class:`~vpp.control.controller.Controller` that ``vpp
run`` builds, with a :class:`~vpp.replay.sim.ReplayPlant` as its plant and the historic table
as its inputs (:class:`FrameInputs`), starts it as ``vpp run`` starts (poll, plan, dispatch),
and then runs its job table (:func:`vpp.control.runner.step`, one tick per poll interval)
until the end of the stretch: planning :data:`~vpp.control.schedule.PLAN_LEAD_S` before each
quarter hour from the polled state and the store estimate, dispatch at the quarter hour,
correction and keep-alive in between, one :class:`~optimizer.planner.Planner` kept for the
whole stretch. Nothing here decides anything; it only records what happened.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from optimizer.params import DETERMINISTIC
from optimizer.planner import Planner
from vpp.control.controller import Controller
from vpp.control.inputs import HISTORY, SourceProblem
from vpp.control.runner import step
from vpp.control.schedule import PLAN_LEAD_S
from vpp.control.state import ControllerState, SetpointStatus, SourceStatus
from vpp.control.store import StoreEstimate
from vpp.control.world import world_from_frame
from vpp.core.clock import ManualClock, floor_quarter
from vpp.core.site import Site
from vpp.forecast import Mode, SolarForecasts, TemperatureForecasts
from vpp.replay.layout import PlantInputs, PlantParams
from vpp.replay.sim import ReplayPlant
from vpp.replay.trace import BAND_COLUMNS, Trace, band_values, planned_values
from vpp.signals.model import Signal
from vpp.signals.watch import SignalWatch

#: Makes a metrics collector from the controller's state and clock (vpp.metrics.Metrics).
MetricsFactory = Callable[[ControllerState, ManualClock], Any]
#: What the driver counts per quarter hour.
COUNTS = ("plans", "fallback_plans", "failed_plans", "clamped_setpoints", "corrected_steps")
#: The history a plan is given reaches this far past the horizon (as the live sources do).
_TAIL = timedelta(hours=1)


class FrameInputs:
    """The historic input table as the controller's input source."""

    def __init__(self, raw: pd.DataFrame) -> None:
        self.raw = raw
        self._index = pd.DatetimeIndex(raw.index)

    def history(
        self, at: datetime, horizon: timedelta, lookback: timedelta = HISTORY
    ) -> pd.DataFrame:
        start, end = pd.Timestamp(at - lookback), pd.Timestamp(at + horizon + _TAIL)
        lo, hi = self._index.searchsorted(start), self._index.searchsorted(end)
        return self.raw.iloc[lo:hi]

    def drain_problems(self) -> list[SourceProblem]:
        return []

    def status(self) -> dict[str, SourceStatus]:
        return {}


@dataclass
class Journal:
    """What the controller did in each quarter hour of the stretch."""

    index: pd.DatetimeIndex
    counts: dict[str, np.ndarray] = field(init=False)
    planned: np.ndarray = field(init=False)
    bands: np.ndarray = field(init=False)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.index)
        self.counts = {name: np.zeros(n) for name in COUNTS}
        self.planned = planned_values(None)[None, :].repeat(n, axis=0)
        self.bands = np.full((n, len(BAND_COLUMNS)), np.nan)

    def quarter(self, when: datetime) -> int | None:
        """The row of the quarter hour containing ``when`` (None outside the stretch)."""
        step = pd.Timestamp(floor_quarter(when))
        q = int(self.index.searchsorted(step))
        return q if q < len(self.index) and self.index[q] == step else None


@contextmanager
def _quiet_controller() -> Iterator[None]:
    """The controller logs what goes wrong for an operator; in replay the same news goes to
    the journal's notes (e.g. no plan in the first days of a file, which have no history)."""
    logger = logging.getLogger("vpp.control")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_controller(
    site: Site,
    params: PlantParams,
    inputs: PlantInputs,
    raw: pd.DataFrame,
    mode: Mode = "asof",
    planner: Planner | None = None,
    signals: Sequence[Signal] = (),
    metrics: MetricsFactory | None = None,
    weather: TemperatureForecasts | None = None,
    solar: SolarForecasts | None = None,
) -> tuple[Trace, Journal, dict[str, float]]:
    """The controller over the quarter hours of ``inputs`` (consecutive), from the energies
    in ``params``, under the recorded grid-operator ``signals``; returns the plant's trace,
    the journal and the seconds spent per job. ``metrics`` makes the controller's metrics
    collector from its state and clock, as ``vpp run`` does (None: none, as in replay).
    ``weather`` and ``solar``: issued temperature and PV forecasts given to the controller
    (:attr:`Controller.weather`, :attr:`Controller.solar`); None: as the site file says
    (synthetic issues made from ``raw``)."""
    with _quiet_controller():
        return asyncio.run(
            drive_controller(
                site, params, inputs, raw, mode, planner, signals, metrics, weather, solar
            )
        )


async def drive_controller(
    site: Site,
    params: PlantParams,
    inputs: PlantInputs,
    raw: pd.DataFrame,
    mode: Mode = "asof",
    planner: Planner | None = None,
    signals: Sequence[Signal] = (),
    metrics: MetricsFactory | None = None,
    weather: TemperatureForecasts | None = None,
    solar: SolarForecasts | None = None,
) -> tuple[Trace, Journal, dict[str, float]]:
    """:func:`run_controller` inside a running event loop."""
    # The heat meter at the start shows the minute before it, as the simulated one does.
    start = pd.Timestamp(inputs.index[0]).to_pydatetime()
    heat_before = world_from_frame(site, raw).heat_demand_th_w(start)
    plant = ReplayPlant(site, params, inputs, heat_before_w=heat_before)
    clock = ManualClock(plant.start)
    journal = Journal(pd.DatetimeIndex(inputs.index))
    ctl = Controller(
        site=site,
        clock=clock,
        plant=plant,
        planner=planner or Planner(site, options=DETERMINISTIC),
        inputs=FrameInputs(raw),
        state=ControllerState(site=site, started_at=clock.now()),
        forecast_mode=mode,
        weather=weather,
        solar=solar,
    )
    ctl.store = StoreEstimate.for_site(site.heat, params.store0_wh)
    if metrics is not None:
        ctl.metrics = metrics(ctl.state, clock)
    ctl.listener = _listener(ctl, journal)
    if signals:  # recorded signals, resolved with the law's rules by the signals job
        if ctl.signal_watch is None:
            ctl.signal_watch = SignalWatch(site, [], clock.now())
        ctl.signal_watch.extra = list(signals)
    last = {"plans": 0, "fallback_plans": 0, "failed_plans": 0}

    def count_plans() -> None:
        st = ctl.state
        now = {
            "plans": st.plans_total,
            "fallback_plans": st.fallbacks_total,
            "failed_plans": st.job("plan").failures,
        }
        if now == last:
            return
        # A plan counts for the quarter hour it was made for (made ahead: the next one).
        q = journal.quarter(clock.now() + timedelta(seconds=ctl.plan_lead_s))
        if q is not None:
            for name, value in now.items():
                journal.counts[name][q] += value - last[name]
        if st.job("plan").failures > last["failed_plans"]:
            note = f"job plan failed: {st.job('plan').last_error or ''}"
            if note not in journal.notes:
                journal.notes.append(note)
        last.update(now)

    def before_jobs(now: datetime) -> None:
        count_plans()
        plant.advance_to(now)

    for name in ("poll", "plan", "dispatch"):
        await ctl.run_job(name)
    await step(ctl, clock, plant.end, before_jobs=before_jobs, plan_lead_s=PLAN_LEAD_S)
    count_plans()
    plant.advance_to(plant.end)
    for name, job in ctl.state.jobs.items():
        if job.failures and name != "plan":  # failed plans are counted and noted above
            journal.notes.append(f"job {name} failed {job.failures} time(s): {job.last_error}")
    trace = plant.trace
    timings = {f"controller_{n}_s": j.total_s for n, j in ctl.state.jobs.items()}
    timings["controller_forecast_s"] = ctl.state.forecast_seconds_total
    timings["controller_planner_s"] = ctl.state.planner_seconds_total
    timings["controller_plant_s"] = plant.busy_s
    return trace, journal, timings


def _listener(ctl: Controller, journal: Journal):  # type: ignore[no-untyped-def]
    def heard(source: str, statuses: list[SetpointStatus]) -> None:
        q = journal.quarter(ctl.clock.now())
        if q is None:
            return
        journal.counts["clamped_setpoints"][q] += sum(1 for s in statuses if s.clamped)
        if source == "correct" and statuses:
            journal.counts["corrected_steps"][q] = 1
        if source == "dispatch":
            journal.planned[q] = planned_values(ctl.current_row())
            bands = ctl.state.forecast_bands_w
            if bands is not None:
                journal.bands[q] = band_values(bands, journal.index[q])

    return heard


def day_trace(trace: Trace, journal: Journal, rows: slice) -> Trace:
    """One day (``rows`` of the stretch) of a controller run, with its counts as stats."""
    part = trace.rows(rows)
    part.planned = journal.planned[rows].copy()
    part.bands = journal.bands[rows].copy()
    part.stats = {name: float(values[rows].sum()) for name, values in journal.counts.items()}
    part.stats["unplanned_steps"] = float(np.isnan(part.planned[:, 0]).sum())
    part.notes = list(journal.notes)
    return part
