"""The controller's fields and what every job reads of them: the plan's row for the
quarter hour now, the caps and signal bounds in force. The jobs build on this
(:mod:`vpp.control.controller` lists where each lives)."""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from optimizer.planner import Planner
from vpp.control.dispatch import (
    ExportAhead,
    export_ahead,
    plan_row,
    plan_store_ahead,
    store_spare_wh,
)
from vpp.control.envelope import Bounds
from vpp.control.inputs import Inputs
from vpp.control.plant import Plant
from vpp.control.scores import ForecastScores
from vpp.control.state import ControllerState, OperatorCap, SetpointStatus
from vpp.control.store import StoreEstimate
from vpp.core.clock import Clock, floor_quarter
from vpp.core.site import Site
from vpp.forecast import Mode
from vpp.learned import LearnedForecaster, LearnedSettings
from vpp.signals.watch import SignalWatch
from vpp.weather import ForecastSpec

T = TypeVar("T")


class PerQuarter(Generic[T]):
    """A value worked out from the plan in force once per plan and quarter hour."""

    def __init__(self) -> None:
        self._plan: object = None
        self._step: datetime | None = None
        self._value: T

    def get(self, plan: object, step: datetime, make: Callable[[], T]) -> T:
        """The value for ``plan`` at the quarter hour ``step``, from ``make`` when either
        changed since the last call."""
        if self._step is None or self._plan is not plan or self._step != step:
            self._plan, self._step, self._value = plan, step, make()
        return self._value


