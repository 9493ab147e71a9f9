"""The fault benchmark's rig: the controller of ``vpp run`` on a manual clock in front of the
simulated district (:mod:`vpp.testing.harness`), with every job timed and every write it makes
checked against the limits, on the snapshot it acted on and on the simulators' true state."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.sim.fleet import SimFleet
from adapters.snapshot import (
    BatteryReading,
    CommsHealth,
    HeatPumpReading,
    MeterReading,
    PvReading,
    Snapshot,
)
from vpp.app import RunOptions
from vpp.control.controller import Controller
from vpp.control.cycle import seconds_left
from vpp.control.invariants import Limits, Violation, violations
from vpp.control.plant import Written
from vpp.control.safety import Setpoint
from vpp.control.schedule import job_specs
from vpp.control.state import SetpointStatus
from vpp.core.site import BatteryDevice, Site
from vpp.testing.harness import Plant, app_plant

#: A sunny June morning: PV, batteries and the heat pump all have something to do.
START = datetime(2026, 6, 21, 9, 50, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
#: As :func:`vpp.control.runner.step` (replay, tests): plans a minute before their quarter.
PLAN_LEAD_S = 60.0


@dataclass
class JobRun:
    name: str
    time: datetime
    ok: bool
    wall_s: float
    error: str | None = None


@dataclass
class WriteCheck:
    """One batch the controller wrote and what the bench found wrong with it."""

    time: datetime
    source: str
    written: int
    #: (view, violation) for each problem; views: requested, written, truth.
    problems: list[tuple[str, Violation]]


class Audit:
    """Everything the controller does, as the benchmark sees it: jobs, writes (checked),
    statuses it records, events; installed by wrapping the plant's write, the controller's
    ``event`` and its ``listener``."""

    def __init__(self, ctl: Controller, fleet: SimFleet | None) -> None:
        self.ctl = ctl
        self.fleet = fleet
        self.jobs: list[JobRun] = []
        self.writes: list[WriteCheck] = []
        #: (time, source, statuses, written) per batch the controller recorded.
        self.batches: list[tuple[datetime, str, int, int]] = []
        #: (time, level, kind, device, message) of every event.
        self.events: list[tuple[datetime, str, str, str | None, str]] = []
        #: (time, devices) of every successful poll.
        self.polls: list[tuple[datetime, int]] = []
        self._source = "?"
        plant = ctl.plant
        self._write = plant.write
        plant.write = self.write  # type: ignore[method-assign]
        self._event = ctl.event
        ctl.event = self.event  # type: ignore[method-assign]
        ctl.listener = self.listen
        self._apply = ctl.apply
        ctl.apply = self.apply  # type: ignore[method-assign]

    async def apply(self, setpoints: list[Setpoint], source: str) -> list[SetpointStatus]:
        self._source = source
        return await self._apply(setpoints, source)

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
        self.events.append((self.ctl.clock.now(), level, kind, device, message))
        self._event(level, source, kind, message, device, logged=logged)

    def listen(self, source: str, statuses: list[SetpointStatus]) -> None:
        written = sum(1 for s in statuses if s.written_w is not None or s.dry_run)
        self.batches.append((self.ctl.clock.now(), source, len(statuses), written))

    async def write(self, setpoints: Sequence[Setpoint]) -> list[Written]:
        ctl = self.ctl
        now = ctl.clock.now()
        snap = ctl.state.snapshot
        limits = Limits.at(ctl.site, ctl.state.caps, now)
        horizon = seconds_left(now)
        truth = truth_snapshot(ctl.site, snap, self.fleet) if self.fleet is not None else None
        results = await self._write(setpoints)
        written = [
            replace(sp, power_w=r.written)
            for sp, r in zip(setpoints, results, strict=True)
            if r.written is not None
        ]
        problems: list[tuple[str, Violation]] = []
        problems += [
            ("requested", v) for v in violations(ctl.site, snap, setpoints, limits, horizon)
        ]
        problems += [("written", v) for v in violations(ctl.site, snap, written, limits, horizon)]
        if truth is not None:
            found = violations(ctl.site, truth, written, limits, horizon)
            problems += [("truth", v) for v in found if beyond_resolution(ctl.site, v, horizon)]
        self.writes.append(WriteCheck(now, self._source, len(written), problems))
        return results


def truth_snapshot(site: Site, snap: Snapshot | None, fleet: SimFleet) -> Snapshot | None:
    """``snap`` with what the simulators really do: each online device's power and state of
    charge, and the grid meter's true exchange (the meter online, whatever was read)."""
    if snap is None:
        return None
    devices = dict(snap.devices)
    for device_id, st in snap.devices.items():
        sim: Any = fleet.device(device_id).state
        reading = st.reading
        if device_id == site.grid.meter and isinstance(reading, MeterReading):
            health = CommsHealth(last_success=snap.time, last_attempt=snap.time)
            devices[device_id] = replace(
                st, reading=replace(reading, power_w=sim.grid_w), health=health
            )
        elif not st.health.online:
            continue
        elif isinstance(reading, BatteryReading):
            true = replace(
                reading,
                soc_pct=sim.soc_pct,
                power_w=sim.power_w,
                max_charge_w=None,
                max_discharge_w=None,
            )
            devices[device_id] = replace(st, reading=true)
        elif isinstance(reading, PvReading):
            devices[device_id] = replace(st, reading=replace(reading, ac_power_w=sim.pv_w))
        elif isinstance(reading, HeatPumpReading):
            devices[device_id] = replace(st, reading=replace(reading, el_power_w=sim.el_w))
    return replace(snap, devices=devices)


