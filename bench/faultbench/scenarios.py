"""Faults 1-5 and 7 of the fault benchmark, one after another on one rig: a battery silent, a
battery answering garbage, the grid meter at -4.9 MW, the batteries' gateway restarting, the
solver out of time, the recorder's disk full (and then fault 8, :mod:`faultbench.readers`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

from adapters.snapshot import MeterReading, Snapshot
from faultbench.harness import QUARTER, Rig, open_rig
from faultbench.readers import readers_phase
from faultbench.report import Row, window_row
from optimizer.params import SolveOptions
from vpp.core.clock import floor_quarter
from vpp.core.site import Site
from vpp.recorder.db import to_ms
from vpp.testing.ports import free_ports

#: The absurd grid reading of fault 3 [W].
METER_OUTLIER_W = -4.9e6

log = logging.getLogger("bench.faults")


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
        started = time.perf_counter()
        async with open_rig(site, disk.dir / "vpp.sqlite", free_ports(1)[0]) as rig:
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
