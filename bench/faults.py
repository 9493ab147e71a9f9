"""Benchmark: the demo controller under a script of faults, one table row per fault.

The controller is assembled as ``vpp run`` assembles it (:func:`vpp.app.build_controller`:
bridge, poller, controls, planner, inputs, recorder, metrics, HTTP server) in front of the
simulated demo district (88 devices on loopback; ``--small`` for 15). Faults 1-5, 7 and 8 run
one after another on that controller with a manual clock: each tick advances the clock by the
poll interval, steps the simulated plant and runs the jobs that are due, in the order of
:func:`vpp.control.runner.step`. Fault 6 kills a real ``python -m vpp run`` process with
SIGKILL and restarts it on the same ``--db`` (as ``tests/vpp/control/test_process.py`` does).

1. a battery stops answering (``fault = "silent"``)
2. a battery answers with random measurement registers (``fault = "garbage"``)
3. the grid meter reads -4.9 MW (the simulator has no hook for one value, so the benchmark
   tampers the meter's reading as the plant hands it to the controller)
4. the batteries' Modbus gateway restarts (``stop_port``, ``start_port``)
5. the solver runs out of time (the planner's time limit set to 1 us; plans fall back to rules)
6. ``kill -9`` of ``vpp run`` and a restart on the same database
7. the recorder's disk fills up (the database sits on a tmpfs; a ballast file fills it, and
   removing the ballast ends the fault; without the rights to mount, ``PRAGMA max_page_count``)
8. 200 concurrent readers of the operator API (another process, loopback), each fetching what
   the operator page fetches, as often as the page does (every 5 s); poll and dispatch
   durations without readers, with them, and without them again, measured in the same run

For each fault, from its start until the controller has recovered:

- crashes: jobs that failed (and, for 6, a process that died other than by the kill);
- writes outside limits: every batch the controller writes is checked by
  :func:`vpp.control.invariants.violations` (ratings, state-of-charge window, grid limits)
  against the snapshot the controller acted on, for the values it asked for and for the values
  that went on the wire; and against the simulator's true state of charge, device powers and
  grid exchange, beyond the resolution of the devices' registers (fault 6: from the recorder's
  setpoints and snapshots);
- refused: setpoints the controller's own last check refused (``setpoint_unsafe`` events,
  ``state.invariant_violations_total``): not written, so not a failure, but counted;
- rows lost: polls, snapshot rows, plans, setpoints and events the controller made that are
  not in the recorder (fault 6: the metrics scraped just before the kill against the rows);
- dispatches missed: quarter hours whose boundary dispatch wrote nothing;
- recovery: controller seconds and polls from the end of the fault to the first poll after
  which the faulty part is back (device online, meter plausible, plan optimal, snapshot
  recorded); fault 6: wall seconds from the kill to the restarted process's first dispatch
  (a restart costs wall time at any speed), and the polls it made before that dispatch.

Targets: 0 crashes, 0 writes outside limits, 0 rows lost, 0 dispatches missed, recovery at the
first poll after the fault ends (fault 6: within one poll interval, after one poll), job
durations with readers within 20 % of those without. A missed target is printed as missed.

Usage: ``python bench/faults.py [--small] [--quick] [--only 1 2 ...] [--readers 200] [--verbose]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import math
import multiprocessing
import os
import random
import re
import resource
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from adapters.sim.fleet import SimFleet
from adapters.snapshot import (
    BatteryReading,
    CommsHealth,
    HeatPumpReading,
    MeterReading,
    PvReading,
    Snapshot,
)
from optimizer.params import SolveOptions
from vpp.app import RunOptions, build_controller
from vpp.control.controller import Controller
from vpp.control.cycle import seconds_left
from vpp.control.inputs import InputProvider
from vpp.control.invariants import Limits, Violation, violations
from vpp.control.plant import Written
from vpp.control.safety import Setpoint
from vpp.control.schedule import job_specs
from vpp.control.state import SetpointStatus
from vpp.control.world import world_from_inputs
from vpp.core.clock import ManualClock, floor_quarter
from vpp.core.kinds import BY_SETPOINT
from vpp.core.site import BatteryDevice, Site, parse_site
from vpp.recorder.codec import device_state
from vpp.recorder.db import from_ms, to_ms

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "demo.toml"
#: A sunny June morning: PV, batteries and the heat pump all have something to do.
START = datetime(2026, 6, 21, 9, 50, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
#: As :func:`vpp.control.runner.step` (replay, tests): plans a minute before their quarter.
PLAN_LEAD_S = 60.0
#: The absurd grid reading of fault 3 [W].
METER_OUTLIER_W = -4.9e6
#: Fault 6: controller seconds per wall second of the ``vpp run`` processes.
KILL_SPEED = 60.0
#: Fault 8: the operator page's refresh (vpp/web/static/app.js REFRESH_MS) and what it fetches.
PAGE_REFRESH_S = 5.0
PAGE_PATHS = ("/api/status", "/api/plan", "/api/devices?limit=200", "/api/alerts")
READERS_TARGET = 1.20

log = logging.getLogger("bench.faults")


# -- sites ---------------------------------------------------------------------------------


def free_ports(n: int) -> list[int]:
    """``n`` distinct TCP ports on loopback that nothing listens on right now."""
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def site_data(small: bool) -> dict[str, Any]:
    """The demo district as a dict, every gateway on a free loopback port; ``small``: 6 PV
    inverters, 4 batteries (two of each control model), the meter, data centre and heat pump,
    with the grid and heat system scaled down to match (as the controller tests do)."""
    data = tomllib.loads(DEMO.read_text())
    if small:
        devices = data["devices"]
        pv = [d for d in devices if d["kind"] == "pv"][:6]
        bats = [d for d in devices if d["kind"] == "battery"]
        bats = bats[:2] + [b for b in bats if b["control"] == "802"][:2]
        rest = [d for d in devices if d["kind"] in ("meter", "datacentre", "heat_pump")]
        for d in rest:
            if d["kind"] == "datacentre":
                d["it_power_w"] = 60_000
            if d["kind"] == "heat_pump":
                d["max_el_w"] = 20_000
        data["devices"] = pv + bats + rest
        data["grid"].update(
            import_limit_w=120_000,
            export_limit_w=80_000,
            base_load_annual_wh=150_000_000,
            base_load_peak_w=45_000,
        )
        data["heat"].update(
            store_capacity_wh=800_000,
            store_max_charge_th_w=150_000,
            store_max_discharge_th_w=150_000,
            boiler_max_th_w=400_000,
            annual_demand_wh=700_000_000,
        )
    ports = sorted({d["modbus"]["port"] for d in data["devices"]})
    mapping = dict(zip(ports, free_ports(len(ports)), strict=True))
    for d in data["devices"]:
        d["modbus"]["port"] = mapping[d["modbus"]["port"]]
    return data


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {value!r}")


def toml_text(data: dict[str, Any]) -> str:
    """``data`` as a site file (plain values, lists and tables only)."""
    top = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    if "devices" in data:
        top = ["devices = ["] + [f"  {_toml_value(d)}," for d in data["devices"]] + ["]"]
        top += [
            f"{k} = {_toml_value(v)}"
            for k, v in data.items()
            if k != "devices" and not isinstance(v, dict)
        ]
    tables = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append(f"\n[{key}]")
            tables += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
    return "\n".join(top + tables) + "\n"


# -- results -------------------------------------------------------------------------------


@dataclass
class Row:
    """One fault's figures; ``None`` where a figure does not apply."""

    number: int
    fault: str
    crashes: int = 0
    outside: int = 0
    refused: int = 0
    lost: int = 0
    missed: int = 0
    recovery_s: float | None = None
    recovery_polls: int | None = None
    #: The recovery is in wall seconds (fault 6), not controller seconds.
    recovery_wall: bool = False
    #: Longest recovery [s] that meets the target, where polls do not say it all (fault 6).
    recovery_target_s: float | None = None
    #: Fault 8: poll and dispatch durations with readers / without.
    ratios: dict[str, float] | None = None
    #: What the figures are made of, and what happened.
    notes: list[str] = field(default_factory=list)
    recovered: bool = True

    def misses(self) -> list[str]:
        out = []
        if self.crashes:
            out.append("crashes")
        if self.outside:
            out.append("outside limits")
        if self.lost:
            out.append("rows lost")
        if self.missed:
            out.append("dispatches missed")
        if not self.recovered:
            out.append("no recovery")
        elif self.recovery_polls is not None and self.recovery_polls > 1:
            out.append("recovery > 1 poll")
        elif (
            self.recovery_target_s is not None
            and self.recovery_s is not None
            and self.recovery_s > self.recovery_target_s
        ):
            out.append(f"recovery > {self.recovery_target_s:g} s")
        if self.ratios is not None and any(r > READERS_TARGET for r in self.ratios.values()):
            out.append(f"readers > {READERS_TARGET - 1:.0%}")
        return out


