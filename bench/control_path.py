"""The pure control path grows linearly with the fleet: CPU per device at 500 to 8,000 devices.

One dispatch without I/O, as the controller runs it at a quarter hour: the plan's row turned
into setpoints (``cycle.step_setpoints``: dispatch, the safety layer's envelopes and the grid
guard), then the invariants checked right before the write (``invariants.enforce``). Fleets
are half PV, half batteries (``optimizer.synthetic.synthetic_site``), every device online and
given a setpoint. The baseline is the smallest fleet in the same run: a path with a scan per
device (O(N^2)) would show a per-device ratio growing with N (16x from 500 to 8,000).

Run: ``.venv/bin/python bench/control_path.py [--sizes 500 2000 8000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime

import pandas as pd
from rich.console import Console
from rich.table import Table

from adapters.snapshot import (
    BatteryReading,
    CommsHealth,
    DeviceState,
    MeterReading,
    PvReading,
    Snapshot,
)
from optimizer.synthetic import synthetic_site
from vpp.control.cycle import seconds_left, step_setpoints
from vpp.control.invariants import Limits, enforce

T0 = datetime(2026, 6, 21, 10, 0, tzinfo=UTC)
OK = CommsHealth(last_success=T0)


def measure(devices: int, repeat: int) -> tuple[float, float]:
    """Best of ``repeat`` (setpoints s, invariants s) for one dispatch of ``devices``."""
    site = synthetic_site(devices // 2, devices - devices // 2, feeders=4, seed=1, heat=False)
    states: dict[str, DeviceState] = {}
    row: dict[str, float] = {}
    for b in site.batteries:
        reading = BatteryReading(
            soc_pct=50.0,
            power_w=0.0,
            capacity_wh=b.capacity_wh,
            max_charge_w=b.max_charge_w,
            max_discharge_w=b.max_discharge_w,
        )
        states[b.id] = DeviceState(b.id, "battery", reading, OK, T0)
        row[f"{b.id}.battery_w"] = 0.3 * b.max_discharge_w
    for p in site.pv:
        out = PvReading(
            ac_power_w=0.5 * p.rated_w,
            energy_wh=0.0,
            dc_power_w=None,
            status=None,
            rated_w=p.rated_w,
            limit_pct=100.0,
        )
        states[p.id] = DeviceState(p.id, "pv", out, OK, T0)
        row[f"{p.id}.pv_limit_w"] = 0.8 * p.rated_w
    if site.grid.meter is not None:
        meter = MeterReading(0.0, 0.0, 0.0)
        states[site.grid.meter] = DeviceState(site.grid.meter, "meter", meter, OK, T0)
    snap = Snapshot(T0, states)
    series = pd.Series(row)
    limits = Limits.at(site, [], T0)
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        tic = time.perf_counter()
        setpoints = step_setpoints(site, series, snap, [], T0) or []
        mid = time.perf_counter()
        checked = enforce(site, snap, setpoints, limits, seconds_left(T0))
        end = time.perf_counter()
        if len(checked.passed) != devices:
            raise RuntimeError(f"{devices} devices: {len(checked.passed)} setpoints passed")
        best = (min(best[0], mid - tic), min(best[1], end - mid))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2_000, 8_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = [(n, *measure(n, args.repeat)) for n in args.sizes]
    base = (rows[0][1] + rows[0][2]) / rows[0][0]
    table = Table(title=f"pure control path, one dispatch (load {os.getloadavg()[0]:.1f})")
    for name in ("devices", "setpoints s", "invariants s", "us/device", "ratio to smallest"):
        table.add_column(name, justify="right")
    for n, sp, inv in rows:
        per = (sp + inv) / n
        table.add_row(f"{n:,}", f"{sp:.3f}", f"{inv:.3f}", f"{per * 1e6:.0f}", f"{per / base:.2f}")
    Console().print(table)


if __name__ == "__main__":
    main()
