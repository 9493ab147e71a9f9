"""What the controller knows right now: the one object jobs write and readers (metrics, the
operator page, the API) read.

Jobs replace whole values (a new Snapshot, a new Plan) rather than mutating them, so a reader
on another thread always sees a consistent picture. Counters only grow.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from adapters.snapshot import Snapshot
from vpp.core.site import Site

if TYPE_CHECKING:
    from optimizer.plan import Plan


@dataclass(frozen=True, slots=True)
class OperatorCap:
    """A grid operator's cap on import or export for a time window (UTC, end exclusive)."""

    direction: str  # "import" or "export"
    limit_w: float
    start: datetime
    end: datetime
    reason: str = ""
    created_at: datetime | None = None

    def active(self, when: datetime) -> bool:
        return self.start <= when < self.end


@dataclass(slots=True)
class SetpointStatus:
    """The last setpoint sent to one device and what the device said back."""

    device_id: str
    quantity: str  # "battery_w", "pv_limit_w" (the cap on AC output), "heat_pump_el_w"
    time: datetime
    planned_w: float  # what the plan asked for
    requested_w: float  # after the safety layer
    written_w: float | None  # what was written (None in dry-run or when refused)
    read_back_w: float | None  # what the device holds afterwards
    ok: bool
    clamped: bool = False
    dry_run: bool = False
    message: str = ""


@dataclass(slots=True)
class JobStats:
    """Run statistics of one named job (poll, plan, dispatch, keepalive, watchdog)."""

    runs: int = 0
    failures: int = 0
    misses: int = 0
    last_start: datetime | None = None
    last_duration_s: float | None = None
    #: Seconds spent in all runs.
    total_s: float = 0.0
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    time: datetime
    level: str  # "info", "warning", "error"
    source: str  # "poll", "plan", "dispatch", "watchdog", "operator", "source:<name>"...
    kind: str  # short machine-readable kind, e.g. "device_offline", "fallback_plan"
    message: str
    device: str | None = None


@dataclass(slots=True)
class SourceStatus:
    """Health of one external data source (prices, weather, IT-load forecast)."""

    name: str
    last_success: datetime | None = None
    failures: int = 0
    stale: bool = False
    last_error: str | None = None