# -- the controller on a manual clock ------------------------------------------------------


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

    async def apply(self, setpoints: list[Setpoint], source: str) -> None:
        self._source = source
        await self._apply(setpoints, source)

    def event(
        self, level: str, source: str, kind: str, message: str, device: str | None = None
    ) -> None:
        self.events.append((self.ctl.clock.now(), level, kind, device, message))
        self._event(level, source, kind, message, device)

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
    """The controller of ``vpp run`` on a manual clock in front of a simulated fleet."""

    def __init__(self, site: Site, db_path: Path, http_port: int) -> None:
        self.site = site
        self.db_path = db_path
        self.http_port = http_port
        self.clock = ManualClock(START)
        self.tick_s = site.poll.interval_s
        self.specs = job_specs(site, PLAN_LEAD_S)
        self.due: dict[str, datetime] = {}
        #: Called with the plant's snapshot before the controller sees it (fault 3).
        self.tamper: Callable[[Snapshot], Snapshot] | None = None

    async def open(self, stack: AsyncExitStack) -> None:
        site = self.site
        inputs = InputProvider.for_run(site.run.inputs_file, site.run.sources)
        world = world_from_inputs(site, inputs.sources[0])
        self.fleet = await stack.enter_async_context(
            SimFleet(site, clock=self.clock, step_interval_s=None, world=world)
        )
        opts = RunOptions(db_path=str(self.db_path), http_port=self.http_port)
        self.ctl = await build_controller(site, self.clock, opts, stack, inputs)
        self.ctl.plan_lead_s = PLAN_LEAD_S
        self.audit = Audit(self.ctl, self.fleet)
        read = self.ctl.plant.read

        async def tampered() -> Snapshot:
            snap = await read()
            return self.tamper(snap) if self.tamper is not None else snap

        self.ctl.plant.read = tampered  # type: ignore[method-assign]
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


# -- figures of a window ---------------------------------------------------------------------


def recorded(db_path: Path, start: datetime, end: datetime) -> dict[str, int]:
    """Rows the recorder holds with controller time in [start, end]."""
    lo, hi = to_ms(start), to_ms(end)
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
        one = lambda sql: int(conn.execute(sql, (lo, hi)).fetchone()[0] or 0)  # noqa: E731
        return {
            "polls": one("SELECT count(*) FROM polls WHERE time_ms BETWEEN ? AND ?"),
            "snapshot rows": one(
                "SELECT count(*) FROM snapshots s JOIN polls p ON p.id = s.poll "
                "WHERE p.time_ms BETWEEN ? AND ?"
            ),
            "plans": one("SELECT count(*) FROM plans WHERE created_ms BETWEEN ? AND ?"),
            "setpoints": one("SELECT count(*) FROM setpoints WHERE time_ms BETWEEN ? AND ?"),
            "events": one("SELECT count(*) FROM events WHERE time_ms BETWEEN ? AND ?"),
        }


def done(audit: Audit, start: datetime, end: datetime) -> dict[str, int]:
    """What the controller did in [start, end] that it should have recorded."""
    inside = lambda t: start <= t <= end  # noqa: E731
    polls = [n for t, n in audit.polls if inside(t)]
    return {
        "polls": len(polls),
        "snapshot rows": sum(polls),
        "plans": sum(1 for j in audit.jobs if j.name == "plan" and j.ok and inside(j.time)),
        "setpoints": sum(n for t, _, n, _ in audit.batches if inside(t)),
        "events": sum(1 for e in audit.events if inside(e[0])),
    }