#: State of charge as the simulated batteries report it: whole percent at worst [%].
SOC_RESOLUTION_PCT = 1.0


def beyond_resolution(site: Site, v: Violation, horizon_s: float) -> bool:
    """Whether a violation against the true state is more than the registers can resolve:
    a state-of-charge edge moves by ``capacity * 1 % / horizon`` between two readable SoC
    values, a rating edge by 1 % of the rating."""
    if v.kind != "envelope" or not math.isfinite(v.bound):
        return True
    device = site.device(v.device_id)
    slack = 0.01 * abs(v.bound)
    if isinstance(device, BatteryDevice):
        hours = max(horizon_s, 1.0) / 3600.0
        slack = max(slack, device.capacity_wh * SOC_RESOLUTION_PCT / 100 / hours)
        slack += 0.01 * max(device.max_charge_w, device.max_discharge_w)
    return abs(v.value - v.bound) > slack


class Rig:
    """The controller of ``vpp run`` on a manual clock in front of a simulated fleet
    (:func:`vpp.testing.harness.app_plant`), stepped as :func:`vpp.control.runner.step` steps
    it: each tick advances the clock by the poll interval, steps the simulated plant and runs
    the jobs that are due. Every job is timed and every write checked (:class:`Audit`)."""

    def __init__(self, plant: Plant, db_path: Path, http_port: int) -> None:
        self.ctl = plant.ctl
        self.fleet = plant.fleet
        self.clock = plant.clock
        self.site = self.ctl.site
        self.db_path = db_path
        self.http_port = http_port
        self.tick_s = self.site.poll.interval_s
        self.specs = job_specs(self.site, PLAN_LEAD_S)
        self.due: dict[str, datetime] = {}
        #: Called with the plant's snapshot before the controller sees it (fault 3).
        self.tamper: Callable[[Snapshot], Snapshot] | None = None
        self.ctl.plan_lead_s = PLAN_LEAD_S
        self.audit = Audit(self.ctl, self.fleet)
        read = self.ctl.plant.read

        async def tampered() -> Snapshot:
            snap = await read()
            return self.tamper(snap) if self.tamper is not None else snap

        self.ctl.plant.read = tampered  # type: ignore[method-assign]

    async def start(self) -> None:
        # As vpp run starts: poll, plan, dispatch, then the schedule.
        for name in ("poll", "plan", "dispatch"):
            await self._run(name)
        now = self.clock.now()
        self.due = {s.name: s.next_after(now) for s in self.specs}

    @property
    def now(self) -> datetime:
        return self.clock.now()

    @property
    def polls(self) -> int:
        return len(self.audit.polls)

    async def _run(self, name: str) -> bool:
        stats = self.ctl.state.job(name)
        failures = stats.failures
        started = time.perf_counter()
        ok = await self.ctl.run_job(name)
        wall = time.perf_counter() - started
        error = stats.last_error if stats.failures > failures else None
        self.audit.jobs.append(JobRun(name, self.now, ok, wall, error))
        if name == "poll" and ok:
            snap = self.ctl.state.snapshot
            self.audit.polls.append((self.now, len(snap.devices) if snap else 0))
        return ok

    async def tick(self) -> None:
        """One poll interval: the plant steps, then every due job runs (as runner.step)."""
        self.clock.advance(self.tick_s)
        self.fleet.step()
        now = self.now
        for spec in self.specs:
            if self.due[spec.name] <= now:
                await self._run(spec.name)
                self.due[spec.name] = spec.next_after(now)

    async def run_until(self, until: datetime) -> None:
        while self.now < until:
            await self.tick()

    async def until_recovered(
        self, check: Callable[[], bool], limit: timedelta
    ) -> tuple[float, int] | None:
        """Tick until ``check`` holds after a poll: (controller s, polls) since now."""
        ended, polls = self.now, self.polls
        while self.now < ended + limit:
            await self.tick()
            if self.polls > polls and check():
                return (self.now - ended).total_seconds(), self.polls - polls
        return None


@asynccontextmanager
async def open_rig(site: Site, db_path: Path, http_port: int) -> AsyncIterator[Rig]:
    """The rig from START, after its first poll, plan and dispatch; its recorder at
    ``db_path``, its HTTP server on ``http_port``. Stops everything on the way out."""
    opts = RunOptions(db_path=str(db_path), http_port=http_port)
    async with app_plant(site, START, opts) as plant:
        rig = Rig(plant, db_path, http_port)
        await rig.start()
        yield rig
