"""Benchmark: the recorder's snapshots of a 1,000-device fleet, and rolling them up.

Records ``--hours`` of polls (every 10 s; 800 PV inverters and 200 batteries, as
``adapters.sim.synthetic.synthetic_site`` builds them) into a fresh file, then runs the
hourly retention as ``vpp run`` does with ``run.snapshot_retention_days`` shorter than
``run.retention_days``: the expired snapshots are rolled up into quarter-hour means
(:func:`vpp.recorder.export.roll_up`) and deleted. Prints the time to record the polls (the
baseline: what the controller spends on them anyway), the time to roll up and delete the same
hours and the ratio, the disk a day of snapshots takes against a day of rolled-up rows, and
the time the operator page takes at start-up to read those hours back for its chart
(:mod:`vpp.web.history`; it reads six hours at most).

Usage: ``python bench/recorder_retention.py [--devices 1000] [--hours 2]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table

from adapters.sim.synthetic import synthetic_site
from adapters.snapshot import (
    BatteryReading,
    CommsHealth,
    DeviceState,
    PvReading,
    Reading,
    Snapshot,
)
from vpp.recorder import Recorder
from vpp.recorder.export import apply_retention
from vpp.web.history import recorded_quarters

T0 = datetime(2026, 6, 1, tzinfo=UTC)
EVERY = timedelta(seconds=10)


def snapshot(at: datetime, ids: list[tuple[str, str]], k: int) -> Snapshot:
    """One poll: every device online with a plausible reading."""
    health = CommsHealth(last_success=at, last_attempt=at, latency_s=0.0125)
    states: dict[str, DeviceState] = {}
    for i, (device_id, kind) in enumerate(ids):
        reading: Reading
        if kind == "pv":
            power = float((i * 53 + k * 7) % 5600)
            reading = PvReading(power, 1e6 + k, power * 1.04, "MPPT", 5600.0, 100.0)
        else:
            power = -2500.0 + (i * 37 + k) % 5000
            reading = BatteryReading(20.0 + (i + k) % 70, power, 10_000.0, 5000.0, 5000.0, "idle")
        states[device_id] = DeviceState(device_id, kind, reading, health, read_at=at)
    return Snapshot(at, states)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=2.0)
    args = parser.parse_args()
    n_bat = args.devices // 5
    site = synthetic_site(args.devices - n_bat, n_bat, base_port=20000)
    ids = [(d.id, d.kind.value) for d in site.devices]
    polls = int(args.hours * 3600 / EVERY.total_seconds())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite"
        with Recorder(path, retention_days=30, snapshot_retention_days=1) as rec:
            tic = time.perf_counter()
            for k in range(polls):
                rec.record_snapshot(snapshot(T0 + k * EVERY, ids, k))
            record_s = time.perf_counter() - tic
            pages, _ = rec.page_counts()
            snapshot_bytes = pages * 4096
            tic = time.perf_counter()
            history = recorded_quarters(rec, site, T0, T0 + timedelta(hours=args.hours))
            history_s = time.perf_counter() - tic
            tic = time.perf_counter()
            stats = apply_retention(rec, T0 + timedelta(days=1, hours=args.hours), site)
            retention_s = time.perf_counter() - tic
            measured = rec.measured()
    per_day = 24 / args.hours
    quarter_hours = stats.rolled_up
    measured_bytes = len(measured) * (8 + 8 * len(measured.columns))
    table = Table(title=f"recorder retention: {args.devices} devices, {args.hours:g} h of polls")
    for head in ("measurement", "value"):
        table.add_column(head)
    table.add_row(f"record {polls} polls (baseline)", f"{record_s:.1f} s")
    table.add_row(
        f"roll up {quarter_hours} quarter hours + delete {stats.deleted['snapshots']:,} rows",
        f"{retention_s:.1f} s ({retention_s / record_s:.2f} x recording)",
    )
    table.add_row(
        f"operator page history read back at start ({len(history)} quarter hours)",
        f"{history_s:.2f} s",
    )
    table.add_row("snapshots, a day", f"{snapshot_bytes * per_day / 1e9:.2f} GB")
    table.add_row(
        "rolled-up means, a day (values only)", f"{measured_bytes * per_day / 1e3:.1f} KB"
    )
    Console().print(table)


if __name__ == "__main__":
    main()