@dataclass
class ControllerBase:
    """The fields of :class:`~vpp.control.controller.Controller`."""

    site: Site
    clock: Clock
    plant: Plant
    planner: Planner
    inputs: Inputs
    state: ControllerState
    recorder: Any = None
    metrics: Any = None
    #: Plans are made this many controller seconds before the quarter hour they start.
    plan_lead_s: float = 0.0
    #: ``asof``: forecasts from what was known then; ``perfect``: the inputs' own future
    #: (replay's perfect-forecast runs).
    forecast_mode: Mode = "asof"
    #: Called with (source, statuses) after every batch of writes (replay keeps its trace).
    listener: Callable[[str, list[SetpointStatus]], None] | None = None
    #: Grid-operator signal sources (:class:`vpp.signals.watch.SignalWatch`), read by the
    #: ``signals`` job; None: the site has none.
    signal_watch: Any = None
    #: Issued temperature forecasts (:class:`vpp.forecast.TemperatureForecasts`) the asof
    #: forecasts use; None: made from the inputs with site ``[forecast] weather =
    #: "synthetic"``, else temperature persistence and no store reserve.
    weather: Any = None
    #: Issued PV forecasts (:class:`vpp.forecast.SolarForecasts`, e.g. a forecast service's
    #: issues) the asof forecasts weigh against the rule blend; None: made from the inputs
    #: with site ``[forecast] pv = "issued"``, else the rule blend alone.
    solar: Any = None
    #: Synthetic issued forecasts' parameters (site ``[forecast] weather = "synthetic"``):
    #: each plan makes them from the temperature its inputs hold ahead.
    weather_spec: ForecastSpec | None = field(default=None, init=False)
    #: Synthetic issued PV forecasts' parameters (site ``[forecast] pv = "issued"``): each
    #: plan makes them from the PV its inputs hold ahead.
    solar_spec: ForecastSpec | None = field(default=None, init=False)
    #: The issued PV forecasts' weight against the rule blend, per UTC day (computed at the
    #: day's first plan from the days before: :func:`vpp.forecast.issued_solar_weight`).
    _solar_weights: dict[pd.Timestamp, float] = field(default_factory=dict, init=False)
    #: The store reserve's tiers ``(Wh, chance it is needed)`` of the last forecast
    #: (:mod:`optimizer.reserve`).
    store_reserve: tuple[tuple[float, float], ...] = field(default=(), init=False)
    #: The heat forecast's level error per UTC day (computed at the day's first plan from the
    #: days before: :func:`vpp.forecast.heat_level_error`), and the last forecast's (0 where
    #: the heat forecast is not the one from temperature forecasts).
    _heat_errors: dict[pd.Timestamp, float] = field(default_factory=dict, init=False)
    heat_level_error: float = field(default=0.0, init=False)
    #: Learned columns whose median is the last raw forecast's (see
    #: :meth:`vpp.learned.LearnedForecaster.quantiles`): the heat demand when it came from
    #: issued temperature forecasts.
    _centred: frozenset[str] = field(default=frozenset(), init=False)
    store: StoreEstimate = field(init=False)
    #: The learned quantile forecasts (site ``[forecast] method = "learned"``), else None.
    learned: LearnedForecaster | None = field(default=None, init=False)
    #: The forecasts for the quarter hour ahead against what was then measured (kept for
    #: the metrics: only with a metrics collector).
    scores: ForecastScores = field(init=False)
    _last_poll: datetime | None = field(default=None, init=False)
    _offline: set[str] = field(default_factory=set, init=False)
    #: When each offline device went offline, and when the last "still offline" line was.
    _offline_since: dict[str, datetime] = field(default_factory=dict, init=False)
    _offline_told: datetime | None = field(default=None, init=False)
    _quarantined: set[str] = field(default_factory=set, init=False)
    _screened_from: Any = field(default=None, init=False)
    _screened: Any = field(default=None, init=False)
    #: Records waiting for a recorder that failed (oldest first), and its state.
    _pending: deque[tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = field(
        default_factory=deque, init=False
    )
    _pending_lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _recorder_ok: bool = field(default=True, init=False)
    _last_retention: datetime | None = field(default=None, init=False)
    _backup_failed_at: datetime | None = field(default=None, init=False)
    _row: PerQuarter[pd.Series | None] = field(default_factory=lambda: PerQuarter(), init=False)
    _ahead: PerQuarter[tuple[np.ndarray, np.ndarray]] = field(
        default_factory=lambda: PerQuarter(), init=False
    )
    _export: PerQuarter[ExportAhead] = field(default_factory=lambda: PerQuarter(), init=False)
    _values_of: pd.Series | None = field(default=None, init=False)
    _values: dict[str, float] = field(default_factory=dict, init=False)
    _summed_from: Any = field(default=None, init=False)
    _offline_now: set[str] = field(default_factory=set, init=False)
    _pv_now_w: float = field(default=0.0, init=False)
    #: One plan at a time: the planner's persistent model is not safe to share.
    _plan_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    def __post_init__(self) -> None:
        if self.signal_watch is None and SignalWatch.needed(self.site):
            # The law's rules need no source (vpp run adds the site's control boxes).
            self.signal_watch = SignalWatch(self.site, [], self.clock.now())
        self.scores = ForecastScores(self.site)
        config = self.site.forecast
        if config.method == "learned":
            self.learned = LearnedForecaster(
                LearnedSettings(train_days=config.train_days, min_train_days=config.min_train_days)
            )
        if self.weather is None and config.weather == "synthetic" and self.forecast_mode == "asof":
            # Issued forecasts made, plan by plan, from what the inputs hold ahead (replay's
            # table, the demo's historic file); a source that knows only the past gives
            # persistence (vpp.control.planning).
            self.weather_spec = ForecastSpec(seed=config.weather_seed)
        if self.solar is None and config.pv == "issued" and self.forecast_mode == "asof":
            self.solar_spec = ForecastSpec(seed=config.weather_seed)
        heat = self.site.heat
        self.store = StoreEstimate.for_site(
            heat, heat.store_capacity_wh * heat.store_initial_pct / 100
        )

    # -- what every job reads ---------------------------------------------------------

    def current_row(self) -> pd.Series | None:
        """The plan's row for the quarter hour now (looked up once per plan and quarter)."""
        plan = self.state.plan
        if plan is None:
            return None
        step = floor_quarter(self.clock.now())
        return self._row.get(plan, step, lambda: plan_row(plan.frame, step))

    def store_spare_wh(self) -> float | None:
        """What the store holds above the plan's need before its next recharge
        (:func:`~vpp.control.dispatch.store_spare_wh`), for ``run.heat_correction_rule =
        "spare"``; None for ``"plan"`` or without a plan."""
        plan = self.state.plan
        if self.site.run.heat_correction_rule != "spare" or plan is None:
            return None
        now = self.clock.now()
        step = floor_quarter(now)
        energy, flow = self._ahead.get(plan, step, lambda: plan_store_ahead(plan.frame, step))
        elapsed = (now - step).total_seconds() / 900.0
        return store_spare_wh(self.store.energy_wh, energy, flow, elapsed)

    def export_ahead(self) -> ExportAhead | None:
        """What the plan in force does with its surplus after the quarter hour now, over the
        next hours (:func:`~vpp.control.dispatch.export_ahead`; looked up once per plan and
        quarter); None without a plan or with ``run.store_surplus_first`` off."""
        plan = self.state.plan
        if plan is None or not self.site.run.store_surplus_first:
            return None
        step = floor_quarter(self.clock.now())
        return self._export.get(plan, step, lambda: export_ahead(plan.frame, step))

    def _row_values(self) -> dict[str, float] | None:
        """:meth:`current_row` as a dict (every poll reads a few of its values)."""
        row = self.current_row()
        if row is None:
            return None
        if row is not self._values_of:
            self._values_of, self._values = row, {str(k): v for k, v in row.items()}
        return self._values

    def _signal_bounds(self) -> Bounds:
        """Per-device bounds the active grid-operator signals set (none without signals)."""
        signals = self.state.grid_signals
        return signals.bounds if signals is not None and signals.active else {}

    def _caps_in_force(self) -> list[OperatorCap]:
        """The operator's caps and those of the grid-operator signals."""
        signals = self.state.grid_signals
        if signals is None or not signals.active:
            return self.state.caps
        return [*self.state.caps, *signals.operator_caps()]
