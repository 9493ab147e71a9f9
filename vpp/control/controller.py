"""The controller: named jobs (poll, plan, dispatch, correct, keepalive, watchdog) over one
shared :class:`~vpp.control.state.ControllerState`.

Each job is a plain coroutine method that the scheduler, the CLI and the tests call alike. A job
never raises: failures become events, counters and metrics, and the next run tries again. The
clock is injected, so the live loop, a fast demo and a test with a manual clock run the same
code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from adapters.controls import ControlRefused, Controls
from adapters.poll import FleetPoller
from adapters.snapshot import BatteryReading, HeatPumpReading, Snapshot
from optimizer.inputs import State, forecast_from_raw
from optimizer.plan import Plan
from optimizer.planner import Planner
from vpp.control import events as ev
from vpp.control.dispatch import (
    corrections,
    plan_row,
    setpoints_from_row,
)
from vpp.control.inputs import InputProvider
from vpp.control.safety import Setpoint, check_setpoints, grid_limits_w, guard_grid
from vpp.control.state import ControllerState, SetpointStatus
from vpp.control.store import StoreEstimate
from vpp.core.clock import Clock, floor_quarter
from vpp.core.site import BatteryDevice, DeviceKind, Site
from vpp.forecast import forecast

log = logging.getLogger("vpp.control")

#: How often the watchdog applies the recorder's retention.
RETENTION_EVERY = timedelta(hours=1)

JOB_NAMES = ("poll", "plan", "dispatch", "correct", "keepalive", "watchdog")


@dataclass
class Controller:
    """Everything a control cycle needs. ``recorder`` and ``metrics`` are optional."""

    site: Site
    clock: Clock
    poller: FleetPoller
    controls: Controls
    planner: Planner
    inputs: InputProvider
    state: ControllerState
    recorder: Any = None
    metrics: Any = None
    #: Plans are made this many controller seconds before the quarter hour they start.
    plan_lead_s: float = 0.0
    store: StoreEstimate = field(init=False)
    _last_poll: datetime | None = field(default=None, init=False)
    _offline: set[str] = field(default_factory=set, init=False)
    _last_retention: datetime | None = field(default=None, init=False)
    #: One plan at a time: the planner's persistent model is not safe to share.
    _plan_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    def __post_init__(self) -> None:
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
        if self.metrics is not None:
            self.metrics.observe_job(name, stats.last_duration_s)
        return ok

    def event(
        self, level: str, source: str, kind: str, message: str, device: str | None = None
    ) -> None:
        event = ev.Event(self.clock.now(), level, source, kind, message, device)
        self.state.add_event(event)
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
        try:
            fn(*args, **kw)
        except Exception as exc:  # recording must not stop control
            self.state.recorder_errors_total += 1
            log.error("recorder failed to store %s: %s", what, exc)

    # -- poll -----------------------------------------------------------------------------

    async def poll(self) -> None:
        snapshot = await self.poller.poll()
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

    def _track_online(self, snapshot: Snapshot) -> None:
        offline = {d.id for d in snapshot.offline()}
        for device in sorted(offline - self._offline):
            err = snapshot.devices[device].health.last_error or "no answer"
            self.event("warning", "poll", "device_offline", f"{device} offline: {err}", device)
        for device in sorted(self._offline - offline):
            self.event("info", "poll", "device_online", f"{device} answers again", device)
        self._offline = offline

    def _account(self, snapshot: Snapshot, dt_s: float) -> None:
        """Cost accrued, heat delivered, forecast error and the store estimate."""
        row = self.current_row()
        hp = self.site.heat_pump
        hp_th = None
        if hp is not None:
            reading = snapshot.devices.get(hp.id)
            if reading is not None and isinstance(reading.reading, HeatPumpReading):
                hp_th = reading.reading.th_power_w
        now = snapshot.time
        fraction = (now - floor_quarter(now)).total_seconds() / 900.0
        self.store.on_poll(row, hp_th, dt_s, fraction)
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
        pv = sum(
            getattr(d.reading, "ac_power_w", None) or 0.0
            for d in snapshot.of_kind("pv")
            if d.health.online
        )
        self.state.forecast_error_w["pv_w"] = pv - float(row.get("pv_w", 0.0))

    # -- plan -----------------------------------------------------------------------------

    async def plan(self) -> None:
        """Plan from the quarter hour that starts within ``plan_lead_s`` (or the current one)."""
        async with self._plan_lock:
            await self._plan()

    async def _plan(self) -> None:
        now = self.clock.now()
        at = now + timedelta(seconds=self.plan_lead_s)
        forecast = await asyncio.to_thread(self._forecast, at)
        start_state = self.plan_state()
        plan: Plan = await asyncio.to_thread(self.planner.plan, start_state, forecast, at)
        plan = self._keep_current_step(self._true_limits(plan), now)
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
        if self.metrics is not None:
            self.metrics.observe_plan(plan.info)
        if start_state.store_wh is not None:
            self.store.on_plan(start_state.store_wh)
        if self.recorder is not None:
            await asyncio.to_thread(self._record, "plan", self.recorder.record_plan, plan, now)

    def _true_limits(self, plan: Plan) -> Plan:
        """The plan keeps the margin free, but its table shows the limits in force, as the
        operator set them."""
        keep = 1.0 - self.site.grid.limit_margin_pct / 100.0
        if keep >= 1.0:
            return plan
        frame = plan.frame.copy()
        for col in ("import_cap_w", "export_cap_w"):
            if col in frame:
                frame[col] = frame[col] / keep
        return replace(plan, frame=frame)

    def _keep_current_step(self, plan: Plan, now: datetime) -> Plan:
        """A plan made ahead starts at the next quarter hour; until then the old plan's row
        for the current quarter hour stays in force (dispatch, correction, metrics)."""
        old = self.state.plan
        start = plan.frame.index[0]
        current = pd.Timestamp(floor_quarter(now))
        if old is None or start <= current:
            return plan
        keep = old.frame[(old.frame.index >= current) & (old.frame.index < start)]
        keep = keep.reindex(columns=plan.frame.columns)
        if keep.empty:
            return plan
        return replace(plan, frame=pd.concat([keep, plan.frame]))

    def _forecast(self, now: datetime) -> pd.DataFrame:
        horizon = timedelta(hours=self.site.optimizer.horizon_h)
        history = self.inputs.history(now, horizon)
        raw = forecast(history, now, horizon, mode="asof")
        if self.recorder is not None:
            # What was known of the past, so a recorded day can be exported and replayed.
            past = history[history.index < pd.Timestamp(self.clock.now())]
            self._record("inputs", self.recorder.record_inputs, past.tail(4 * 24))
        for problem in self.inputs.drain_problems():
            self.event("warning", f"source:{problem.source}", "source_failed", problem.message)
        self.state.sources = self.inputs.status()
        return self._with_caps(forecast_from_raw(self.site, raw))

    def _with_caps(self, forecast: pd.DataFrame) -> pd.DataFrame:
        """Operator caps and the site's limits, less the planning margin, become the plan's
        time-varying import/export limits."""
        keep = 1.0 - self.site.grid.limit_margin_pct / 100.0
        limits = {
            "import": pd.Series(self.site.grid.import_limit_w, index=forecast.index),
            "export": pd.Series(self.site.grid.export_limit_w, index=forecast.index),
        }
        for cap in self.state.caps:
            window = (forecast.index >= cap.start) & (forecast.index < cap.end)
            target = limits[cap.direction]
            target[window] = target[window].clip(upper=cap.limit_w)
        forecast = forecast.copy()
        forecast["import_limit_w"] = limits["import"] * keep
        forecast["export_limit_w"] = limits["export"] * keep
        return forecast

    def plan_state(self) -> State:
        """Batteries' energy, the store and the offline devices, as the optimiser needs them."""
        socs: dict[str, float] = {}
        offline: set[str] = set()
        snapshot = self.state.snapshot
        for device in self.site.devices:
            state = snapshot.devices.get(device.id) if snapshot else None
            if state is None or not state.health.online:
                offline.add(device.id)
                continue
            reading = state.reading
            if (
                isinstance(reading, BatteryReading)
                and isinstance(device, BatteryDevice)
                and reading.soc_pct is not None
            ):
                socs[device.id] = reading.soc_pct / 100 * device.capacity_wh
        if snapshot is None:
            return State.from_site(self.site)
        return State(battery_soc_wh=socs, store_wh=self.store.energy_wh, offline=frozenset(offline))

    def current_row(self) -> pd.Series | None:
        plan = self.state.plan
        return plan_row(plan.frame, self.clock.now()) if plan is not None else None

    # -- dispatch, correct, keepalive -----------------------------------------------------

    async def dispatch(self) -> None:
        """Apply the current step of the plan to every online device."""
        row = self.current_row()
        if row is None:
            self.event("warning", "dispatch", "no_plan", "no plan covers this quarter hour")
            return
        online = {d.id for d in self.state.snapshot.online()} if self.state.snapshot else set()
        await self.apply(setpoints_from_row(self.site, row, online), "dispatch")

    async def correct(self) -> None:
        """Hold the planned grid exchange with the batteries between quarter hours."""
        row, snapshot = self.current_row(), self.state.snapshot
        if row is None or snapshot is None:
            return
        active = {
            d: s.requested for d, s in self.state.setpoints.items() if s.quantity == "battery_w"
        }
        imp, exp = grid_limits_w(self.site, self.state.caps, self.clock.now())
        setpoints = corrections(
            self.site, snapshot, row, active, imp, exp, self.site.run.correction_interval_s
        )
        if setpoints:
            await self.apply(setpoints, "correct")

    async def keepalive(self) -> None:
        """Rewrite the active setpoints before the devices' revert timers run out."""
        snapshot = self.state.snapshot
        online = {d.id for d in snapshot.online()} if snapshot else set()
        setpoints = [
            Setpoint(s.device_id, _KIND[s.quantity], s.requested, s.planned)
            for s in self.state.setpoints.values()
            if s.written is not None and s.device_id in online
        ]
        if setpoints:
            await self.apply(setpoints, "keepalive", recheck=True)

    async def apply(self, setpoints: list[Setpoint], source: str, recheck: bool = True) -> None:
        """Check, guard, write (unless dry-run) and read back a batch of setpoints."""
        now = self.clock.now()
        snapshot = self.state.snapshot
        horizon_s = (floor_quarter(now) + timedelta(minutes=15) - now).total_seconds()
        if recheck:
            setpoints = check_setpoints(self.site, snapshot, setpoints, horizon_s)
            imp, exp = grid_limits_w(self.site, self.state.caps, now)
            setpoints = guard_grid(self.site, snapshot, setpoints, imp, exp)
        limit = asyncio.Semaphore(self.site.run.dispatch_concurrency)

        async def one(sp: Setpoint) -> SetpointStatus:
            async with limit:
                return await self._write(sp, now)

        results = await asyncio.gather(*(one(sp) for sp in setpoints))
        for status in results:
            self.state.setpoints[status.device_id] = status
            self._count(status, source)
        if self.recorder is not None and results:
            await asyncio.to_thread(
                self._record,
                "setpoints",
                self.recorder.record_setpoints,
                [ev.setpoint_record(s) for s in results],
                self.state.dry_run,
            )

    async def _write(self, sp: Setpoint, now: datetime) -> SetpointStatus:
        status = SetpointStatus(
            sp.device_id,
            sp.quantity,
            now,
            sp.planned,
            sp.value,
            None,
            None,
            ok=True,
            clamped=sp.clamped,
            dry_run=self.state.dry_run,
            message=sp.reason,
        )
        if self.state.dry_run:
            return status
        try:
            result = await self.controls.apply(sp.device_id, sp.value)
        except ControlRefused as exc:
            status.ok, status.message = False, str(exc)
            return status
        except Exception as exc:  # a device that fails now is retried at the next write
            status.ok, status.message = False, f"write failed: {exc}"
            return status
        status.written, status.read_back, status.ok = result.written, result.read_back, result.ok
        status.clamped = status.clamped or result.clamped
        status.message = "; ".join(m for m in (sp.reason, result.message) if m)
        return status

    def _count(self, status: SetpointStatus, source: str) -> None:
        device = status.device_id
        st = self.state
        if status.clamped:
            st.setpoint_clamps_total[device] = st.setpoint_clamps_total.get(device, 0) + 1
        if status.ok or status.dry_run:
            return
        if status.written is not None:
            st.readback_mismatches_total[device] = st.readback_mismatches_total.get(device, 0) + 1
            self.event(
                "warning",
                source,
                "readback_mismatch",
                f"{device}: read back {status.read_back} after writing {status.written}",
                device,
            )
        else:
            st.setpoint_refusals_total[device] = st.setpoint_refusals_total.get(device, 0) + 1
            self.event("warning", source, "setpoint_failed", f"{device}: {status.message}", device)

    # -- watchdog -------------------------------------------------------------------------

    async def watchdog(self) -> None:
        """Stale data, plan age, jobs that keep failing; retention of the recorder."""
        now = self.clock.now()
        snap = self.state.snapshot
        stale_after = self.site.poll.interval_s * self.site.run.stale_polls
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
        due = self._last_retention is None or now - self._last_retention >= RETENTION_EVERY
        if self.recorder is not None and due:
            # Deleting old rows takes seconds at a thousand devices: once an hour is enough.
            self._last_retention = now
            await asyncio.to_thread(
                self._record, "retention", self.recorder.apply_retention, now, site=self.site
            )


_KIND = {
    "battery_w": DeviceKind.BATTERY,
    "pv_limit_pct": DeviceKind.PV,
    "heat_pump_el_w": DeviceKind.HEAT_PUMP,
}


def _grid_w(site: Site, snapshot: Snapshot) -> float | None:
    if site.grid.meter is None:
        return None
    state = snapshot.devices.get(site.grid.meter)
    if state is None or not state.health.online or state.reading is None:
        return None
    return getattr(state.reading, "power_w", None)
