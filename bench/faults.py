"""Benchmark: the demo controller under a script of faults, one table row per fault.

The controller is assembled as ``vpp run`` assembles it (:func:`vpp.app.build_controller`:
bridge, poller, controls, planner, inputs, recorder, metrics, HTTP server) in front of the
simulated demo district (88 devices on loopback; ``--small`` for 13). Faults 1-5, 7 and 8 run
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

The rig, the faults and the table are in ``bench/faultbench/`` (``harness``, ``scenarios``,
``restart``, ``readers``, ``report``); the sites and the controller in front of the simulated
fleet come from :mod:`vpp.testing.harness`, which the controller tests use too.

Usage: ``python bench/faults.py [--small] [--quick] [--only 1 2 ...] [--readers 200] [--verbose]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

from faultbench.harness import START
from faultbench.readers import PAGE_REFRESH_S
from faultbench.report import print_table
from faultbench.restart import KILL_SPEED, kill_and_restart
from faultbench.scenarios import rig_faults
from rich.console import Console

from vpp.core.site import parse_site
from vpp.testing.harness import site_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="13 devices instead of 88")
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
