"""Fault 6 of the fault benchmark: ``kill -9`` of a real ``python -m vpp run`` process and a
restart on the same ``--db``, judged from its metrics and its recorder."""

from __future__ import annotations

import argparse
import bisect
import contextlib
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.snapshot import Snapshot
from faultbench.harness import QUARTER, START
from faultbench.report import Row, boundaries
from vpp.control.cycle import seconds_left
from vpp.control.invariants import Limits, violations
from vpp.control.safety import Setpoint
from vpp.core.kinds import BY_SETPOINT
from vpp.core.site import Site, parse_site
from vpp.recorder.codec import device_state
from vpp.recorder.db import from_ms
from vpp.testing.harness import ROOT, toml_text
from vpp.testing.ports import free_ports

#: Fault 6: controller seconds per wall second of the ``vpp run`` processes.
KILL_SPEED = 60.0


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
            i = max(0, bisect.bisect_right(times, t) - 1)
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