def boundaries(start: datetime, end: datetime) -> list[datetime]:
    """Quarter-hour boundaries in [start, end]."""
    b = floor_quarter(start)
    if b < start:
        b += QUARTER
    out = []
    while b <= end:
        out.append(b)
        b += QUARTER
    return out


def window_row(rig: Rig, row: Row, start: datetime, end: datetime) -> Row:
    """Crashes, writes outside limits, refusals, lost rows and missed dispatches in
    [start, end]; details go to the row's notes."""
    audit = rig.audit
    inside = lambda t: start <= t <= end  # noqa: E731
    failed = [j for j in audit.jobs if inside(j.time) and not j.ok]
    row.crashes += len(failed)
    for j in failed[:3]:
        row.notes.append(f"job {j.name} failed at {j.time:%H:%M:%S}: {j.error}")
    bad: dict[tuple[datetime, str], list[tuple[str, Violation]]] = {}
    for w in audit.writes:
        if inside(w.time):
            for view, v in w.problems:
                bad.setdefault((w.time, v.device_id), []).append((view, v))
    row.outside += len(bad)
    checked = [w for w in audit.writes if inside(w.time)]
    row.notes.append(
        f"checked {sum(w.written for w in checked)} written setpoints in {len(checked)} batches"
    )
    views = Counter(view for problems in bad.values() for view, _ in problems)
    if bad:
        row.notes.append(
            "outside limits, by view: " + ", ".join(f"{k} {n}" for k, n in sorted(views.items()))
        )
        for (t, _), problems in list(bad.items())[:3]:
            view, v = problems[0]
            row.notes.append(f"  {t:%H:%M:%S} [{view}] {v} ({v.kind})")
    row.refused += sum(1 for e in audit.events if inside(e[0]) and e[2] == "setpoint_unsafe")
    seen = [e for e in audit.events if inside(e[0])]
    if seen:
        kinds = Counter(e[2] for e in seen)
        row.notes.append("events: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
        for kind in dict.fromkeys(e[2] for e in seen if e[1] != "info"):
            t, _, _, _, message = next(e for e in seen if e[2] == kind)
            row.notes.append(f"  first {kind} at {t:%H:%M:%S}: {message[:140]}")
    did, rec = done(audit, start, end), recorded(rig.db_path, start, end)
    lost = {k: did[k] - rec[k] for k in did if did[k] != rec[k]}
    row.lost += sum(max(0, n) for n in lost.values())
    if lost:
        row.notes.append(
            "recorded vs done: "
            + ", ".join(f"{k} {rec[k]}/{did[k]}" for k in did if k in lost)
            + f"; recorder errors {rig.ctl.state.recorder_errors_total} so far"
        )
    quarters = boundaries(start, end)
    for b in quarters:
        wrote = [w for t, s, _, w in audit.batches if t == b and s == "dispatch"]
        if not any(wrote):
            row.missed += 1
            kinds = sorted({e[2] for e in audit.events if e[0] == b and e[1] != "info"})
            row.notes.append(f"no dispatch written at {b:%H:%M} (events then: {kinds})")
    row.notes.append(
        f"quarter-hour boundaries {', '.join(f'{b:%H:%M}' for b in quarters) or 'none'}: "
        f"{len(quarters) - row.missed} dispatched"
    )
    return row


# -- faults 1-5 and 7 on the rig -------------------------------------------------------------


def next_fault_start(now: datetime, before_boundary: timedelta) -> datetime:
    """A fault start ``before_boundary`` ahead of a quarter hour, at least a minute from now."""
    b = floor_quarter(now + before_boundary + timedelta(minutes=1)) + QUARTER
    return b - before_boundary


async def fault_phase(
    rig: Rig,
    row: Row,
    *,
    inject: Callable[[], Any],
    clear: Callable[[], Any],
    check: Callable[[], bool],
    duration: timedelta,
    lead: timedelta,
    recovery_limit: timedelta,
) -> Row:
    """Run to the fault's start, hold the fault for ``duration`` (across a quarter-hour
    boundary ``lead`` after its start), end it, and tick until ``check`` holds after a poll."""
    start = next_fault_start(rig.now, lead)
    await rig.run_until(start)
    began = rig.now
    result = inject()
    if asyncio.iscoroutine(result):
        await result
    await rig.run_until(began + duration)
    result = clear()
    if asyncio.iscoroutine(result):
        await result
    found = await rig.until_recovered(check, recovery_limit)
    if found is None:
        row.recovered = False
        row.notes.append(f"not recovered within {recovery_limit.total_seconds():.0f} s")
    else:
        row.recovery_s, row.recovery_polls = found
    return window_row(rig, row, began, rig.now)


def online(rig: Rig, *device_ids: str) -> bool:
    snap = rig.ctl.state.snapshot
    return snap is not None and all(snap.devices[d].health.online for d in device_ids)


class DiskSpace:
    """A small file system for the recorder that the benchmark can fill and free: a tmpfs
    (needs root), or else the database's ``PRAGMA max_page_count``."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "recorder"
        self.dir.mkdir()
        self.mounted = False
        self.ballast = self.dir / "ballast"
        self._pages: int | None = None

    def mount(self) -> None:
        cmd = ["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(self.dir)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        self.mounted = result.returncode == 0
        if not self.mounted:
            log.warning("no tmpfs (%s): PRAGMA max_page_count instead", result.stderr.strip())

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", str(self.dir)], check=False)
            self.mounted = False

    def fill(self, recorder: Any) -> str:
        """Leave no room for the recorder; says how.

        The WAL is truncated first: the recorder's checkpoints are PASSIVE and leave the WAL
        file at its size, so on a full disk it would write on into that file's free frames
        (about 4 MB) and fail only once they are used up; truncated, the next commit needs a
        new block of the file system at once."""
        with recorder._lock:  # the benchmark's way in; nothing else writes meanwhile
            recorder._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        if self.mounted:
            chunk = b"\0" * (1 << 20)
            written = 0
            fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                for size in (1 << 20, 1 << 12, 1):  # down to the last byte
                    while True:
                        try:
                            n = os.write(fd, chunk[:size])
                        except OSError as exc:
                            if exc.errno != errno.ENOSPC:
                                raise
                            break
                        written += n
                        if n < size:
                            break
            finally:
                os.close(fd)
            return f"tmpfs filled with a {written / 1e6:.0f} MB ballast file"
        conn = recorder._conn
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        self._pages = int(conn.execute("PRAGMA max_page_count").fetchone()[0])
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return f"PRAGMA max_page_count = {pages} (the current size)"

    def free(self, recorder: Any) -> None:
        if self.mounted:
            with contextlib.suppress(FileNotFoundError):
                self.ballast.unlink()
        elif self._pages is not None:
            recorder._conn.execute(f"PRAGMA max_page_count = {self._pages}")


def poll_recorded(rig: Rig) -> bool:
    """The last poll is in the recorder."""
    t = to_ms(rig.now)
    with contextlib.closing(sqlite3.connect(f"file:{rig.db_path}?mode=ro", uri=True)) as conn:
        return conn.execute("SELECT 1 FROM polls WHERE time_ms = ?", (t,)).fetchone() is not None


async def rig_faults(
    site: Site, args: argparse.Namespace, tmp: Path, console: Console
) -> dict[int, Row]:
    rows: dict[int, Row] = {}
    if not args.only & {1, 2, 3, 4, 5, 7, 8}:
        return rows
    disk = DiskSpace(tmp)
    disk.mount()
    try:
        rig = Rig(site, disk.dir / "vpp.sqlite", free_ports(1)[0])
        async with AsyncExitStack() as stack:
            started = time.perf_counter()
            await rig.open(stack)
            console.print(
                f"controller up: {len(site.devices)} devices, first plan "
                f"{rig.ctl.state.plan.info.status if rig.ctl.state.plan else None} "
                f"({time.perf_counter() - started:.1f} s wall)"
            )
            await rig.run_until(rig.now + timedelta(minutes=5))
            duration = timedelta(minutes=2 if args.quick else 5)
            lead = timedelta(minutes=1 if args.quick else 3)
            limit = timedelta(minutes=5)
            bats = site.batteries
            silent, garbage = bats[1].id, bats[2].id
            meter = site.grid.meter
            port = bats[0].modbus.port
            on_port = [d.id for d in site.devices if d.modbus.port == port]
            fleet = rig.fleet

            async def phase(number: int, name: str, **kw: Any) -> None:
                if number not in args.only:
                    return
                wall = time.perf_counter()
                row = await fault_phase(rig, Row(number, name), **kw)
                rows[number] = row
                console.print(
                    f"  {number}. {name}: {time.perf_counter() - wall:.1f} s wall, "
                    f"until {rig.now:%H:%M:%S}"
                )

            def set_fault(device: str, fault: str) -> Callable[[], None]:
                def do() -> None:
                    fleet.device(device).fault = fault  # type: ignore[assignment]

                return do

            await phase(
                1,
                f"device silent ({silent})",
                inject=set_fault(silent, "silent"),
                clear=set_fault(silent, "none"),
                check=lambda: online(rig, silent),
                duration=duration,
                lead=lead,
                recovery_limit=limit,
            )
            await phase(
                2,
                f"device garbage ({garbage})",
                inject=set_fault(garbage, "garbage"),
                clear=set_fault(garbage, "none"),
                check=lambda: online(rig, garbage),
                duration=duration,
                lead=lead,
                recovery_limit=limit,
            )

            def outlier(snap: Snapshot) -> Snapshot:
                st = snap.devices.get(meter or "")
                if st is None or not isinstance(st.reading, MeterReading):
                    return snap
                bad = replace(st, reading=replace(st.reading, power_w=METER_OUTLIER_W))
                return replace(snap, devices={**snap.devices, bad.id: bad})

            def set_tamper(fn: Callable[[Snapshot], Snapshot] | None) -> Callable[[], None]:
                def do() -> None:
                    rig.tamper = fn

                return do

            await phase(
                3,
                f"grid meter reads {METER_OUTLIER_W / 1e6:.1f} MW",
                inject=set_tamper(outlier),
                clear=set_tamper(None),
                check=lambda: online(rig, meter or ""),
                duration=duration,
                lead=lead,
                recovery_limit=limit,
            )
            await phase(
                4,
                f"gateway restart (port of {len(on_port)} devices)",
                inject=lambda: fleet.stop_port(port),
                clear=lambda: fleet.start_port(port),
                check=lambda: online(rig, *on_port),
                duration=duration,
                lead=lead,
                recovery_limit=limit,
            )

            planner = rig.ctl.planner
            normal = planner.options

            def slow_solver() -> None:
                planner.options = SolveOptions(time_limit_s=1e-6)

            def normal_solver() -> None:
                planner.options = normal

            def optimal() -> bool:
                plan = rig.ctl.state.plan
                return plan is not None and plan.info.status == "optimal"

            fallbacks = rig.ctl.state.fallbacks_total
            await phase(
                5,
                "solver time-out",
                inject=slow_solver,
                clear=normal_solver,
                check=optimal,
                # Starts before the quarter's plan (PLAN_LEAD_S ahead of the boundary).
                duration=max(duration, timedelta(minutes=3)),
                lead=max(lead, timedelta(minutes=2)),
                recovery_limit=timedelta(minutes=20),
            )
            if 5 in rows:
                rows[5].notes.append(
                    f"fallback plans during the fault: {rig.ctl.state.fallbacks_total - fallbacks}"
                )

            how: list[str] = []
            errors = rig.ctl.state.recorder_errors_total

            def fill() -> None:
                how.append(disk.fill(rig.ctl.recorder))

            await phase(
                7,
                "recorder disk full",
                inject=fill,
                clear=lambda: disk.free(rig.ctl.recorder),
                check=lambda: poll_recorded(rig),
                duration=duration,
                lead=lead,
                recovery_limit=limit,
            )
            if 7 in rows:
                rows[7].notes.insert(
                    0,
                    f"{how[0] if how else '?'}; recorder errors during the fault: "
                    f"{rig.ctl.state.recorder_errors_total - errors}",
                )
                with contextlib.closing(sqlite3.connect(rig.db_path)) as conn:
                    check = conn.execute("PRAGMA quick_check").fetchone()[0]
                rows[7].notes.append(f"database quick_check after the fault: {check}")
            if 8 not in args.only:
                return rows
            wall = time.perf_counter()
            rows[8] = await readers_phase(rig, args)
            console.print(f"  8. API readers: {time.perf_counter() - wall:.1f} s wall")
    finally:
        disk.unmount()
    return rows


# -- fault 8: concurrent readers of the API ----------------------------------------------------


def _readers_main(
    url: str, n: int, period_s: float, max_s: float, ready: Any, active: Any, stop: Any, out: Any
) -> None:
    # Browsers run on other machines: here they yield the CPU to the controller.
    with contextlib.suppress(OSError):
        os.nice(10)
    out.put(asyncio.run(_readers(url, n, period_s, max_s, ready, active, stop)))


async def _readers(
    url: str, n: int, period_s: float, max_s: float, ready: Any, active: Any, stop: Any
) -> dict[str, Any]:
    """``n`` operator pages, each fetching PAGE_PATHS at once every ``period_s`` (spread
    evenly over the period) while ``active`` is set, until ``stop`` is set or ``max_s``."""
    import aiohttp  # only in the child

    latencies: list[float] = []
    by_path: dict[str, list[float]] = {p: [] for p in PAGE_PATHS}
    errors: Counter[str] = Counter()
    began = time.monotonic()
    deadline = began + max_s
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def get(path: str) -> None:
            started = time.monotonic()
            try:
                async with session.get(url + path) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors[f"HTTP {resp.status}"] += 1
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[type(exc).__name__] += 1
                return
            latencies.append(time.monotonic() - started)
            by_path[path].append(latencies[-1])

        async def reader(i: int) -> None:
            # Each page keeps its own phase, so switching the load on needs no ramp.
            for k in range(int(max_s / period_s) + 1):
                due = began + period_s * (k + i / n)
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if time.monotonic() >= deadline:
                    return
                if active.is_set():
                    await asyncio.gather(*(get(p) for p in PAGE_PATHS))

        tasks = [asyncio.create_task(reader(i)) for i in range(n)]
        ready.set()
        # A multiprocessing Event: waited for in a thread, the readers go on meanwhile.
        await asyncio.to_thread(stop.wait, max(0.0, deadline - time.monotonic()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    q = lambda p: latencies[int(p * (len(latencies) - 1))] if latencies else math.nan  # noqa: E731
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "requests": len(latencies),
        "errors": dict(errors),
        "p50_s": q(0.5),
        "p95_s": q(0.95),
        "max_s": latencies[-1] if latencies else math.nan,
        "path_p50_s": {p: statistics.median(v) if v else math.nan for p, v in by_path.items()},
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }


class Readers:
    """The readers in a child process (a browser is not in the controller's process),
    switched on and off with :meth:`load`."""

    def __init__(self, url: str, n: int, period_s: float, max_s: float) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._ready = ctx.Event()
        self._active = ctx.Event()
        self._stop = ctx.Event()
        self._out: Any = ctx.Queue()
        self._proc = ctx.Process(
            target=_readers_main,
            args=(url, n, period_s, max_s, self._ready, self._active, self._stop, self._out),
            name="bench-api-readers",
        )
        self.result: dict[str, Any] = {}

    def load(self, on: bool) -> None:
        if on:
            self._active.set()
        else:
            self._active.clear()

    async def __aenter__(self) -> Readers:
        self._proc.start()
        for _ in range(300):  # 30 s at most
            if self._ready.is_set() or not self._proc.is_alive():
                break
            await asyncio.sleep(0.1)
        if not self._ready.is_set():
            self._kill()
            raise RuntimeError("the API readers did not start")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._active.clear()
        self._stop.set()
        for _ in range(200):  # 20 s at most
            with contextlib.suppress(Exception):
                self.result = self._out.get_nowait()
                break
            await asyncio.sleep(0.1)
        self._kill()

    def _kill(self) -> None:
        self._proc.join(5)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)


async def timed_ticks(rig: Rig, ticks: int, pace_s: float) -> dict[str, list[float]]:
    """``ticks`` poll intervals, each with the jobs that are due (a poll every tick) and one
    more dispatch of the current quarter, at most one tick per ``pace_s`` of wall time, so
    the event loop is idle between jobs as in a live run and answers requests then."""
    out: dict[str, list[float]] = {"poll": [], "dispatch": []}
    for _ in range(ticks):
        started = time.perf_counter()
        n = len(rig.audit.jobs)
        await rig.tick()
        await rig._run("dispatch")
        for j in rig.audit.jobs[n:]:
            if j.name in out:
                out[j.name].append(j.wall_s)
        await asyncio.sleep(max(0.0, pace_s - (time.perf_counter() - started)))
    return out


def request_times(url: str, repeat: int) -> dict[str, float]:
    """Median wall time of each page request, one at a time (no other load): what one
    request costs the controller's event loop, give or take the client."""
    out = {}
    for path in PAGE_PATHS:
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            with urllib.request.urlopen(url + path, timeout=10) as resp:
                resp.read()
            times.append(time.perf_counter() - started)
        out[path] = statistics.median(times)
    return out


async def readers_phase(rig: Rig, args: argparse.Namespace) -> Row:
    """Blocks of ticks without and with readers, alternating (off first and last), so a
    change in the machine's load meets both alike."""
    row = Row(8, f"{args.readers} concurrent API readers")
    blocks, ticks, pace = (5, 6, 0.5) if args.quick else (7, 10, 0.5)
    await rig.run_until(rig.now + timedelta(minutes=1))
    began = rig.now
    url = f"http://127.0.0.1:{rig.http_port}"
    max_s = blocks * ticks * (pace + 2.0) + 60
    times: dict[bool, dict[str, list[float]]] = {False: {}, True: {}}
    loaded_s = 0.0
    alone = await asyncio.to_thread(request_times, url, 5)
    async with Readers(url, args.readers, args.reader_period_s, max_s) as readers:
        for block in range(blocks):
            on = block % 2 == 1
            readers.load(on)
            started = time.perf_counter()
            for job, values in (await timed_ticks(rig, ticks, pace)).items():
                times[on].setdefault(job, []).extend(values)
            if on:
                loaded_s += time.perf_counter() - started
    row = window_row(rig, row, began, rig.now)
    row.notes.append(
        "load average (1 min) of the machine at the end: "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    row.ratios = {}
    for job in ("poll", "dispatch"):
        base, with_ = statistics.median(times[False][job]), statistics.median(times[True][job])
        row.ratios[job] = with_ / base
        row.notes.append(
            f"{job}: median {base * 1e3:.0f} ms without readers ({len(times[False][job])} runs), "
            f"{with_ * 1e3:.0f} ms with them ({len(times[True][job])} runs): x{with_ / base:.2f}"
        )
    per_page = sum(alone.values())
    row.notes.append(
        "one request at a time, no readers: "
        + ", ".join(f"{p} {t * 1e3:.0f} ms" for p, t in alone.items())
        + f"; {per_page * 1e3:.0f} ms per page refresh, so {args.readers} pages every "
        f"{args.reader_period_s:g} s ask for about "
        f"{per_page * args.readers / args.reader_period_s:.0%} of the event loop"
    )
    res = readers.result
    if res:
        rate = res["requests"] / loaded_s if loaded_s else math.nan
        row.notes.append(
            f"readers: {args.readers} pages every {args.reader_period_s:g} s, "
            f"{res['requests']} requests answered ({rate:.0f}/s while on), "
            f"p50 {res['p50_s'] * 1e3:.0f} ms, p95 {res['p95_s'] * 1e3:.0f} ms, "
            f"max {res['max_s'] * 1e3:.0f} ms, errors {res['errors'] or 0}; the reader process "
            f"used {res['cpu_s']:.1f} s of CPU (nice 10)"
        )
        row.notes.append(
            "median latency by path: "
            + ", ".join(f"{p} {t * 1e3:.0f} ms" for p, t in res["path_p50_s"].items())
        )
    else:
        row.notes.append("readers: no result from the reader process")
    return row


# -- fault 6: kill -9 and restart of vpp run ---------------------------------------------------


def scrape(port: int) -> dict[str, float] | None:
    """The controller's metrics (series name with labels -> value), or None."""
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([a-z_]+(?:\{[^}]*\})?) ([0-9.e+-]+|NaN)$", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def job_metric(metrics: dict[str, float], name: str, task: str) -> int:
    return int(metrics.get(f'{name}{{task="{task}"}}', 0))


@contextlib.contextmanager
def vpp_run(
    site: Path, db: Path, port: int, start: datetime, logfile: Path
) -> Iterator[subprocess.Popen[bytes]]:
    cmd = [sys.executable, "-m", "vpp", "run", "--config", str(site), "--speed",
           str(KILL_SPEED), "--start", start.isoformat(), "--db", str(db),
           "--http-port", str(port), "--log-level", "warning"]  # fmt: skip
    with logfile.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def wait_for(
    check: Callable[[], bool], timeout_s: float, proc: subprocess.Popen[bytes]
) -> float | None:
    """Wall seconds until ``check`` held (polled every 0.1 s), None on timeout or exit."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        if proc.poll() is not None:
            return None
        time.sleep(0.1)
    return None


def db_rows(db: Path, after_ms: int = -(2**62), integrity: bool = False) -> dict[str, Any]:
    """Row counts of the recorder with controller time after ``after_ms``."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        one = lambda sql: conn.execute(sql, (after_ms,)).fetchone()  # noqa: E731
        polls, devices, first, last = one(
            "SELECT count(*), sum(n_devices), min(time_ms), max(time_ms) FROM polls "
            "WHERE time_ms > ?"
        )
        first_setpoint = one("SELECT min(time_ms) FROM setpoints WHERE time_ms > ?")[0]
        return {
            "polls": polls,
            "n_devices": devices or 0,
            "snapshot rows": one(
                "SELECT count(*) FROM snapshots s JOIN polls p ON p.id = s.poll WHERE p.time_ms > ?"
            )[0],
            "plans": one("SELECT count(*) FROM plans WHERE created_ms > ?")[0],
            "first_plan_ms": one("SELECT min(created_ms) FROM plans WHERE created_ms > ?")[0],
            "setpoints": one("SELECT count(*) FROM setpoints WHERE time_ms > ?")[0],
            "first_setpoint_ms": first_setpoint,
            "polls_to_first_setpoint": conn.execute(
                "SELECT count(*) FROM polls WHERE time_ms > ? AND time_ms <= ?",
                (after_ms, first_setpoint if first_setpoint is not None else -(2**62)),
            ).fetchone()[0],
            "first_ms": first,
            "last_ms": last,
            # The latest row of any table: where the next process's rows begin.
            "end_ms": max(
                one(f"SELECT max({column}) FROM {table} WHERE {column} > ?")[0] or after_ms
                for table, column in (
                    ("polls", "time_ms"),
                    ("plans", "created_ms"),
                    ("setpoints", "time_ms"),
                    ("events", "time_ms"),
                )
            ),
            "integrity": conn.execute("PRAGMA integrity_check").fetchone()[0]
            if integrity
            else None,
            "events": [
                r[0] for r in conn.execute("SELECT kind FROM events WHERE time_ms > ?", (after_ms,))
            ],
        }


def recorded_writes_outside(site: Site, db: Path) -> tuple[int, list[str]]:
    """Setpoints in the recorder whose written value breaks the invariants against the
    snapshot recorded last before it (every batch: rows with one time)."""
    kinds = BY_SETPOINT
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        polls = conn.execute("SELECT id, time_ms FROM polls ORDER BY time_ms").fetchall()
        rows = conn.execute(
            "SELECT time_ms, device, quantity, requested, written FROM setpoints "
            "WHERE written IS NOT NULL ORDER BY time_ms"
        ).fetchall()
        batches: dict[int, list[Setpoint]] = {}
        for t, device, quantity, requested, written in rows:
            sp = Setpoint(device, kinds[quantity], float(written), float(requested or written))
            batches.setdefault(t, []).append(sp)
        cache: dict[int, Snapshot] = {}
        count, notes = 0, []
        times = [p[1] for p in polls]
        for t, batch in batches.items():
            i = max(0, _bisect_right(times, t) - 1)
            poll_id, poll_ms = polls[i]
            if poll_id not in cache:
                states = conn.execute(
                    "SELECT d.id, d.kind, s.read_at_ms, s.reading, s.health FROM snapshots s "
                    "JOIN devices d ON d.key = s.device WHERE s.poll = ?",
                    (poll_id,),
                ).fetchall()
                cache[poll_id] = Snapshot(
                    from_ms(poll_ms), {r[0]: device_state(*r) for r in states}
                )
            when = from_ms(t)
            found = violations(
                site, cache[poll_id], batch, Limits.at(site, [], when), seconds_left(when)
            )
            count += len({v.device_id for v in found})
            notes += [f"  {when:%H:%M:%S} {v} ({v.kind})" for v in found[:2]]
    return count, notes[:3]


def _bisect_right(values: list[int], x: int) -> int:
    lo, hi = 0, len(values)
    while lo < hi:
        mid = (lo + hi) // 2
        if x < values[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def kill_and_restart(data: dict[str, Any], args: argparse.Namespace, tmp: Path) -> Row:
    """Fault 6: ``vpp run`` at KILL_SPEED, SIGKILL right after its first scheduled plan (made
    PLAN_LEAD_S of wall time before its quarter hour, so before that quarter's dispatch),
    restarted at once on the same database with its clock continuing where the killed one's
    would be. Restarting takes wall time whatever the speed: the recovery is given in wall
    seconds (at speed 1 the same in controller seconds), the x60 figures in the notes."""
    row = Row(6, "kill -9 of vpp run, restart on the same --db")
    data = {**data, "run": {**data.get("run", {}), "simulate": True}}
    site = parse_site(data, "<kill>")
    site_path, db, logfile = tmp / "site.toml", tmp / "kill.sqlite", tmp / "vpp-run.log"
    site_path.write_text(toml_text(data))
    port = free_ports(1)[0]
    t0 = START + timedelta(hours=4)
    plans_before_kill = 2  # the first at start, the second made ahead of a quarter hour
    launched = time.monotonic()

    def metric_at_least(name: str, n: float) -> Callable[[], bool]:
        return lambda: ((scrape(port) or {}).get(name) or 0) >= n

    with vpp_run(site_path, db, port, t0, logfile) as proc:
        if wait_for(metric_at_least("vpp_plans_total", plans_before_kill), 120, proc) is None:
            row.crashes += 1
            row.recovered = False
            row.notes.append("the first process did not plan; log: " + _tail(logfile))
            return row
        time.sleep(20.0 / KILL_SPEED)  # a poll or two later
        before = scrape(port) or {}
        os.kill(proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        proc.wait(timeout=10)
    a = db_rows(db, integrity=True)
    polls_a = job_metric(before, "vpp_job_runs_total", "poll")
    dispatches_a = job_metric(before, "vpp_job_runs_total", "dispatch")
    errors_a = int(before.get("vpp_recorder_errors_total", 0))
    failures = sum(v for k, v in before.items() if k.startswith("vpp_job_failures_total"))
    lost_a = max(0, polls_a - errors_a - a["polls"]) + max(
        0, int(before.get("vpp_plans_total", 0)) - a["plans"]
    )
    torn = a["n_devices"] - a["snapshot rows"]
    # The killed clock ran from t0 at about launch (each process starts its clock after the
    # same imports): the restart's clock continues as if the first had kept running.
    restarted = time.monotonic()
    t_b = t0 + timedelta(seconds=(restarted - launched) * KILL_SPEED)
    with vpp_run(site_path, db, port, t_b, logfile) as proc:
        firsts: dict[str, float] = {}

        def first_runs() -> bool:
            metrics = scrape(port) or {}
            for job in ("poll", "dispatch"):
                if job not in firsts and job_metric(metrics, "vpp_job_runs_total", job) >= 1:
                    firsts[job] = time.monotonic() - killed
            return "dispatch" in firsts

        if wait_for(first_runs, 120, proc) is None:
            row.crashes += 1
            row.recovered = False
            row.notes.append("the restarted process did not dispatch; log: " + _tail(logfile))
            return row
        # A quarter hour and a bit in the restarted process.
        wait_for(lambda: False, (QUARTER.total_seconds() + 150) / KILL_SPEED, proc)
        end = scrape(port) or {}
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    if code != 0:
        row.crashes += 1
        row.notes.append(f"restarted process exited with {code} on SIGTERM")
    b = db_rows(db, a["end_ms"], integrity=True)
    failures += sum(v for k, v in end.items() if k.startswith("vpp_job_failures_total"))
    row.crashes += int(failures)
    polls_b = job_metric(end, "vpp_job_runs_total", "poll")
    dispatches_b = job_metric(end, "vpp_job_runs_total", "dispatch")
    errors_b = int(end.get("vpp_recorder_errors_total", 0))
    lost_b = max(0, polls_b - errors_b - b["polls"]) + max(
        0, int(end.get("vpp_plans_total", 0)) - b["plans"]
    )
    row.lost = lost_a + lost_b + max(0, torn) + max(0, b["n_devices"] - b["snapshot rows"])
    row.notes.append(
        f"before the kill: {polls_a} polls, {int(before.get('vpp_plans_total', 0))} plans run; "
        f"recorded {a['polls']} polls, {a['snapshot rows']}/{a['n_devices']} snapshot rows, "
        f"{a['plans']} plans; integrity {a['integrity']}"
    )
    row.notes.append(
        f"after the restart: {polls_b} polls, {int(end.get('vpp_plans_total', 0))} plans run; "
        f"recorded {b['polls']} polls, {b['plans']} plans; integrity {b['integrity']}; "
        f"plan_restored {'plan_restored' in b['events']}"
    )
    # Dispatches: each process dispatches once as it starts (after its first plan), then its
    # scheduler once per quarter-hour boundary; a boundary while it is down is dispatched
    # late, by the restarted process, or not at all if its quarter hour passes first.
    last_a, last_b = from_ms(a["last_ms"]), from_ms(b["last_ms"])
    first_b = from_ms(b["first_ms"])
    first_dispatch_a = from_ms(a["first_setpoint_ms"]) if a["first_setpoint_ms"] else last_a
    first_dispatch_b = from_ms(b["first_setpoint_ms"]) if b["first_setpoint_ms"] else last_b
    due_a = len(boundaries(first_dispatch_a + timedelta(milliseconds=1), last_a))
    due_b = len(boundaries(first_dispatch_b + timedelta(milliseconds=1), last_b))
    missed_a = max(0, due_a - (dispatches_a - 1))
    missed_b = max(0, due_b - (dispatches_b - 1))
    gap = boundaries(last_a + timedelta(milliseconds=1), first_dispatch_b)
    dead = [q for q in gap if first_dispatch_b >= q + QUARTER]
    no_plan = a["events"].count("no_plan") + b["events"].count("no_plan")
    row.missed = missed_a + missed_b + len(dead) + no_plan
    for q in gap:
        if q not in dead:
            late = (first_dispatch_b - q).total_seconds()
            row.notes.append(
                f"dispatch of {q:%H:%M} {late:.0f} s late at x{KILL_SPEED:g} "
                f"({late / KILL_SPEED:.1f} s wall), by the restarted process"
            )
    row.notes.append(
        f"dispatch runs: {dispatches_a} before the kill ({due_a} boundaries after the first), "
        f"{dispatches_b} after the restart ({due_b}); quarter hours with no dispatch at all "
        f"while down: {len(dead)}; no_plan events: {no_plan}"
    )
    outside, notes = recorded_writes_outside(site, db)
    row.outside = outside
    row.notes += notes
    # Recovery: from the kill to the first dispatch of the restarted process, wall time.
    row.recovery_s = firsts["dispatch"]
    row.recovery_wall = True
    row.recovery_polls = b["polls_to_first_setpoint"]
    row.recovery_target_s = site.poll.interval_s
    first_plan_b = b["first_plan_ms"]
    row.notes.append(
        f"restarted at once (the systemd unit would wait RestartSec=5s first); first poll "
        f"{firsts.get('poll', math.nan):.1f} s, first dispatch {firsts['dispatch']:.1f} s wall "
        f"after the kill (x{KILL_SPEED:g}: {(first_dispatch_b - last_a).total_seconds():.0f} "
        f"controller s from the last poll before the kill)"
    )
    if first_plan_b is not None and from_ms(first_plan_b) <= first_dispatch_b:
        row.notes.append(
            "the restarted process wrote nothing before its first new plan: first poll "
            f"{first_b:%H:%M:%S}, plan {from_ms(first_plan_b):%H:%M:%S}, first setpoints "
            f"{first_dispatch_b:%H:%M:%S} (controller time at x{KILL_SPEED:g}; "
            f"{(first_dispatch_b - first_b).total_seconds() / KILL_SPEED:.1f} s wall "
            "waiting for the solve)"
        )
    return row


def _tail(path: Path, n: int = 1500) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-n:]
    return "(no log)"


# -- table -------------------------------------------------------------------------------------


def print_table(console: Console, rows: list[Row], title: str) -> None:
    table = Table(title=title)
    for col in ("#", "fault", "crashes", "writes outside limits", "refused (not written)",
                "rows lost", "dispatches missed", "recovery", "result"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("fault", "result") else "right")
    table.add_row("", "target", "0", "0", "-", "0", "0", "<= 1 poll", "", style="dim")
    all_ok = True
    for row in rows:
        if row.ratios is not None:
            recovery = ", ".join(f"{k} x{v:.2f}" for k, v in row.ratios.items())
        elif not row.recovered:
            recovery = "none"
        elif row.recovery_s is None:
            recovery = "-"
        else:
            unit = "s wall" if row.recovery_wall else "s"
            recovery = f"{row.recovery_s:.{1 if row.recovery_wall else 0}f} {unit} / "
            recovery += f"{row.recovery_polls} poll(s)"
        misses = row.misses()
        all_ok &= not misses
        result = "ok" if not misses else "missed: " + ", ".join(misses)
        table.add_row(
            str(row.number), row.fault, str(row.crashes), str(row.outside), str(row.refused),
            str(row.lost), str(row.missed), recovery, result,
            style=None if not misses else "bold",
        )  # fmt: skip
    console.print(table)
    console.print(
        "targets: 0 crashes, 0 writes outside limits, 0 rows lost, 0 dispatches missed, "
        "recovery at the first poll after the fault ends (fault 6: the restarted process "
        "dispatches after its first poll and within one poll interval of the kill), readers: "
        f"poll and dispatch within {READERS_TARGET - 1:.0%} of their durations without readers "
        "(recovery column)"
    )
    for row in rows:
        if row.notes:
            console.print(f"[bold]{row.number}. {row.fault}[/bold]")
            for note in row.notes:
                console.print(f"   {note}", markup=False, highlight=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="15 devices instead of 88")
    parser.add_argument("--quick", action="store_true", help="shorter faults and phases")
    parser.add_argument("--readers", type=int, default=200)
    parser.add_argument("--reader-period-s", type=float, default=PAGE_REFRESH_S)
    parser.add_argument(
        "--only", type=int, nargs="+", default=list(range(1, 9)), help="these faults only"
    )
    parser.add_argument("--verbose", action="store_true", help="the controller's warnings")
    args = parser.parse_args()
    args.only = set(args.only)
    logging.basicConfig(
        level=logging.WARNING if args.verbose else logging.CRITICAL,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    console = Console(width=None if sys.stdout.isatty() else 170)
    random.seed(1)
    started = time.perf_counter()
    data = site_data(args.small)
    site = parse_site(data, "<bench>")
    with tempfile.TemporaryDirectory(prefix="vpp-faults-") as name:
        tmp = Path(name)
        console.print(f"faults 1-5, 7, 8 on a manual clock from {START:%Y-%m-%d %H:%M} UTC")
        rows = asyncio.run(rig_faults(site, args, tmp, console))
        if 6 in args.only:
            console.print(f"fault 6: vpp run at x{KILL_SPEED:g}, kill -9, restart")
            wall = time.perf_counter()
            rows[6] = kill_and_restart(site_data(args.small), args, tmp)
            console.print(f"  6. kill -9: {time.perf_counter() - wall:.1f} s wall")
    title = (
        f"Faults: {len(site.devices)} simulated devices, poll every {site.poll.interval_s:g} s"
        f" ({time.perf_counter() - started:.0f} s wall{', quick' if args.quick else ''})"
    )
    print_table(console, [rows[k] for k in sorted(rows)], title)


if __name__ == "__main__":
    main()
