"""The controller: named jobs (poll, plan, dispatch, correct, keepalive, watchdog) over one
shared :class:`~vpp.control.state.ControllerState`.

Each job is a plain coroutine method that the scheduler, the CLI, replay and the tests call
alike: it reads the :class:`~vpp.control.plant.Plant`, asks the pure cycle
(:mod:`vpp.control.cycle`) what to do, and writes what it returns. A job never raises:
failures become events, counters and metrics, and the next run tries again. The clock and the
plant are injected, so ``vpp run`` (APScheduler, Modbus fleet), a fast demo, replay (manual
clock, plant model) and a test run the same code.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from adapters.snapshot import HeatPumpReading, Snapshot
from optimizer.inputs import State, forecast_from_raw
from optimizer.plan import Plan
from optimizer.planner import Planner
from vpp.control import backups, cycle
from vpp.control import events as ev
from vpp.control.dispatch import plan_row
from vpp.control.envelope import Bounds
from vpp.control.inputs import Inputs
from vpp.control.invariants import Limits, enforce
from vpp.control.plant import Plant, Written
from vpp.control.plausible import Suspect, screen
from vpp.control.safety import Setpoint
from vpp.control.scores import ForecastScores
from vpp.control.state import ControllerState, OperatorCap, SetpointStatus
from vpp.control.store import StoreEstimate
from vpp.core.clock import Clock, floor_quarter
from vpp.core.kinds import BY_SETPOINT
from vpp.core.site import Site
from vpp.forecast import Mode, forecast
from vpp.learned import LearnedForecaster, LearnedSettings, apply_p50, bands_frame, site_bands
from vpp.recorder.export import apply_retention
from vpp.signals.compliance import check as check_compliance
from vpp.signals.compliance import held_w
from vpp.signals.standing import spot_from_forecast
from vpp.signals.watch import SignalWatch

log = logging.getLogger("vpp.control")

#: Records kept while the recorder cannot store them (about 4 h of polls at 10 s with the
#: plans, setpoints and events between them); beyond it the oldest go and are counted.
PENDING_RECORDS = 5000
#: How often the watchdog applies the recorder's retention.
RETENTION_EVERY = timedelta(hours=1)
#: Devices that stay offline are summarised in the log this often.
STILL_OFFLINE_EVERY = timedelta(minutes=15)
#: A failed recorder backup is tried again after this long.
BACKUP_RETRY = timedelta(minutes=15)

JOB_NAMES = ("poll", "plan", "dispatch", "correct", "keepalive", "watchdog", "signals")


@dataclass
class Controller:
    """Everything a control cycle needs. ``recorder`` and ``metrics`` are optional."""

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
    _row_for: Any = field(default=None, init=False)
    _row_step: datetime | None = field(default=None, init=False)
    _row: pd.Series | None = field(default=None, init=False)
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
        heat = self.site.heat
        self.store = StoreEstimate(
            heat.store_capacity_wh, heat.store_capacity_wh * heat.store_initial_pct / 100
        )

    # -- job plumbing -------------------------------------------------------------------

    async def run_job(self, name: str) -> bool:
        """Run one named job with its statistics; True when it succeeded."""
        job: Callable[[], Awaitable[None]] = getattr(self, name)
        stats = self.state.job(name)
        stats.last_start = self.clock.now()
        started = time.perf_counter()
        ok = True
        try:
            await job()
        except Exception as exc:  # a job must never stop the controller
            ok = False
            stats.failures += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("job %s failed", name)
            self.event("error", name, "job_failed", f"job {name} failed: {stats.last_error}")
        stats.runs += 1
        stats.last_duration_s = time.perf_counter() - started
        stats.total_s += stats.last_duration_s
        if self.metrics is not None:
            self.metrics.observe_job(name, stats.last_duration_s)
        return ok

    def event(
        self,
        level: str,
        source: str,
        kind: str,
        message: str,
        device: str | None = None,
        *,
        logged: bool = True,
    ) -> None:
        """Record an event (state, recorder) and log it; ``logged=False`` when the caller
        logs one line for many events."""
        event = ev.Event(self.clock.now(), level, source, kind, message, device)
        self.state.add_event(event)
        if logged:
            getattr(log, "warning" if level != "info" else "info")("%s", message)
        if self.recorder is not None:
            self._record(
                "event",
                self.recorder.record_event,
                level,
                source,
                kind,
                message,
                device=device,
                time=event.time,
            )

    def _record(self, what: str, fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
        """Store one record; a record the recorder cannot take now (disk full, locked) waits
        in a bounded queue and is stored, in order, before the next one."""
        with self._pending_lock:
            self._pending.append((what, fn, args, kw))
            if len(self._pending) > PENDING_RECORDS:
                self._pending.popleft()
                self.state.recorder_dropped_total += 1
            while self._pending:
                what, fn, args, kw = self._pending[0]
                try:
                    fn(*args, **kw)
                except Exception as exc:  # recording must not stop control
                    self.state.recorder_errors_total += 1
                    self.state.recorder_pending = len(self._pending)
                    if self._recorder_ok:  # log the transition, not every record
                        log.error("recorder failed to store %s: %s; keeping records", what, exc)
                    self._recorder_ok = False
                    return
                self._pending.popleft()
            if not self._recorder_ok:
                log.info("recorder stores again; nothing was lost")
            self._recorder_ok = True
            self.state.recorder_pending = 0

    # -- poll -----------------------------------------------------------------------------

    async def poll(self) -> None:
        read = await self.plant.read()
        if read.devices is not self._screened_from:
            self._screened_from, self._screened = read.devices, screen(self.site, read)
        # The same readings (a plant that changes once a minute) need no second screening.
        screened = self._screened
        snapshot = replace(screened.snapshot, time=read.time)
        self._track_suspects(screened.suspects)
        now = snapshot.time
        dt_s = (now - self._last_poll).total_seconds() if self._last_poll else 0.0
        self._last_poll = now
        self.state.snapshot = snapshot
        self._track_online(snapshot)
        self._account(snapshot, dt_s)
        if self.recorder is not None:
            await asyncio.to_thread(
                self._record, "snapshot", self.recorder.record_snapshot, snapshot
            )

    def _track_suspects(self, suspects: Iterable[Suspect]) -> None:
        """An implausible reading quarantines its device (an alert, once per episode): it
        counts as offline, so control holds the plan instead of reacting to it."""
        now = {s.device_id: s for s in suspects}
        for device in sorted(set(now) - self._quarantined):
            self.state.quarantines_total += 1
            self.event("error", "poll", "reading_quarantined", str(now[device].reason), device)
        for device in sorted(self._quarantined - set(now)):
            self.event(
                "info", "poll", "reading_plausible", f"{device} reads plausibly again", device
            )
        self._quarantined = set(now)
        self.state.quarantined = frozenset(now)

    def _summarise(self, snapshot: Snapshot) -> None:
        """The offline devices and the PV output of the snapshot's readings (polls between
        two changes of a plant that changes once a minute read the same readings)."""
        if snapshot.devices is self._summed_from:
            return
        self._summed_from = snapshot.devices
        self._offline_now = {d.id for d in snapshot.offline()}
        self._pv_now_w = sum(
            getattr(d.reading, "ac_power_w", None) or 0.0
            for d in snapshot.of_kind("pv")
            if d.health.online
        )

    def _track_online(self, snapshot: Snapshot) -> None:
        """An event per device that goes offline or comes back; one log line per poll for
        all of them (a gateway failure takes dozens of devices at once)."""
        self._summarise(snapshot)
        offline = self._offline_now - self._quarantined
        gone, back = sorted(offline - self._offline), sorted(self._offline - offline)
        message = ""
        for device in gone:
            err = snapshot.devices[device].health.last_error or "no answer"
            message = f"{device} offline: {err}"
            self.event("warning", "poll", "device_offline", message, device, logged=False)
        for device in back:
            text = f"{device} answers again"
            self.event("info", "poll", "device_online", text, device, logged=False)
        total = len(snapshot.devices)
        if len(gone) == 1:
            log.warning("%s; %d of %d devices offline", message, len(offline), total)
        elif gone:
            log.warning(
                "%d devices went offline (%s); %d of %d offline",
                len(gone), _few(gone), len(offline), total,
            )  # fmt: skip
        if back:
            log.info(
                "%d device(s) answer again (%s); %d of %d offline",
                len(back), _few(back), len(offline), total,
            )  # fmt: skip
        self._offline = offline
        self._tell_still_offline(snapshot.time, gone, offline, total)

    def _tell_still_offline(
        self, now: datetime, gone: list[str], offline: set[str], total: int
    ) -> None:
        """Devices that stay offline are logged when they go, then summarised once every
        :data:`STILL_OFFLINE_EVERY` (controller time), not at every poll."""
        since = self._offline_since
        for device in gone:
            since[device] = now
        for device in set(since) - offline:
            del since[device]
        if gone or not offline:
            self._offline_told = now if offline else None
            return
        told = self._offline_told
        if told is not None and now - told < STILL_OFFLINE_EVERY:
            return
        self._offline_told = now
        first = min(since.values(), default=now)
        log.warning(
            "%d of %d devices still offline (%s), the longest since %s UTC",
            len(offline), total, _few(sorted(offline)), f"{first:%H:%M}",
        )  # fmt: skip

    def _account(self, snapshot: Snapshot, dt_s: float) -> None:
        """Cost accrued, heat delivered, forecast error and the store estimate."""
        row = self._row_values()
        hp = self.site.heat_pump
        hp_th = demand = None
        if hp is not None:
            reading = snapshot.devices.get(hp.id)
            if reading is not None and isinstance(reading.reading, HeatPumpReading):
                hp_th, demand = reading.reading.th_power_w, reading.reading.network_th_w
        now = snapshot.time
        fraction = (now - floor_quarter(now)).total_seconds() / 900.0
        self.store.on_poll(row, hp_th, dt_s, fraction, measured_demand_th_w=demand)
        if row is None or dt_s <= 0:
            return
        grid = _grid_w(self.site, snapshot)
        if grid is not None:
            price = float(
                row["price_import_eur_per_mwh"] if grid > 0 else row["price_export_eur_per_mwh"]
            )
            self.state.cost_accrued_eur += grid * dt_s / 3600 / 1e6 * price
        heat = self.state.heat_delivered_wh
        if hp_th is not None:
            heat["heat_pump"] = heat.get("heat_pump", 0.0) + hp_th * dt_s / 3600
        heat["boiler"] = heat.get("boiler", 0.0) + float(row.get("boiler_th_w", 0.0)) * dt_s / 3600
        self._summarise(snapshot)
        self.state.forecast_error_w["pv_w"] = self._pv_now_w - float(row.get("pv_w", 0.0))

    # -- plan -----------------------------------------------------------------------------

    async def plan(self) -> None:
        """Plan from the quarter hour that starts within ``plan_lead_s`` (or the current one)."""
        async with self._plan_lock:
            await self._plan()

    async def _plan(self) -> None:
        now = self.clock.now()
        at = now + timedelta(seconds=self.plan_lead_s)
        tic = time.perf_counter()
        forecast = await asyncio.to_thread(self._forecast, at)
        self.state.forecast_seconds_total += time.perf_counter() - tic
        start_state = self.plan_state()
        tic = time.perf_counter()
        plan: Plan = await asyncio.to_thread(self.planner.plan, start_state, forecast, at)
        self.state.planner_seconds_total += time.perf_counter() - tic
        plan = cycle.adopt(self.site, self.state.plan, plan, now, forecast)
        self.state.plan, self.state.plan_created_at = plan, now
        self.state.forecast = forecast
        self.state.plans_total += 1
        if plan.info.status != "optimal":
            self.state.fallbacks_total += 1
            self.event(
                "warning",
                "plan",
                "fallback_plan",
                f"plan fell back to rules: {plan.info.fallback_reason}",
            )
        log.info("%s", plan_line(plan, now, self.site.optimizer.time_limit_s))
        signals = self.state.grid_signals
        if plan.info.slacks and signals is not None and signals.active:
            used = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(plan.info.slacks.items()))
            self.event(
                "warning",
                "plan",
                "signal_plan_slack",
                f"the plan cannot keep every grid-operator signal with the plant it has: "
                f"slack used ({used})",
            )
        if self.metrics is not None:
            self.metrics.observe_plan(plan.info)
        if start_state.store_wh is not None:
            self.store.on_plan(start_state.store_wh)
        if self.recorder is not None:
            await asyncio.to_thread(self._record, "plan", self.recorder.record_plan, plan, now)

    def _forecast(self, at: datetime) -> pd.DataFrame:
        """The optimiser's forecast for a plan starting at ``at``, with the limits in force."""
        horizon = timedelta(hours=self.site.optimizer.horizon_h)
        history = self.inputs.history(at, horizon)
        if self.forecast_mode == "perfect" and len(history):
            # A perfect forecast sees no further than the inputs reach.
            end = pd.Timestamp(history.index[-1]) + pd.Timedelta(minutes=15)
            horizon = min(horizon, (end - pd.Timestamp(at)).to_pytimedelta())
        used = history.drop(columns=[c for c in UNUSED_COLUMNS if c in history.columns])
        raw = forecast(used, at, horizon, mode=self.forecast_mode)
        bands = None
        if self.learned is not None and self.forecast_mode == "asof" and len(raw):
            quantiles = self.learned.quantiles(
                used, pd.Timestamp(at), pd.DatetimeIndex(raw.index), self._read_history, raw
            )
            if quantiles:  # none while the history is too short: the rules stay
                raw = apply_p50(raw, quantiles)
                bands = bands_frame(pd.DatetimeIndex(raw.index), quantiles)
        self.state.forecast_bands = bands
        self.state.forecast_bands_w = None if bands is None else site_bands(self.site, bands)
        if self.metrics is not None and self.forecast_mode == "asof":
            cutoff = pd.Timestamp(at).floor("15min")
            self.scores.observe(used[used.index < cutoff], cutoff)
            self.scores.expect(raw, bands)
            self.state.forecast_scores = self.scores.summary()
        if self.recorder is not None:
            # What was known of the past, so a recorded day can be exported and replayed.
            past = history[history.index < pd.Timestamp(self.clock.now())]
            self._record("inputs", self.recorder.record_inputs, past.tail(4 * 24))
        for problem in self.inputs.drain_problems():
            self.event("warning", f"source:{problem.source}", "source_failed", problem.message)
        self.state.sources = self.inputs.status()
        frame = forecast_from_raw(self.site, raw)
        return cycle.plan_limits(
            self.site,
            frame,
            self._caps_in_force(),
            self._plan_signals(frame),
            self.state.forecast_bands_w,
        )

    def _read_history(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Raw inputs over ``[start, end)`` (the learned forecasts' daily refit)."""
        rows = self.inputs.history(end.to_pydatetime(), timedelta(0), lookback=end - start)
        return rows[rows.index < end]

    def plan_state(self) -> State:
        """Batteries' energy, the store and the offline devices, as the optimiser needs them."""
        return cycle.plan_state(self.site, self.state.snapshot, self.store.energy_wh)

    def current_row(self) -> pd.Series | None:
        """The plan's row for the quarter hour now (looked up once per plan and quarter)."""
        plan = self.state.plan
        if plan is None:
            return None
        step = floor_quarter(self.clock.now())
        if self._row_for is not plan or self._row_step != step:
            self._row_for, self._row_step, self._row = plan, step, plan_row(plan.frame, step)
        return self._row

    def _row_values(self) -> dict[str, float] | None:
        """:meth:`current_row` as a dict (every poll reads a few of its values)."""
        row = self.current_row()
        if row is None:
            return None
        if row is not self._values_of:
            self._values_of, self._values = row, {str(k): v for k, v in row.items()}
        return self._values

    # -- dispatch, correct, keepalive -----------------------------------------------------

    async def dispatch(self) -> None:
        """Apply the current step of the plan to every online device."""
        st = self.state
        setpoints = cycle.step_setpoints(
            self.site,
            self.current_row(),
            st.snapshot,
            self._caps_in_force(),
            self.clock.now(),
            self._signal_bounds(),
            store_wh=self.store.energy_wh,
        )
        if setpoints is None:
            self.event("warning", "dispatch", "no_plan", "no plan covers this quarter hour")
            return
        statuses = await self.apply(setpoints, "dispatch")
        log.info(
            "%s",
            dispatch_line(
                floor_quarter(self.clock.now()), len(setpoints), statuses, self.state.dry_run
            ),
        )

    async def correct(self) -> None:
        """Hold the grid exchange (limits or schedule) with the batteries between quarter
        hours, and the heat pump to the measured heat demand (``run.heat_correction``)."""
        st = self.state
        active = {d: s.requested_w for d, s in st.setpoints.items() if s.quantity == "battery_w"}
        setpoints = cycle.correction(
            self.site,
            self.current_row(),
            st.snapshot,
            active,
            self._caps_in_force(),
            self.clock.now(),
            self._signal_bounds(),
            store_wh=self.store.energy_wh,
        )
        if setpoints:
            await self.apply(setpoints, "correct")

    async def keepalive(self) -> None:
        """Rewrite the active setpoints before the devices' revert timers run out."""
        st = self.state
        active = [
            Setpoint(s.device_id, BY_SETPOINT[s.quantity], s.requested_w, s.planned_w)
            for s in st.setpoints.values()
            if s.written_w is not None
        ]
        setpoints = cycle.keepalive(
            self.site,
            active,
            st.snapshot,
            self._caps_in_force(),
            self.clock.now(),
            self._signal_bounds(),
        )
        if setpoints:
            await self.apply(setpoints, "keepalive")

    async def apply(self, setpoints: list[Setpoint], source: str) -> list[SetpointStatus]:
        """Write (unless dry-run) a batch of safe setpoints and record what was read back;
        returns the statuses of the setpoints that were not superseded.

        The invariants (:mod:`vpp.control.invariants`) are checked once more right before
        the write, whatever produced the batch: a setpoint that breaks one is not written
        and becomes an error event."""
        now = self.clock.now()
        st = self.state
        # Operator caps and grid-operator signals (bounds and caps) hold on every write.
        limits = Limits.at(self.site, self._caps_in_force(), now, self._signal_bounds())
        checked = enforce(self.site, st.snapshot, setpoints, limits, cycle.seconds_left(now))
        for violation in checked.violations:
            st.invariant_violations_total += 1
            self.event("error", source, "setpoint_unsafe", str(violation), violation.device_id)
        setpoints = checked.passed
        if not setpoints:
            return []
        if self.state.dry_run:
            results = [Written(sp.device_id, None, None, True) for sp in setpoints]
        else:
            results = await self.plant.write(setpoints)
        statuses = []
        for sp, result in zip(setpoints, results, strict=True):
            if result.superseded:
                continue  # a newer setpoint for the device was written instead
            status = _status(sp, result, now, self.state.dry_run)
            statuses.append(status)
            self._count(status, source)
            if not status.dry_run:
                failures = self.state.write_failures
                if status.ok:
                    failures.pop(status.device_id, None)
                else:
                    failures[status.device_id] = failures.get(status.device_id, 0) + 1
            if status.ok or status.dry_run or status.written_w is not None:
                # The active setpoint is what the device read back; a write that failed
                # before anything was written leaves the previous one on record.
                self.state.setpoints[status.device_id] = status
        if self.listener is not None:
            self.listener(source, statuses)
        if self.recorder is not None and statuses:
            await asyncio.to_thread(
                self._record,
                "setpoints",
                self.recorder.record_setpoints,
                [ev.setpoint_record(s) for s in statuses],
                self.state.dry_run,
            )
        return statuses

    def _count(self, status: SetpointStatus, source: str) -> None:
        device = status.device_id
        st = self.state
        if status.clamped:
            st.setpoint_clamps_total[device] = st.setpoint_clamps_total.get(device, 0) + 1
        if status.ok or status.dry_run:
            return
        if status.written_w is not None:
            st.readback_mismatches_total[device] = st.readback_mismatches_total.get(device, 0) + 1
            self.event(
                "warning",
                source,
                "readback_mismatch",
                f"{device}: read back {status.read_back_w} after writing {status.written_w}",
                device,
            )
        else:
            st.setpoint_refusals_total[device] = st.setpoint_refusals_total.get(device, 0) + 1
            self.event("warning", source, "setpoint_failed", f"{device}: {status.message}", device)

    # -- grid-operator signals (vpp.signals) ----------------------------------------------

    async def signals(self) -> None:
        """Read the signal sources; when what they ask changes, apply the current setpoints
        of the devices concerned again through the safety layer, now."""
        watch = self.signal_watch
        if watch is None:
            return
        update = await watch.poll(self.clock.now())
        st = self.state
        st.grid_signals = update.resolved
        st.grid_signal_sources = {t.id: (t.silent, t.alive_at) for t in watch.trackers}
        for note in update.notes:
            st.grid_signal_conflicts_total += note.kind == "signal_conflict"
            self.event(note.level, "signals", note.kind, note.message)
        if update.changed:
            # Only the devices whose bounds changed are written again (a grid cap moves
            # every device's share, so then all are).
            await self._reapply(update.devices, caps_changed=update.caps_changed)
        self._check_compliance()

    def _check_compliance(self) -> None:
        """Compare what the devices read back (and the grid meter) with the signals; an
        event when a device stops or starts following them."""
        st = self.state
        before = st.grid_signal_compliance
        if not st.grid_signals.active and (before is None or not before.devices):
            st.grid_signal_compliance = check_compliance(None, {}, None)
            return  # nothing to follow (most polls of most sites)
        grid = None if st.snapshot is None else _grid_w(self.site, st.snapshot)
        held = held_w(self.site, st.setpoints, st.snapshot)
        now = check_compliance(st.grid_signals, held, grid)
        st.grid_signal_compliance = now
        was = (
            set()
            if before is None
            else {d for d, s in before.devices.items() if s == "not_compliant"}
        )
        bad = {d for d, s in now.devices.items() if s == "not_compliant"}
        for device in sorted(bad - was):
            if device in now.reasons and "below the inverter's minimum" not in now.reasons[device]:
                self.event(
                    "warning", "signals", "signal_compliance_lost", now.reasons[device], device
                )
        for device in sorted(was - bad):
            self.event(
                "info",
                "signals",
                "signal_compliance_restored",
                f"{device} follows the signals again",
                device,
            )

    async def _reapply(self, devices: set[str], caps_changed: bool) -> None:
        """The plan's setpoints of ``devices`` for now (all devices when a grid cap changed),
        through :meth:`apply`; without a plan, the active setpoints again (keep-alive)."""
        st = self.state
        now = self.clock.now()
        proposed = cycle.step_setpoints(
            self.site, self.current_row(), st.snapshot, self._caps_in_force(), now,
            self._signal_bounds(),
        )  # fmt: skip
        if proposed is None:
            await self.keepalive()
            return
        if not caps_changed:
            proposed = [sp for sp in proposed if sp.device_id in devices]
        if proposed:
            await self.apply(proposed, "signals")

    def _plan_signals(self, forecast: pd.DataFrame) -> list[Any]:
        """The signals the next plan must keep: those in force (until revoked, as far as
        the plan can tell) and the negative-price windows of this forecast."""
        watch = self.signal_watch
        if watch is None:
            return []
        watch.set_prices(spot_from_forecast(self.site, forecast))
        return list(watch.signals)

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

    # -- watchdog -------------------------------------------------------------------------

    async def watchdog(self) -> None:
        """Stale data, plan age, jobs that keep failing; a fallback plan retried out of turn;
        retention of the recorder."""
        now = self.clock.now()
        if cycle.replan_due(self.state.plan, self.state.plan_created_at, now):
            await self.plan()
            if self.state.plan is not None and self.state.plan.info.status == "optimal":
                self.event(
                    "info", "watchdog", "plan_recovered", "an optimal plan is in force again"
                )
                await self.dispatch()
        snap = self.state.snapshot
        stale_after = self.state.stale_after_s()
        if snap is None or (now - snap.time).total_seconds() > stale_after:
            self.event(
                "error",
                "watchdog",
                "stale_snapshot",
                f"no fresh snapshot for more than {stale_after:.0f} s",
            )
        age = (
            (now - self.state.plan_created_at).total_seconds()
            if self.state.plan_created_at
            else None
        )
        if age is None or age > 2 * 15 * 60:
            self.event(
                "error",
                "watchdog",
                "plan_stale",
                "no plan" if age is None else f"plan is {age / 60:.0f} min old",
            )
        if self.recorder is not None:
            await self._backup(now)
        due = self._last_retention is None or now - self._last_retention >= RETENTION_EVERY
        if self.recorder is not None and due:
            # Deleting old rows takes seconds at a thousand devices: once an hour is enough.
            self._last_retention = now
            await asyncio.to_thread(
                self._record, "retention", apply_retention, self.recorder, now, self.site
            )

    async def _backup(self, now: datetime) -> None:
        """A recorder backup into ``run.backup_dir`` when one is due (vpp.control.backups)."""
        out = backups.due(self.site, now)
        failed = self._backup_failed_at
        if out is None or (failed is not None and now - failed < BACKUP_RETRY):
            return
        keep = self.site.run.backup_keep
        try:
            result, old = await asyncio.to_thread(backups.write, self.recorder.path, out, keep)
        except Exception as exc:  # a failed backup must not stop control; the next run retries
            self._backup_failed_at = now
            self.event("error", "watchdog", "backup_failed", f"recorder backup failed: {exc}")
            return
        self._backup_failed_at = None
        self.event(
            "info",
            "watchdog",
            "backup_written",
            f"recorder backup {result.path}: {result.bytes / 1e6:.1f} MB in "
            f"{result.seconds:.1f} s, integrity {result.check}; {len(old)} old copies removed",
        )


#: Raw input columns :func:`optimizer.inputs.forecast_from_raw` does not read. Each column is
#: forecast on its own, so leaving them out changes nothing a plan sees and saves a third
#: of the forecast's time.
UNUSED_COLUMNS = ("ghi_w_per_m2", "dhi_w_per_m2")


def _few(ids: list[str], n: int = 5) -> str:
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")


def plan_line(plan: Plan, now: datetime, time_limit_s: float) -> str:
    """One line per plan: its source, cost, solve time and the slack it used."""
    info = plan.info
    frame = plan.frame
    source = "optimizer" if info.status == "optimal" else f"fallback ({info.fallback_reason})"
    cost = (getattr(info, "cost_eur", None) or {}).get("net_cost_eur")
    slack = ", ".join(f"{k} {v / 1e3:.1f} kWh" for k, v in sorted(info.slacks.items()) if v > 0)
    span = "no steps"
    if len(frame):
        end = frame.index[-1] + pd.Timedelta(minutes=15)
        span = f"{len(frame)} steps {frame.index[0]:%H:%M}-{end:%H:%M} UTC"
    return (
        f"plan {info.status} from {source}: {span}, "
        f"cost {'-' if cost is None else f'{cost:.2f}'} EUR, "
        f"solve {info.solve_s:.2f} s of {time_limit_s:.0f} s (total {info.total_s:.2f} s), "
        f"slack {slack or 'none'}"
    )


def dispatch_line(
    step: datetime, proposed: int, statuses: list[SetpointStatus], dry_run: bool
) -> str:
    """One line per dispatch: setpoints written, read back as written, clamped, failed."""
    written = sum(1 for s in statuses if s.written_w is not None)
    ok = sum(1 for s in statuses if s.ok and s.written_w is not None)
    clamped = sum(1 for s in statuses if s.clamped)
    failed = sorted(s.device_id for s in statuses if not s.ok and not s.dry_run)
    held = proposed - len(statuses)
    head = f"dispatch {step:%H:%M} UTC: "
    if proposed == 0:
        return head + "no setpoint to write: no controllable device answers"
    if dry_run:
        return (
            head + f"{len(statuses)} setpoints computed, none written (dry-run), {clamped} clamped"
        )
    line = (
        head
        + f"{written} of {proposed} setpoints written, {ok} read back as written, {clamped} clamped"
    )
    if failed:
        line += f", {len(failed)} failed ({_few(failed)})"
    if held > 0:
        line += f", {held} not written (unsafe or superseded)"
    return line


def _grid_w(site: Site, snapshot: Snapshot) -> float | None:
    if site.grid.meter is None:
        return None
    state = snapshot.devices.get(site.grid.meter)
    if state is None or not state.health.online or state.reading is None:
        return None
    return getattr(state.reading, "power_w", None)


def _status(sp: Setpoint, result: Written, now: datetime, dry_run: bool) -> SetpointStatus:
    message = "; ".join(m for m in (sp.reason, result.message) if m)
    return SetpointStatus(
        sp.device_id,
        sp.quantity,
        now,
        sp.planned_w,
        sp.power_w,
        result.written,
        result.read_back,
        ok=result.ok,
        clamped=sp.clamped or result.clamped,
        dry_run=dry_run,
        message=message,
    )