@dataclass(slots=True)
class ControllerState:
    site: Site
    started_at: datetime
    dry_run: bool = False
    snapshot: Snapshot | None = None
    plan: Plan | None = None
    plan_created_at: datetime | None = None
    #: Forecast table the current plan was made from (optimizer schema).
    forecast: Any = None
    #: The learned forecasts' quantiles of the latest plan (raw columns ``<column>_p10``,
    #: ``_p50``, ``_p90``), None with the rule forecasts.
    forecast_bands: Any = None
    #: The same in the site's units (:func:`vpp.learned.site_bands`), W.
    forecast_bands_w: Any = None
    #: Forecast errors for the quarter hour ahead over the last day, by quantity
    #: (:meth:`vpp.control.scores.ForecastScores.summary`).
    forecast_scores: dict[str, dict[str, float]] = field(default_factory=dict)
    #: The CO2 intensity forecast's MAE and bias over the last day [g/kWh]
    #: (:meth:`vpp.control.scores.ForecastScores.co2`); empty without measured intensity.
    co2_forecast_score: dict[str, float] = field(default_factory=dict)
    #: The issued PV forecasts' weight against the rule blend today (0..1,
    #: :func:`vpp.forecast.issued_solar_weight`), None without issued PV forecasts.
    pv_issued_weight: float | None = None
    #: The heat forecast's level error today (a share, :func:`vpp.forecast.
    #: heat_level_error`; the plans keep a reserve against it from
    #: ``OptimizerParams.heat_error_min`` up), None where the heat forecast is not the one
    #: from temperature forecasts.
    heat_level_error: float | None = None
    setpoints: dict[str, SetpointStatus] = field(default_factory=dict)
    #: Counts changes to ``setpoints`` (what depends on them can tell it is still current).
    setpoints_revision: int = 0
    caps: list[OperatorCap] = field(default_factory=list)
    jobs: dict[str, JobStats] = field(default_factory=dict)
    sources: dict[str, SourceStatus] = field(default_factory=dict)
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=500))
    # Counters (only grow).
    plans_total: int = 0
    fallbacks_total: int = 0
    readback_mismatches_total: dict[str, int] = field(default_factory=dict)
    setpoint_clamps_total: dict[str, int] = field(default_factory=dict)
    setpoint_refusals_total: dict[str, int] = field(default_factory=dict)
    recorder_errors_total: int = 0
    #: Records waiting for the recorder now, and records dropped because too many waited.
    recorder_pending: int = 0
    recorder_dropped_total: int = 0
    #: Setpoints refused at the last check before a write, and readings quarantined as
    #: implausible (episodes).
    invariant_violations_total: int = 0
    #: Setpoints staged ahead of their quarter hour (:meth:`Planning.stage`) and confirmed.
    setpoints_staged_total: int = 0
    quarantines_total: int = 0
    #: Devices quarantined now for an implausible reading.
    quarantined: frozenset[str] = frozenset()
    #: Seconds spent making forecasts and in the planner (model build, solve, split).
    forecast_seconds_total: float = 0.0
    planner_seconds_total: float = 0.0
    #: Money spent on energy since start, from measured grid exchange and prices, EUR.
    cost_accrued_eur: float = 0.0
    #: Heat delivered since start, Wh thermal, by source ("heat_pump", "boiler").
    heat_delivered_wh: dict[str, float] = field(default_factory=dict)
    #: Last measured minus forecast value, W, by quantity ("pv_w", "load_w").
    forecast_error_w: dict[str, float] = field(default_factory=dict)
    # -- grid-operator signals (vpp.signals) --
    #: What the active signals ask now (:class:`vpp.signals.resolve.Resolved`): per-device
    #: bounds and grid caps the safety layer enforces on every write; None before any read.
    grid_signals: Any = None
    #: Whether the plant follows them (:class:`vpp.signals.compliance.Compliance`).
    grid_signal_compliance: Any = None
    #: What ``grid_signal_compliance`` was found from: (snapshot, setpoints revision,
    #: grid signals), compared by identity.
    grid_signal_compliance_of: tuple[Any, int, Any] | None = None
    #: Each signal source by id: (silent, last time it answered).
    grid_signal_sources: dict[str, tuple[bool, datetime | None]] = field(default_factory=dict)
    #: Conflicts between signals reported since start.
    grid_signal_conflicts_total: int = 0

    #: Writes in a row that each device refused or read back otherwise (dry-run writes
    #: do not count; an accepted write clears it).
    write_failures: dict[str, int] = field(default_factory=dict)
    #: Controller seconds between two polls as scheduled (None: the site's
    #: ``poll.interval_s``); a fast demo stretches it (:func:`vpp.control.schedule.job_specs`).
    poll_interval_s: float | None = None
    #: Controller seconds between two corrections as scheduled (None: the site's
    #: ``run.correction_interval_s``); a fast demo stretches it like the poll.
    correction_interval_s: float | None = None

    def stale_after_s(self) -> float:
        """A snapshot older than this (controller seconds) is not fresh: ``run.stale_polls``
        polls at the interval the poll actually runs at."""
        every = self.poll_interval_s or self.site.poll.interval_s
        return every * self.site.run.stale_polls

    def correction_every_s(self) -> float:
        """Controller seconds until the next correction: what a correction's setpoints must
        hold for (the batteries' SoC headroom, the thermal store's room)."""
        return self.correction_interval_s or self.site.run.correction_interval_s

    def job(self, name: str) -> JobStats:
        return self.jobs.setdefault(name, JobStats())

    def active_caps(self, when: datetime) -> list[OperatorCap]:
        return [c for c in self.caps if c.active(when)]

    def add_event(self, event: Event) -> None:
        self.events.append(event)
